"""Allocation rounds: assign scarce offers to proposals, maximising the total match score
under every offer's hour budget and project cap.

Two passes, as the design asks: compute (offers with GPU hours, to proposals that need them),
then data (offers with data, to proposals that need data), on the project places the compute
pass left. A proposal gets at most one offer in each pass, and never the same offer twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services.corpus import Snapshot, load_snapshot, make_matcher
from app.services.errors import DomainError, NotFound
from app.services.visibility import visible_offers
from matching import Encoder, ScoreWeights, check_eligibility, strength
from matching.allocation import Allocation, allocate
from matching.round_report import (
    EquityEffect,
    UnassignedReason,
    equity_effect,
    explain_unassigned,
)
from models import (
    AllocationAssignment,
    AllocationRound,
    LabResourceLevel,
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    Organisation,
    Proposal,
)

Equity = Literal["priority", "maxmin"]

REASON_CHUNK_ROWS = 1024
"""Unassigned proposals explained per block (their per-constraint failures are (rows, O))."""


@dataclass(frozen=True)
class OfferUse:
    offer: Offer
    hours_used: float
    hours_available: float
    projects_used: int
    projects_available: int


@dataclass(frozen=True)
class Pass:
    """One pass (compute or data) of a round: who gets what, how full each offer is, why each
    unassigned proposal got nothing (`reasons`, aligned with `unassigned`) and, with an equity
    option, what the option changed."""

    name: str
    allocation: Allocation
    assigned: list[tuple[Proposal, Offer, float]]
    unassigned: list[Proposal]
    offers: list[OfferUse]
    reasons: list[UnassignedReason] = field(default_factory=list)
    equity_effect: EquityEffect | None = None


@dataclass(frozen=True)
class RoundPreview:
    """A solved round. `unverified_offers` are the open offers of unverified organisations:
    left out of every pass unless `include_unverified`."""

    passes: list[Pass]
    equity: Equity | None
    include_unverified: bool = False
    unverified_offers: list[Offer] = field(default_factory=list)

    @property
    def objective(self) -> float:
        return sum(p.allocation.objective for p in self.passes)


def _block(mask: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """`mask[rows][:, columns]` for a (P, O) mask, or for an (1, O) mask of whole columns."""
    if mask.shape[0] == 1:
        return np.broadcast_to(mask[:, columns], (len(rows), len(columns)))
    return mask[np.ix_(rows, columns)]


def _reasons(
    snapshot: Snapshot,
    totals: np.ndarray,
    rows: np.ndarray,
    columns: np.ndarray,
    hours_needed: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
    left_out: dict[str, np.ndarray],
    *,
    today: date,
    min_score: float | None,
    equity: bool,
) -> list[UnassignedReason]:
    """Why each proposal of `rows` got no offer among `columns`, in chunks so that the
    per-constraint failures never cover more than a block of pairs at once."""
    corpus = snapshot.corpus
    reasons: list[UnassignedReason] = []
    for start in range(0, len(rows), REASON_CHUNK_ROWS):
        chunk = rows[start : start + REASON_CHUNK_ROWS]
        failures: dict[str, np.ndarray] = {}
        if len(columns):
            failures = dict(
                check_eligibility(
                    corpus.proposals.take(chunk), corpus.offers.take(columns), today=today
                ).failures
            )
        reasons += explain_unassigned(
            totals[np.ix_(chunk, columns)],
            failures,
            hours_needed[chunk],
            budget,
            caps,
            left_out={code: _block(mask, chunk, columns) for code, mask in left_out.items()},
            min_score=min_score,
            max_hours_per_project=corpus.offers.max_hours_per_project[columns],
            equity=equity,
        )
    return reasons


def _pass(
    name: str,
    snapshot: Snapshot,
    totals: np.ndarray,
    eligible: np.ndarray,
    proposal_rows: np.ndarray,
    offer_columns: np.ndarray,
    hours_needed: np.ndarray,
    *,
    projects_left: np.ndarray,
    left_out: dict[str, np.ndarray],
    equity: Equity | None,
    min_score: float | None,
    today: date,
) -> Pass:
    """Solve one pass over `proposal_rows` x `offer_columns`. `eligible` is the hard-constraint
    mask; `left_out` names the pairs the round itself sets aside ((P, O) or (1, O) masks)."""
    facts = snapshot.corpus.offers
    budget = np.where(facts.has_compute, facts.hours_left, np.inf)[offer_columns]
    caps = np.maximum(projects_left, 0)[offer_columns]
    priority = np.array(
        [
            snapshot.proposals[i].lab_resource_level == LabResourceLevel.under_resourced
            for i in proposal_rows
        ],
        dtype=bool,
    )
    allowed = eligible[np.ix_(proposal_rows, offer_columns)].copy()
    for mask in left_out.values():
        allowed &= ~_block(mask, proposal_rows, offer_columns)
    scores = totals[np.ix_(proposal_rows, offer_columns)]
    result = allocate(
        scores,
        hours_needed[proposal_rows],
        budget,
        caps,
        eligible=allowed,
        min_score=min_score,
        equity=equity,
        priority=priority if equity == "priority" else None,
    )
    assigned, unassigned = [], []
    for local, column in enumerate(result.assignment):
        proposal = snapshot.proposals[proposal_rows[local]]
        if column < 0:
            unassigned.append(proposal)
            continue
        offer_index = offer_columns[column]
        assigned.append(
            (
                proposal,
                snapshot.offers[offer_index],
                float(totals[proposal_rows[local], offer_index]),
            )
        )
    uses = [
        OfferUse(
            offer=snapshot.offers[j],
            hours_used=float(result.hours_used[local]),
            hours_available=float(facts.hours_left[j]) if facts.has_compute[j] else 0.0,
            projects_used=int(result.projects_used[local]),
            projects_available=int(caps[local]),
        )
        for local, j in enumerate(offer_columns)
    ]
    reasons = _reasons(
        snapshot,
        totals,
        proposal_rows[result.assignment < 0],
        offer_columns,
        hours_needed,
        budget,
        caps,
        left_out,
        today=today,
        min_score=min_score,
        equity=equity is not None,
    )
    effect = None
    if equity is not None and result.plain_assignment is not None:
        effect = equity_effect(
            result.assignment,
            result.plain_assignment,
            scores,
            priority=priority if equity == "priority" else None,
        )
    return Pass(name, result, assigned, unassigned, uses, reasons, effect)


def unverified_organisations(*, session: Session) -> set[int]:
    """Ids of the organisations an administrator has not verified."""
    return set(session.exec(select(Organisation.id).where(col(Organisation.verified).is_(False))))


def unverified_open_offers(*, session: Session) -> int:
    """How many offers a new round would leave out unless told to include unverified ones."""
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(Offer)
            .join(Organisation, col(Organisation.id) == Offer.organisation_id)
            .where(*visible_offers(), col(Organisation.verified).is_(False))
        ).one()
    )


def preview_round(
    *,
    session: Session,
    encoder: Encoder,
    weights: ScoreWeights | None = None,
    equity: Equity | None = None,
    min_score: float | None = None,
    include_unverified: bool = False,
    today: date | None = None,
) -> RoundPreview:
    """Solve a round over every open proposal and offer, without changing anything.

    Offers of unverified organisations take part only with `include_unverified`: a round
    hands out capacity on the platform's word, so by default only verified organisations'
    offers are promised."""
    today = today or date.today()
    snapshot = load_snapshot(session=session)
    corpus = snapshot.corpus
    n_proposals, n_offers = corpus.shape
    totals = np.zeros((n_proposals, n_offers), dtype=np.float32)
    eligible = np.zeros((n_proposals, n_offers), dtype=bool)
    if n_proposals and n_offers:
        matcher = make_matcher(
            session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
        )
        for start in range(0, n_proposals, 2048):
            rows = np.arange(start, min(start + 2048, n_proposals))
            block = matcher.block(corpus, rows)
            totals[rows] = block.total
            eligible[rows] = block.eligible
    # A pair either side dismissed is never assigned.
    dismissed = np.zeros((n_proposals, n_offers), dtype=bool)
    for p, offers_set_aside in corpus.set_aside.items():
        dismissed[p, list(offers_set_aside)] = True
    unverified_ids = unverified_organisations(session=session)
    unverified = np.array(
        [[o.organisation_id in unverified_ids for o in snapshot.offers]], dtype=bool
    ).reshape(1, n_offers)
    left_out = {"dismissed": dismissed}
    if not include_unverified:
        left_out["unverified"] = unverified
    proposals, offers = corpus.proposals, corpus.offers
    # A proposal already introduced to an offer of a kind has that need met: it takes no part
    # in the pass for that kind (else the round could hand it the same offer twice).
    served_compute, served_data = set(), set()
    for proposal_id, kind in session.exec(
        select(Match.proposal_id, Offer.kind)
        .join(Offer, col(Offer.id) == Match.offer_id)
        .where(Match.status == MatchStatus.introduced)
    ):
        (served_data if kind == OfferKind.data else served_compute).add(proposal_id)
    ids = np.array([p.id for p in snapshot.proposals], dtype=np.int64)
    compute_rows = np.flatnonzero(proposals.needs_compute & ~np.isin(ids, list(served_compute)))
    data_rows = np.flatnonzero(proposals.needs_data & ~np.isin(ids, list(served_data)))
    compute = _pass(
        "compute",
        snapshot,
        totals,
        eligible,
        compute_rows,
        np.flatnonzero(offers.has_compute),
        proposals.gpu_hours_needed,
        projects_left=offers.projects_left,
        left_out=left_out,
        equity=equity,
        min_score=min_score,
        today=today,
    )
    # The data pass runs on what the compute pass left: compute+data offers can also serve
    # data-only needs, within their remaining project places, and never twice to one proposal.
    projects_left = offers.projects_left.copy()
    already_served = np.zeros((n_proposals, n_offers), dtype=bool)
    compute_offers = np.flatnonzero(offers.has_compute)
    for local, column in enumerate(compute.allocation.assignment):
        if column >= 0:
            projects_left[compute_offers[column]] -= 1
            already_served[compute_rows[local], compute_offers[column]] = True
    data = _pass(
        "data",
        snapshot,
        totals,
        eligible,
        data_rows,
        np.flatnonzero(offers.has_data),
        np.zeros(n_proposals),
        projects_left=projects_left,
        left_out={**left_out, "already_served": already_served},
        equity=equity,
        min_score=min_score,
        today=today,
    )
    return RoundPreview(
        passes=[compute, data],
        equity=equity,
        include_unverified=include_unverified,
        unverified_offers=[o for o in snapshot.offers if o.organisation_id in unverified_ids],
    )


# Stored rounds: a preview becomes a draft an administrator reviews, then publishes.

EQUITY_CHOICES = ("none", "priority", "maxmin")
DISMISSED = (MatchStatus.declined, MatchStatus.withdrawn)


def _finite(value: float | None) -> float | None:
    """JSON-safe: PostgreSQL's JSON refuses NaN and infinities."""
    return float(value) if value is not None and math.isfinite(value) else None


