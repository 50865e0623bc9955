"""Recommendations: each proposal's k best eligible offers and each offer's k best eligible
proposals, stored as matches with their score, components, ranks and weights version.

A full recompute streams over proposal chunks (`recompute_all`); editing one proposal or offer
re-embeds only its text and recomputes only its row or column, plus the columns or rows whose
top-k it enters or leaves (`refresh_proposal`, `refresh_offer`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import eligibility, notices
from app.services.corpus import Snapshot, load_snapshot, make_matcher
from app.services.errors import NotFound
from app.services.snapshots import SNAPSHOTS, SnapshotCache
from matching import Encoder
from matching.engine import BlockScorer, Matcher
from matching.recommend import top_k_rows
from matching.scoring import ScoreWeights
from models import (
    Match,
    MatchStatus,
    Offer,
    Proposal,
    utcnow,
)


@dataclass(frozen=True)
class RecomputeSummary:
    proposals: int
    offers: int
    suggested: int
    removed: int
    texts_encoded: int


def _apply(
    *,
    session: Session,
    snapshot: Snapshot,
    matcher: Matcher,
    ranks: dict[tuple[int, int], tuple[int | None, int | None]],
    existing: Iterable[Match],
    announce: bool = False,
) -> tuple[int, int]:
    """Make the stored matches among `existing` agree with `ranks` (corpus indices).

    A pair is kept when it is in either top-k or when either side has acted on it; kept pairs
    get fresh scores, ranks and the weights version. With `announce`, a pair that enters a
    side's list records new-match events for the people on that side (`notices`).
    Returns (kept, removed)."""
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    stored: dict[tuple[int, int], Match] = {}
    removed = 0
    for match in existing:
        key = (proposal_index.get(match.proposal_id, -1), offer_index.get(match.offer_id, -1))
        # Acted on: a side responded, or a published allocation round assigned the pair.
        acted_on = match.status != MatchStatus.suggested or match.allocation_round_id is not None
        if key[0] >= 0 and key[1] >= 0 and (key in ranks or acted_on):
            stored[key] = match
        elif not acted_on:
            session.delete(match)
            removed += 1
        else:
            # Acted on, but one side is no longer open: keep the record, drop it from every
            # top-k so it cannot raise the bar newcomers must clear.
            match.rank_for_proposal = match.rank_for_offer = None
            session.add(match)
    pairs = sorted(set(ranks) | set(stored))
    offers_of: dict[int, list[int]] = defaultdict(list)
    for p, o in pairs:
        offers_of[p].append(o)
    version = matcher.weights.version
    arrivals: list[tuple[Match, bool, bool]] = []
    for p, offers in offers_of.items():
        for o, explanation in zip(offers, matcher.explain(snapshot.corpus, p, offers), strict=True):
            key = (p, o)
            match = stored.get(key) or Match(
                proposal_id=snapshot.proposals[p].id, offer_id=snapshot.offers[o].id
            )
            before = (match.rank_for_proposal, match.rank_for_offer)
            details = explanation.to_dict()
            match.score = details["score"]
            match.components = details["components"]
            match.explanation = details
            match.algorithm_version = version
            match.rank_for_proposal, match.rank_for_offer = ranks.get(key, (None, None))
            session.add(match)
            # New to a side: it just entered that side's list.
            academic = before[0] is None and match.rank_for_proposal is not None
            company = before[1] is None and match.rank_for_offer is not None
            if academic or company:
                arrivals.append((match, academic, company))
    session.flush()
    if announce:
        notices.record_arrivals(
            session=session,
            arrivals=[notices.Arrival(m, academic, company) for m, academic, company in arrivals],
        )
    return len(pairs), removed


def recompute_all(
    *,
    session: Session,
    encoder: Encoder,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    announce: bool = False,
) -> RecomputeSummary:
    """Recompute every recommendation; suggestions that left every top-k are removed.
    Without `announce` (the default: a bulk recompute after loading data or changing the
    weights) no new-match mails follow; changes to single items always announce."""
    encoded_before = encoder.encoded_count
    snapshot = load_snapshot(session=session)
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    ranks = matcher.recommend(snapshot.corpus, k).ranks()
    kept, removed = _apply(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        ranks=ranks,
        existing=session.exec(select(Match)),
        announce=announce,
    )
    eligibility.record_counts(session=session, snapshot=snapshot, today=today)
    return RecomputeSummary(
        proposals=len(snapshot.proposals),
        offers=len(snapshot.offers),
        suggested=kept,
        removed=removed,
        texts_encoded=encoder.encoded_count - encoded_before,
    )


def _refresh(
    *,
    session: Session,
    snapshot: Snapshot,
    matcher: Matcher,
    rows: np.ndarray,
    columns: np.ndarray,
    k: int,
    touched_match_filter: object,
    known_best: dict[int, list[int]] | None = None,
) -> tuple[int, int]:
    """Recompute the rows `rows` and columns `columns` (corpus indices) and reconcile every
    stored match touching them; other rows and columns keep their stored ranks. Rows whose
    best offers the caller has already found are in `known_best`."""
    corpus = snapshot.corpus
    known_best = known_best or {}
    rows_left = np.array([r for r in rows if int(r) not in known_best], dtype=np.int64)
    row_best = dict(known_best)
    if len(rows_left):
        row_best.update(matcher.recommend(corpus, k, rows=rows_left).best_offers())
    column_best = (
        matcher.recommend(corpus, k, columns=columns).best_proposals() if len(columns) else {}
    )
    existing = list(session.exec(select(Match).where(touched_match_filter)))  # type: ignore[arg-type]
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    ranks: dict[tuple[int, int], tuple[int | None, int | None]] = {}
    for match in existing:
        key = (proposal_index.get(match.proposal_id, -1), offer_index.get(match.offer_id, -1))
        if key[0] >= 0 and key[1] >= 0:
            ranks[key] = (match.rank_for_proposal, match.rank_for_offer)
    for p, best in row_best.items():
        for key in [key for key in ranks if key[0] == p]:
            ranks[key] = (None, ranks[key][1])
        for rank, o in enumerate(best, start=1):
            ranks[(p, o)] = (rank, ranks.get((p, o), (None, None))[1])
    for o, best in column_best.items():
        for key in [key for key in ranks if key[1] == o]:
            ranks[key] = (ranks[key][0], None)
        for rank, p in enumerate(best, start=1):
            ranks[(p, o)] = (ranks.get((p, o), (None, None))[0], rank)
    ranks = {key: value for key, value in ranks.items() if value != (None, None)}
    return _apply(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        ranks=ranks,
        existing=existing,
        announce=True,
    )


def _refresh_one(
    *,
    session: Session,
    encoder: Encoder,
    side: Literal["proposal", "offer"],
    item_id: int,
    k: int,
    weights: ScoreWeights | None,
    today: date | None,
    snapshots: SnapshotCache,
) -> RecomputeSummary:
    """Recompute one proposal's row (or one offer's column) and every column (row) whose
    top-k it enters or leaves: those where it was ranked, and those whose k-th best stored
    score its new score reaches. Rows and columns it cannot affect keep their stored ranks."""
    own, other = ("proposal_id", "offer_id") if side == "proposal" else ("offer_id", "proposal_id")
    other_rank = "rank_for_offer" if side == "proposal" else "rank_for_proposal"
    encoded_before = encoder.encoded_count
    started = utcnow()
    # The worker's kept catalogue, brought up to date with what this session sees.
    snapshot, matcher = snapshots.matcher(
        session=session, encoder=encoder, weights=weights, today=today
    )
    own_index = snapshot.proposal_index() if side == "proposal" else snapshot.offer_index()
    other_index = snapshot.offer_index() if side == "proposal" else snapshot.proposal_index()
    others = snapshot.offers if side == "proposal" else snapshot.proposals

    # Where the item was ranked, and each counterpart's k-th ranked score among the others
    # (the bar the item must reach to enter its list): one row per counterpart at most.
    own_column, other_column = getattr(Match, own), getattr(Match, other)
    affected = set(
        session.exec(
            select(other_column).where(
                own_column == item_id, col(getattr(Match, other_rank)).is_not(None)
            )
        ).all()
    )
    bars = dict(
        session.exec(
            select(other_column, Match.score).where(
                getattr(Match, other_rank) == k, own_column != item_id
            )
        ).all()
    )
    mine = np.array([], dtype=np.int64)
    known_best: dict[int, list[int]] = {}
    index = own_index.get(item_id)
    if index is not None and len(others):
        mine = np.array([index])
        if side == "proposal":
            # Scored as a full recompute scores it (set-aside pairs excluded): its own top-k
            # comes from the same scores.
            everything = np.arange(snapshot.corpus.shape[1])
            scorer = BlockScorer(matcher, snapshot.corpus, mine, everything)
            scores = scorer.scores(np.array([0]))[0]
            _, best = top_k_rows(scores[None, :], k)
            known_best = {index: [int(o) for o in best[0] if o >= 0]}
        else:
            everyone = np.arange(snapshot.corpus.shape[0])
            scores = matcher.block(snapshot.corpus, everyone, mine).masked()[:, 0]
        other_ids = other_index.keys()  # in corpus order
        bar = np.array([bars.get(i, -np.inf) for i in other_ids], dtype=np.float64)
        reached = np.flatnonzero(np.isfinite(scores) & (scores >= bar))
        affected.update(others[i].id for i in reached)
    theirs = np.array(sorted(other_index[i] for i in affected if i in other_index), dtype=np.int64)
    their_ids = [others[i].id for i in theirs]
    rows, columns = (mine, theirs) if side == "proposal" else (theirs, mine)
    kept, removed = _refresh(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        rows=rows,
        columns=columns,
        k=k,
        known_best=known_best,
        touched_match_filter=(getattr(Match, own) == item_id)
        | col(getattr(Match, other)).in_(their_ids),
    )
    # The item's "why N are left out" counts, and those of the counterparts re-ranked with it
    # (others keep theirs until their own recompute: see `eligibility`).
    eligibility.record_counts(
        session=session,
        snapshot=snapshot,
        proposals=rows,
        offers=columns,
        forget=[] if len(mine) else [(side, item_id)],
        today=today,
    )
    # Every change requested before `started` is now reflected in its matches.
    table = (Proposal if side == "proposal" else Offer).__table__
    session.execute(
        sa.update(table)
        .where(table.c.id == item_id)
        .values(rematched_at=started, updated_at=table.c.updated_at)
    )
    return RecomputeSummary(
        proposals=len(rows),
        offers=len(columns),
        suggested=kept,
        removed=removed,
        texts_encoded=encoder.encoded_count - encoded_before,
    )


def refresh_proposal(
    *,
    session: Session,
    encoder: Encoder,
    proposal_id: int,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    snapshots: SnapshotCache = SNAPSHOTS,
) -> RecomputeSummary:
    """After one proposal was created, edited, opened or closed: re-embed its text, recompute
    its row, and recompute the columns of the offers whose top-k it enters or leaves."""
    if session.get(Proposal, proposal_id) is None:
        raise NotFound(f"No proposal {proposal_id}")
    return _refresh_one(
        session=session,
        encoder=encoder,
        side="proposal",
        item_id=proposal_id,
        k=k,
        weights=weights,
        today=today,
        snapshots=snapshots,
    )


def refresh_offer(
    *,
    session: Session,
    encoder: Encoder,
    offer_id: int,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    snapshots: SnapshotCache = SNAPSHOTS,
) -> RecomputeSummary:
    """After one offer was created, edited, opened or closed: re-embed its text, recompute its
    column, and recompute the rows of the proposals whose top-k it enters or leaves."""
    if session.get(Offer, offer_id) is None:
        raise NotFound(f"No offer {offer_id}")
    return _refresh_one(
        session=session,
        encoder=encoder,
        side="offer",
        item_id=offer_id,
        k=k,
        weights=weights,
        today=today,
        snapshots=snapshots,
    )
