"""Recommendations: the top-k offers of each proposal and top-k proposals of each offer,
stored as `suggested` matches."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.services.embedding_store import SqlEmbeddingStore
from app.services.texts import offer_text, proposal_text, publication_text
from matching import Encoder, score_pairs, top_k
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Proposal,
    ProposalStatus,
    Publication,
)

MATCHABLE_PROPOSALS = (ProposalStatus.open, ProposalStatus.matched)


@dataclass(frozen=True)
class RecomputeSummary:
    proposals: int
    offers: int
    suggested: int
    removed: int
    texts_encoded: int


def _publications_by_author(session: Session, author_ids: set[int]) -> dict[int, list[str]]:
    texts: dict[int, list[str]] = defaultdict(list)
    if not author_ids:
        return texts
    publications = session.exec(
        select(Publication)
        .where(col(Publication.author_id).in_(author_ids))
        .order_by(col(Publication.year).desc(), col(Publication.id))
    )
    for publication in publications:
        texts[publication.author_id].append(publication_text(publication))
    return texts


def recompute_all(*, session: Session, encoder: Encoder, k: int) -> RecomputeSummary:
    """Score every open proposal against every open offer and keep, as `suggested` matches,
    each proposal's k best offers and each offer's k best proposals.

    Matches either side has acted on (interest, introduction, ...) are kept and re-scored;
    suggestions that dropped out of every top-k are removed.
    """
    proposals = session.exec(
        select(Proposal)
        .where(col(Proposal.status).in_(MATCHABLE_PROPOSALS))
        .order_by(col(Proposal.id))
    ).all()
    offers = session.exec(
        select(Offer).where(Offer.status == OfferStatus.open).order_by(col(Offer.id))
    ).all()
    existing = {(m.proposal_id, m.offer_id): m for m in session.exec(select(Match))}
    encoded_before = encoder.encoded_count

    kept: set[tuple[int, int]] = set()
    if proposals and offers:
        publications = _publications_by_author(session, {p.author_id for p in proposals})
        scores = score_pairs(
            [proposal_text(p) for p in proposals],
            [offer_text(o) for o in offers],
            [publications.get(p.author_id, []) for p in proposals],
            encoder=encoder,
            store=SqlEmbeddingStore(session),
        )
        best_offers, _ = top_k(scores.total, k)
        best_proposals, _ = top_k(scores.total.T, k)
        chosen = {(p, o) for p, row in enumerate(best_offers) for o in row}
        chosen |= {(p, o) for o, row in enumerate(best_proposals) for p in row}
        index_of_proposal = {p.id: i for i, p in enumerate(proposals)}
        index_of_offer = {o.id: j for j, o in enumerate(offers)}
        acted_on = {
            (index_of_proposal[p], index_of_offer[o])
            for (p, o), match in existing.items()
            if match.status != MatchStatus.suggested
            and p in index_of_proposal
            and o in index_of_offer
        }
        for p_index, o_index in sorted(chosen | acted_on):
            pair = (proposals[p_index].id, offers[o_index].id)
            components = {
                name: round(float(matrix[p_index, o_index]), 4)
                for name, matrix in scores.components.items()
            }
            match = existing.get(pair) or Match(proposal_id=pair[0], offer_id=pair[1])
            match.score = round(float(scores.total[p_index, o_index]), 4)
            match.components = components
            match.explanation = {"weights": dict(scores.weights)}
            match.algorithm_version = scores.version
            session.add(match)
            kept.add(pair)

    removed = 0
    for pair, match in existing.items():
        if pair not in kept and match.status == MatchStatus.suggested:
            session.delete(match)
            removed += 1
    session.flush()
    return RecomputeSummary(
        proposals=len(proposals),
        offers=len(offers),
        suggested=len(kept),
        removed=removed,
        texts_encoded=encoder.encoded_count - encoded_before,
    )
