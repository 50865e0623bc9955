"""The matchable records as the engine sees them: a snapshot of every visible proposal and
offer (with the authors' publications, identities and capacity left) in corpus order, and
the matcher built over it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
from sqlmodel import Session, col, select

from app.services.embedding_store import SqlEmbeddingStore
from app.services.texts import offer_text, proposal_text, publication_text
from app.services.visibility import COMMITTED, SET_ASIDE, visible_offers, visible_proposals
from matching import Encoder
from matching.eligibility import (
    OfferFacts,
    ProposalFacts,
)
from matching.engine import Corpus, Matcher
from matching.fit import FitInputs
from matching.lexical import WORD_PATTERN, TfidfSimilarity, explanation_vectorizer
from matching.scoring import ScoreWeights
from models import (
    Match,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    Publication,
    User,
)


@dataclass(frozen=True)
class Snapshot:
    """The matchable records, in corpus order, and the corpus built from them."""

    proposals: list[Proposal]
    offers: list[Offer]
    corpus: Corpus

    def proposal_index(self) -> dict[int, int]:
        return self._proposal_index

    def offer_index(self) -> dict[int, int]:
        return self._offer_index

    # Computed once per snapshot (a kept snapshot serves many re-rankings); callers must not
    # change the dicts they get.
    @cached_property
    def _proposal_index(self) -> dict[int, int]:
        return {p.id: i for i, p in enumerate(self.proposals)}  # type: ignore[misc]

    @cached_property
    def _offer_index(self) -> dict[int, int]:
        return {o.id: j for j, o in enumerate(self.offers)}  # type: ignore[misc]


def _date64(value: date | None) -> np.datetime64:
    return np.datetime64(value, "D") if value else np.datetime64("NaT", "D")


def _identities(organisation: Organisation | None, email: str | None = None) -> list[str]:
    names = [email.rsplit("@", 1)[1]] if email and "@" in email else []
    if organisation is not None:
        names += [organisation.name, *organisation.email_domains]
    return names


def load_snapshot(*, session: Session) -> Snapshot:
    """Read every open proposal and offer, with the authors' publications and each offer's
    capacity left after the matches already introduced."""
    proposals = list(
        session.exec(select(Proposal).where(*visible_proposals()).order_by(col(Proposal.id)))
    )
    offers = list(session.exec(select(Offer).where(*visible_offers()).order_by(col(Offer.id))))
    authors = {p.author_id for p in proposals}
    users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(authors)))}
    organisations = {o.id: o for o in session.exec(select(Organisation))}
    publications: dict[int, list[Publication]] = defaultdict(list)
    for publication in session.exec(
        select(Publication)
        .where(col(Publication.author_id).in_(authors))
        .order_by(col(Publication.year).desc(), col(Publication.id))
    ):
        publications[publication.author_id].append(publication)
    return build_snapshot(
        proposals=proposals,
        offers=offers,
        users=users,
        organisations=organisations,
        publications=publications,
        decided=read_decided_matches(session),
    )


@dataclass(frozen=True)
class DecidedMatch:
    """A match that holds capacity (introduced) or that a side dismissed (set aside)."""

    proposal_id: int
    offer_id: int
    committed: bool
    hours: float


def read_decided_matches(session: Session) -> list[DecidedMatch]:
    """The introduced and dismissed matches, which change offers' capacity and what may be
    suggested again (few rows: only pairs people acted on)."""
    rows = session.exec(
        select(Match.proposal_id, Match.offer_id, Match.status, Proposal.gpu_hours_needed)
        .join(Proposal, col(Proposal.id) == Match.proposal_id)
        .where(col(Match.status).in_([*COMMITTED, *SET_ASIDE]))
        .order_by(col(Match.id))
    )
    return [
        DecidedMatch(proposal_id, offer_id, status in COMMITTED, hours)
        for proposal_id, offer_id, status, hours in rows
    ]


@dataclass(frozen=True)
class ProposalSide:
    """What the engine needs of the proposals alone (their texts, facts and fit inputs)."""

    proposals: list[Proposal]
    facts: ProposalFacts
    texts: list[str]
    publications: list[list[str]]
    titles: list[list[str]]
    domains: list[frozenset[str]]
    start: np.ndarray
    duration_months: np.ndarray


@dataclass(frozen=True)
class OfferSide:
    """What the engine needs of the offers alone, capacity left included."""

    offers: list[Offer]
    facts: OfferFacts
    texts: list[str]
    domains: list[frozenset[str]]
    available_until: np.ndarray


def build_snapshot(
    *,
    proposals: list[Proposal],
    offers: list[Offer],
    users: Mapping[int, User],
    organisations: Mapping[int, Organisation],
    publications: Mapping[int, list[Publication]],
    decided: list[DecidedMatch],
) -> Snapshot:
    """The snapshot of records already read: `proposals` and `offers` in id order (the visible
    ones), `publications` per author (newest first), `decided` from `read_decided_matches`."""
    return assemble(
        proposal_side(
            proposals=proposals,
            users=users,
            organisations=organisations,
            publications=publications,
        ),
        offer_side(offers=offers, organisations=organisations, decided=decided),
        decided,
    )


def proposal_side(
    *,
    proposals: list[Proposal],
    users: Mapping[int, User],
    organisations: Mapping[int, Organisation],
    publications: Mapping[int, list[Publication]],
) -> ProposalSide:
    """The proposals' part of a snapshot (`proposals` visible, in id order)."""

    def author_identities(proposal: Proposal) -> list[str]:
        author = users.get(proposal.author_id)
        if author is None:
            return []
        return _identities(organisations.get(author.organisation_id), author.email)

    records = [
        {
            "gpu_hours_needed": p.gpu_hours_needed,
            "gpu_memory_min_gb": p.gpu_memory_min_gb,
            "gpu_type": p.gpu_type,
            "needs_data": p.needs_data,
            "requires_open_publication": p.requires_open_publication,
            "requires_open_source": p.requires_open_source,
            "ip_stance": p.ip_stance.value,
            "identities": author_identities(p),
            "excluded": p.excluded_companies,
        }
        for p in proposals
    ]
    return ProposalSide(
        proposals=proposals,
        facts=ProposalFacts.from_records(records),
        texts=[proposal_text(p) for p in proposals],
        publications=[
            [publication_text(pub) for pub in publications.get(p.author_id, ())] for p in proposals
        ],
        titles=[[pub.title for pub in publications.get(p.author_id, ())] for p in proposals],
        domains=[frozenset(p.data_domains) for p in proposals],
        start=np.array([_date64(p.earliest_start) for p in proposals], dtype="datetime64[D]"),
        duration_months=np.array([p.duration_months for p in proposals], dtype=np.float64),
    )


