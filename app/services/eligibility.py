"""Why a pair is or is not matched: the full explanation of one pair, the pairs that fail a
hard constraint, and the public summary of why a list of recommendations is short.

The summary a page shows is read from `EligibilityCount` rows (`stored_summary`), written
whenever matches are recomputed (`record_counts`): evaluating the hard constraints of one item
against the whole open catalogue costs seconds at 10,000 x 2,000, too much for every view.

Staleness, chosen on purpose: a full recompute (`recommendations.recompute_all`) rewrites
every row. Re-ranking one item after it changed (`refresh_proposal` / `refresh_offer`, run for
every edit, opening or closing) rewrites that item's row and the rows of the counterparts
whose lists it re-ranked. Every other counterpart's row keeps the counts of its own last
recompute until it is re-ranked or the next full recompute: one more or one fewer open offer
in "N of M" is a small, self-healing error, while recounting every item on every edit would
make each edit cost a full pass over the catalogue (`eligibility_summary` still computes the
exact figures live, for commands and tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col

from app.services.corpus import Snapshot, load_snapshot, make_matcher
from app.services.errors import DomainError, NotFound
from matching import Encoder
from matching.eligibility import (
    CONSTRAINT_LABELS,
    Eligibility,
    check_eligibility,
)
from matching.engine import Explanation
from matching.scoring import ScoreWeights
from models import (
    EligibilityCount,
    Offer,
    Proposal,
    utcnow,
)

Side = Literal["proposal", "offer"]


def ineligible_pairs(
    *, session: Session, pairs: Iterable[tuple[int, int]], today: date | None = None
) -> set[tuple[int, int]]:
    """The (proposal id, offer id) pairs that fail a hard constraint now, or whose proposal or
    offer left matching: things change between a suggestion and the moment someone acts on
    it (an exclusion added, terms tightened, capacity promised elsewhere)."""
    pairs = list(pairs)
    if not pairs:
        return set()
    snapshot = load_snapshot(session=session)
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    failed: set[tuple[int, int]] = set()
    for proposal_id, offer_id in pairs:
        p, o = proposal_index.get(proposal_id), offer_index.get(offer_id)
        if p is None or o is None:
            failed.add((proposal_id, offer_id))
            continue
        eligibility = check_eligibility(
            snapshot.corpus.proposals.take(np.array([p])),
            snapshot.corpus.offers.take(np.array([o])),
            today=today,
        )
        if not eligibility.mask[0, 0]:
            failed.add((proposal_id, offer_id))
    return failed


def explain_pair(
    *,
    session: Session,
    encoder: Encoder,
    proposal_id: int,
    offer_id: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> Explanation:
    """The full explanation of one (proposal, offer) pair, eligible or not."""
    if session.get(Proposal, proposal_id) is None:
        raise NotFound(f"No proposal {proposal_id}")
    if session.get(Offer, offer_id) is None:
        raise NotFound(f"No offer {offer_id}")
    snapshot = load_snapshot(session=session)
    p = snapshot.proposal_index().get(proposal_id)
    o = snapshot.offer_index().get(offer_id)
    if p is None:
        raise DomainError(f"Proposal {proposal_id} is not open, so it is not matched")
    if o is None:
        raise DomainError(f"Offer {offer_id} is not open, so it is not matched")
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    return matcher.explain(snapshot.corpus, p, [o])[0]


# Conflict-of-interest and exclusion counts are left out of public summaries: a company could
# otherwise learn an anonymous author's institution by excluding guesses one at a time.
IDENTITY_CONSTRAINTS = frozenset({"same_organisation", "excluded_by_offer", "excluded_by_proposal"})


@dataclass(frozen=True)
class EligibilitySummary:
    """How many counterparts are eligible, and how many fail each constraint (label, count),
    most common first. A counterpart failing several constraints counts under each; the
    identity-revealing constraints are never itemised."""

    candidates: int
    eligible: int
    failures: list[tuple[str, int]]


def eligibility_summary(
    *,
    session: Session,
    proposal_id: int | None = None,
    offer_id: int | None = None,
    today: date | None = None,
) -> EligibilitySummary:
    """Why a proposal's (or an offer's) list of recommendations is as short as it is.

    Needs no embeddings: only the hard constraints are evaluated."""
    snapshot = load_snapshot(session=session)
    corpus = snapshot.corpus
    if proposal_id is not None:
        index = snapshot.proposal_index().get(proposal_id)
        if index is None:
            return EligibilitySummary(0, 0, [])
        result = check_eligibility(
            corpus.proposals.take(np.array([index])), corpus.offers, today=today or date.today()
        )
        axis_failures = {name: int(m[0].sum()) for name, m in result.failures.items()}
        eligible, candidates = int(result.mask[0].sum()), len(snapshot.offers)
    else:
        index = snapshot.offer_index().get(offer_id)  # type: ignore[arg-type]
        if index is None:
            return EligibilitySummary(0, 0, [])
        result = check_eligibility(
            corpus.proposals, corpus.offers.take(np.array([index])), today=today or date.today()
        )
        axis_failures = {name: int(m[:, 0].sum()) for name, m in result.failures.items()}
        eligible, candidates = int(result.mask[:, 0].sum()), len(snapshot.proposals)
    return _summary(candidates, eligible, axis_failures)


def _summary(candidates: int, eligible: int, counts: dict[str, int]) -> EligibilitySummary:
    """What may be shown of per-constraint counts: labelled, identity constraints left out,
    most common first."""
    failures = sorted(
        (
            (CONSTRAINT_LABELS[name], count)
            for name, count in counts.items()
            if count and name not in IDENTITY_CONSTRAINTS and name in CONSTRAINT_LABELS
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return EligibilitySummary(candidates=candidates, eligible=eligible, failures=failures)


def stored_summary(
    *, session: Session, proposal_id: int | None = None, offer_id: int | None = None
) -> EligibilitySummary:
    """The summary written at the item's last recompute (one primary-key read); nothing to
    say (0 of 0) for an item that is not open or was never recomputed."""
    side: Side = "proposal" if proposal_id is not None else "offer"
    row = session.get(
        EligibilityCount, (side, proposal_id if proposal_id is not None else offer_id)
    )
    if row is None:
        return EligibilitySummary(0, 0, [])
    return _summary(row.candidates, row.eligible, dict(row.failures))


_ROWS_PER_CHUNK = 500
"""Proposals evaluated together: bounds the (rows x offers) boolean matrices in memory."""


def record_counts(
    *,
    session: Session,
    snapshot: Snapshot,
    proposals: Sequence[int] | None = None,
    offers: Sequence[int] | None = None,
    forget: Iterable[tuple[Side, int]] = (),
    today: date | None = None,
) -> None:
    """Write the eligibility counts of the proposals and offers at corpus indices `proposals`
    and `offers` (None: every one) against every open counterpart in `snapshot`, and delete
    the rows of `forget` (items that left matching). Flushes, never commits."""
    corpus = snapshot.corpus
    today = today or date.today()
    rows = np.arange(len(snapshot.proposals)) if proposals is None else np.asarray(proposals)
    columns = np.arange(len(snapshot.offers)) if offers is None else np.asarray(offers)
    written: list[dict[str, object]] = []
    now = utcnow()
    # The offers' counts need every proposal: when every proposal is evaluated anyway (a full
    # recompute), they are summed from the same matrices instead of evaluating them twice.
    column_sums: dict[str, np.ndarray] = {}
    column_eligible = np.zeros(len(columns), dtype=np.int64)

    def add_columns(result: Eligibility, offer_columns: np.ndarray | slice) -> None:
        nonlocal column_eligible
        for name, m in result.failures.items():
            column_sums[name] = column_sums.get(name, 0) + m[:, offer_columns].sum(axis=0)
        column_eligible = column_eligible + result.mask[:, offer_columns].sum(axis=0)

    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        chunk = rows[start : start + _ROWS_PER_CHUNK].astype(np.int64)
        result = check_eligibility(corpus.proposals.take(chunk), corpus.offers, today=today)
        sums = {name: m.sum(axis=1) for name, m in result.failures.items()}
        eligible = result.mask.sum(axis=1)
        if proposals is None and len(columns):
            add_columns(result, columns.astype(np.int64))
        for position, index in enumerate(chunk):
            written.append(
                _row(
                    "proposal",
                    snapshot.proposals[index].id,
                    len(snapshot.offers),
                    int(eligible[position]),
                    {n: int(v[position]) for n, v in sums.items()},
                    now,
                )
            )
    if len(columns):
        if proposals is not None:
            taken = corpus.offers.take(columns.astype(np.int64))
            for start in range(0, len(snapshot.proposals), _ROWS_PER_CHUNK):
                chunk = np.arange(start, min(start + _ROWS_PER_CHUNK, len(snapshot.proposals)))
                result = check_eligibility(corpus.proposals.take(chunk), taken, today=today)
                add_columns(result, slice(None))
        for position, index in enumerate(columns):
            written.append(
                _row(
                    "offer",
                    snapshot.offers[index].id,
                    len(snapshot.proposals),
                    int(column_eligible[position]),
                    {n: int(v[position]) for n, v in column_sums.items()},
                    now,
                )
            )
    gone = [*forget, *((r["side"], r["item_id"]) for r in written)]
    table = EligibilityCount.__table__
    if proposals is None and offers is None:
        session.execute(sa.delete(table))
    else:
        for side in ("proposal", "offer"):
            ids = [item_id for s, item_id in gone if s == side]
            for start in range(0, len(ids), _ROWS_PER_CHUNK):
                session.execute(
                    sa.delete(table).where(
                        table.c.side == side,
                        col(table.c.item_id).in_(ids[start : start + _ROWS_PER_CHUNK]),
                    )
                )
    for start in range(0, len(written), _ROWS_PER_CHUNK):
        session.execute(sa.insert(table), written[start : start + _ROWS_PER_CHUNK])
    session.flush()


def _row(
    side: Side,
    item_id: int | None,
    candidates: int,
    eligible: int,
    failures: dict[str, int],
    now: object,
) -> dict[str, object]:
    return {
        "side": side,
        "item_id": item_id,
        "candidates": candidates,
        "eligible": eligible,
        "failures": {name: count for name, count in failures.items() if count},
        "computed_at": now,
    }