def _offer_ref(offer: Offer) -> dict[str, Any]:
    return {
        "offer_id": offer.id,
        "title": offer.title,
        "organisation": offer.organisation.name,
        "organisation_id": offer.organisation_id,
    }


def _summary(preview: RoundPreview, algorithm_version: str) -> dict[str, Any]:
    """What the review page shows, frozen at preview time (offers may change afterwards)."""
    passes = []
    taking_part: set[int] = set()
    served: set[int] = set()
    scores: list[float] = []
    for solved in preview.passes:
        outcome = solved.allocation
        taking_part.update(p.id for p in solved.unassigned)  # type: ignore[misc]
        taking_part.update(p.id for p, _, _ in solved.assigned)  # type: ignore[misc]
        served.update(p.id for p, _, _ in solved.assigned)  # type: ignore[misc]
        scores += [score for _, _, score in solved.assigned]
        effect = solved.equity_effect
        passes.append(
            {
                "name": solved.name,
                "status": outcome.status,
                "objective": _finite(outcome.objective) or 0.0,
                "gap": _finite(outcome.gap),
                "mode": outcome.mode,
                "equity_cost": _finite(outcome.equity_cost),
                "equity_effect": None
                if effect is None
                else {
                    key: _finite(v) if isinstance(v, float) else v
                    for key, v in asdict(effect).items()
                },
                "message": outcome.message,
                "assigned": len(solved.assigned),
                "proposals": len(solved.assigned) + len(solved.unassigned),
                "offers": [
                    {
                        **_offer_ref(use.offer),
                        "organisation_verified": use.offer.organisation.verified,
                        "hours_used": _finite(use.hours_used) or 0.0,
                        "hours_available": _finite(use.hours_available) or 0.0,
                        "projects_used": use.projects_used,
                        "projects_available": use.projects_available,
                    }
                    for use in solved.offers
                    if preview.include_unverified or use.offer.organisation.verified
                ],
                "unassigned": [
                    {
                        "proposal_id": proposal.id,
                        "title": proposal.title,
                        "reason_code": reason.code,
                        "reason": reason.text,
                    }
                    for proposal, reason in zip(solved.unassigned, solved.reasons, strict=True)
                ],
            }
        )
    return {
        "algorithm_version": algorithm_version,
        "include_unverified": preview.include_unverified,
        "unverified_offers": [_offer_ref(offer) for offer in preview.unverified_offers],
        "proposals": {"taking_part": len(taking_part), "assigned": len(served)},
        "average_score": _finite(sum(scores) / len(scores)) if scores else None,
        "passes": passes,
    }