def offer_side(
    *,
    offers: list[Offer],
    organisations: Mapping[int, Organisation],
    decided: list[DecidedMatch],
) -> OfferSide:
    """The offers' part of a snapshot (`offers` visible, in id order), with the capacity the
    introduced matches among `decided` hold."""
    hours_committed: dict[int, float] = defaultdict(float)
    projects_committed: dict[int, int] = defaultdict(int)
    for decision in decided:
        if decision.committed:
            hours_committed[decision.offer_id] += decision.hours
            projects_committed[decision.offer_id] += 1
    records = [
        {
            "kind": o.kind.value,
            "is_open": o.status == OfferStatus.open,
            "deadline": o.deadline,
            "gpu_memory_gb": o.gpu_memory_gb,
            "gpu_type": o.gpu_type,
            "max_hours_per_project": o.max_hours_per_project,
            "hours_left": max(0.0, o.gpu_hours_budget - hours_committed[o.id]),
            "projects_left": o.max_projects - projects_committed[o.id],
            "publication_terms": o.publication_terms.value,
            "code_release_allowed": o.code_release_allowed,
            "ip_stance": o.ip_stance.value,
            "identities": _identities(organisations.get(o.organisation_id)),
            "excluded": o.excluded_institutions,
        }
        for o in offers
    ]
    return OfferSide(
        offers=offers,
        facts=OfferFacts.from_records(records),
        texts=[offer_text(o) for o in offers],
        domains=[frozenset(o.data_domains) if o.kind.offers_data else frozenset() for o in offers],
        available_until=np.array(
            [_date64(o.available_until) for o in offers], dtype="datetime64[D]"
        ),
    )


def assemble(proposals: ProposalSide, offers: OfferSide, decided: list[DecidedMatch]) -> Snapshot:
    """The snapshot of both sides, with the pairs `decided` set aside."""
    fit = FitInputs.from_facts(
        proposals.facts,
        offers.facts,
        proposal_domains=proposals.domains,
        start=proposals.start,
        duration_months=proposals.duration_months,
        offer_domains=offers.domains,
        available_until=offers.available_until,
    )
    corpus = Corpus(
        proposal_texts=proposals.texts,
        offer_texts=offers.texts,
        author_publications=proposals.publications,
        publication_titles=proposals.titles,
        proposals=proposals.facts,
        offers=offers.facts,
        fit=fit,
        set_aside=_set_aside(decided, proposals.proposals, offers.offers),
        offer_groups=tuple(o.organisation_id for o in offers.offers),
    )
    return Snapshot(proposals=proposals.proposals, offers=offers.offers, corpus=corpus)


def _set_aside(
    decided: list[DecidedMatch], proposals: list[Proposal], offers: list[Offer]
) -> dict[int, list[int]]:
    """Pairs a side dismissed (declined or withdrawn), as corpus indices: never suggested
    again, so the next-best offer moves up instead of the list shrinking."""
    proposal_index = {p.id: i for i, p in enumerate(proposals)}
    offer_index = {o.id: j for j, o in enumerate(offers)}
    set_aside: dict[int, list[int]] = defaultdict(list)
    for decision in decided:
        if decision.committed:
            continue
        if decision.proposal_id in proposal_index and decision.offer_id in offer_index:
            set_aside[proposal_index[decision.proposal_id]].append(offer_index[decision.offer_id])
    return dict(set_aside)


def make_matcher(
    *,
    session: Session,
    encoder: Encoder,
    snapshot: Snapshot,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> Matcher:
    """A matcher over `snapshot`. Its lexical score has no IDF, so a pair's lexical score
    depends on the two texts alone: an incremental refresh then agrees with a full recompute
    (IDF would shift every pair's score whenever any text changes). Explanations name shared
    terms with IDF fitted on the snapshot, so rarer, telling words come first."""
    texts = [*snapshot.corpus.proposal_texts, *snapshot.corpus.offer_texts]
    return Matcher(
        encoder,
        weights=weights,
        lexical=TfidfSimilarity(use_idf=False, token_pattern=WORD_PATTERN).fit(texts),
        terms=explanation_vectorizer(texts),
        store=SqlEmbeddingStore(session),
        today=today,
    )
