"""Why a pair is or is not matched: the full explanation of one pair, the pairs that fail a
hard constraint, and the public summary of why a list of recommendations is short."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlmodel import Session

from app.services.corpus import load_snapshot, make_matcher
from app.services.errors import DomainError, NotFound
from matching import Encoder
from matching.eligibility import (
    CONSTRAINT_LABELS,
    check_eligibility,
)
from matching.engine import Explanation
from matching.scoring import ScoreWeights
from models import (
    Offer,
    Proposal,
)


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
    failures = sorted(
        (
            (CONSTRAINT_LABELS[name], count)
            for name, count in axis_failures.items()
            if count and name not in IDENTITY_CONSTRAINTS
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return EligibilitySummary(candidates=candidates, eligible=eligible, failures=failures)