def create_round(
    *,
    session: Session,
    encoder: Encoder,
    created_by_id: int | None,
    equity: str = "none",
    min_score: float = 0.0,
    include_unverified: bool = False,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> AllocationRound:
    """Solve a round (see `preview_round`) and store it as a draft with its assignments.

    `equity` is "none", "priority" or "maxmin"; `min_score` in [0, 1], where 0 allows any
    positive score; offers of unverified organisations take part only with
    `include_unverified`. A compute-pass assignment promises the proposal's GPU hours; a
    data-pass one promises 0 hours."""
    if equity not in EQUITY_CHOICES:
        raise DomainError(f"Equity must be one of {', '.join(EQUITY_CHOICES)}.")
    if not 0.0 <= min_score <= 1.0:
        raise DomainError("The minimum score must be between 0 and 1.")
    preview = preview_round(
        session=session,
        encoder=encoder,
        weights=weights,
        equity=None if equity == "none" else equity,  # type: ignore[arg-type]
        min_score=min_score or None,
        include_unverified=include_unverified,
        today=today,
    )
    allocation_round = AllocationRound(
        equity=equity,
        min_score=min_score,
        objective=_finite(preview.objective) or 0.0,
        summary=_summary(preview, (weights or ScoreWeights()).version),
        created_by_id=created_by_id,
    )
    session.add(allocation_round)
    session.flush()
    for solved in preview.passes:
        for proposal, offer, score in solved.assigned:
            session.add(
                AllocationAssignment(
                    round_id=allocation_round.id,
                    proposal_id=proposal.id,
                    offer_id=offer.id,
                    score=score,
                    gpu_hours=proposal.gpu_hours_needed if solved.name == "compute" else 0,
                )
            )
    session.flush()
    return allocation_round


def list_rounds(*, session: Session) -> list[tuple[AllocationRound, int]]:
    """Every round, newest first, with its number of assigned pairs."""
    assigned = (
        select(sa.func.count())
        .where(AllocationAssignment.round_id == AllocationRound.id)
        .scalar_subquery()
    )
    rows = session.exec(
        select(AllocationRound, assigned).order_by(col(AllocationRound.id).desc())
    ).all()
    return [(allocation_round, int(count)) for allocation_round, count in rows]


def fit_score(score: float | None) -> int | None:
    """A score as the fit out of 100 the pages show (clipped to 0-100)."""
    if score is None or not math.isfinite(score):
        return None
    return round(max(0.0, min(1.0, score)) * 100)


@dataclass(frozen=True)
class AssignedPair:
    """One assigned pair of a stored round; `match` is the pair's current match, if any."""

    assignment: AllocationAssignment
    proposal: Proposal
    offer: Offer
    organisation: Organisation
    match: Match | None

    @property
    def fit(self) -> int | None:
        """The pair's fit out of 100, as match cards show it."""
        return fit_score(self.assignment.score)

    @property
    def strength(self) -> str:
        """The plain word for the fit ("Strong", "Good", "Fair", "Weak")."""
        return strength(self.assignment.score).split()[0]

    @property
    def dismissed(self) -> bool:
        """A side dismissed this match: publishing leaves the pair out."""
        return self.match is not None and self.match.status in DISMISSED


def get_round(*, session: Session, round_id: int, lock: bool = False) -> AllocationRound:
    """A stored round; `lock` holds its row until the transaction ends (PostgreSQL), so two
    administrators cannot publish the same draft at once."""
    allocation_round = session.get(AllocationRound, round_id, with_for_update=lock)
    if allocation_round is None:
        raise NotFound(f"No allocation round {round_id}.")
    return allocation_round


def round_pairs(*, session: Session, round_id: int) -> list[AssignedPair]:
    """The round's assigned pairs, best score first."""
    rows = session.exec(
        select(AllocationAssignment, Proposal, Offer, Organisation)
        .join(Proposal, col(Proposal.id) == AllocationAssignment.proposal_id)
        .join(Offer, col(Offer.id) == AllocationAssignment.offer_id)
        .join(Organisation, col(Organisation.id) == Offer.organisation_id)
        .where(AllocationAssignment.round_id == round_id)
        .order_by(col(AllocationAssignment.score).desc(), col(AllocationAssignment.id))
    ).all()
    proposal_ids = {assignment.proposal_id for assignment, *_ in rows}
    matches = {
        (m.proposal_id, m.offer_id): m
        for m in session.exec(select(Match).where(col(Match.proposal_id).in_(proposal_ids)))
    }
    return [
        AssignedPair(
            assignment=assignment,
            proposal=proposal,
            offer=offer,
            organisation=organisation,
            match=matches.get((assignment.proposal_id, assignment.offer_id)),
        )
        for assignment, proposal, offer, organisation in rows
    ]
