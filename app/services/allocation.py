"""Allocation rounds: assign scarce offers to proposals, maximising the total match score
under every offer's hour budget and project cap.

Two passes, as the design asks: compute (offers with GPU hours, to proposals that need them),
then data (offers with data, to proposals that need data), on the project places the compute
pass left. A proposal gets at most one offer in each pass, and never the same offer twice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services.catalogue import author_label
from app.services.errors import Conflict, DomainError, NotFound
from app.services.recommendations import (
    Snapshot,
    ineligible_pairs,
    load_snapshot,
    make_matcher,
    visible_offers,
    visible_proposals,
)
from matching import Encoder, ScoreWeights
from matching.allocation import Allocation, allocate
from models import (
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    LabResourceLevel,
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    Organisation,
    Proposal,
    Role,
    User,
    utcnow,
)

Equity = Literal["priority", "maxmin"]


@dataclass(frozen=True)
class OfferUse:
    offer: Offer
    hours_used: float
    hours_available: float
    projects_used: int
    projects_available: int


@dataclass(frozen=True)
class Pass:
    """One pass (compute or data) of a round: who gets what, and how full each offer is."""

    name: str
    allocation: Allocation
    assigned: list[tuple[Proposal, Offer, float]]
    unassigned: list[Proposal]
    offers: list[OfferUse]


@dataclass(frozen=True)
class RoundPreview:
    passes: list[Pass]
    equity: Equity | None

    @property
    def objective(self) -> float:
        return sum(p.allocation.objective for p in self.passes)


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
    equity: Equity | None,
    min_score: float | None,
) -> Pass:
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
    result = allocate(
        totals[np.ix_(proposal_rows, offer_columns)],
        hours_needed[proposal_rows],
        budget,
        caps,
        eligible=eligible[np.ix_(proposal_rows, offer_columns)],
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
    return Pass(name, result, assigned, unassigned, uses)


def preview_round(
    *,
    session: Session,
    encoder: Encoder,
    weights: ScoreWeights | None = None,
    equity: Equity | None = None,
    min_score: float | None = None,
    today: date | None = None,
) -> RoundPreview:
    """Solve a round over every open proposal and offer, without changing anything."""
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
    for p, offers_set_aside in corpus.set_aside.items():
        eligible[p, list(offers_set_aside)] = False
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
        equity=equity,
        min_score=min_score,
    )
    # The data pass runs on what the compute pass left: compute+data offers can also serve
    # data-only needs, within their remaining project places, and never twice to one proposal.
    projects_left = offers.projects_left.copy()
    data_eligible = eligible.copy()
    compute_offers = np.flatnonzero(offers.has_compute)
    for local, column in enumerate(compute.allocation.assignment):
        if column >= 0:
            projects_left[compute_offers[column]] -= 1
            data_eligible[compute_rows[local], compute_offers[column]] = False
    data = _pass(
        "data",
        snapshot,
        totals,
        data_eligible,
        data_rows,
        np.flatnonzero(offers.has_data),
        np.zeros(n_proposals),
        projects_left=projects_left,
        equity=equity,
        min_score=min_score,
    )
    return RoundPreview(passes=[compute, data], equity=equity)


# Stored rounds: a preview becomes a draft an administrator reviews, then publishes.

EQUITY_CHOICES = ("none", "priority", "maxmin")
DISMISSED = (MatchStatus.declined, MatchStatus.withdrawn)


def _finite(value: float | None) -> float | None:
    """JSON-safe: PostgreSQL's JSON refuses NaN and infinities."""
    return float(value) if value is not None and math.isfinite(value) else None


def _summary(preview: RoundPreview, algorithm_version: str) -> dict[str, Any]:
    """What the review page shows, frozen at preview time (offers may change afterwards)."""
    passes = []
    for solved in preview.passes:
        outcome = solved.allocation
        passes.append(
            {
                "name": solved.name,
                "status": outcome.status,
                "objective": _finite(outcome.objective) or 0.0,
                "gap": _finite(outcome.gap),
                "mode": outcome.mode,
                "equity_cost": _finite(outcome.equity_cost),
                "message": outcome.message,
                "assigned": len(solved.assigned),
                "offers": [
                    {
                        "offer_id": use.offer.id,
                        "title": use.offer.title,
                        "organisation": use.offer.organisation.name,
                        "hours_used": _finite(use.hours_used) or 0.0,
                        "hours_available": _finite(use.hours_available) or 0.0,
                        "projects_used": use.projects_used,
                        "projects_available": use.projects_available,
                    }
                    for use in solved.offers
                ],
                "unassigned": [
                    {"proposal_id": proposal.id, "title": proposal.title}
                    for proposal in solved.unassigned
                ],
            }
        )
    return {"algorithm_version": algorithm_version, "passes": passes}


def create_round(
    *,
    session: Session,
    encoder: Encoder,
    created_by_id: int | None,
    equity: str = "none",
    min_score: float = 0.0,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> AllocationRound:
    """Solve a round (see `preview_round`) and store it as a draft with its assignments.

    `equity` is "none", "priority" or "maxmin"; `min_score` in [0, 1], where 0 allows any
    positive score. A compute-pass assignment promises the proposal's GPU hours; a data-pass
    one promises 0 hours."""
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


@dataclass(frozen=True)
class AssignedPair:
    """One assigned pair of a stored round; `match` is the pair's current match, if any."""

    assignment: AllocationAssignment
    proposal: Proposal
    offer: Offer
    organisation: Organisation
    match: Match | None

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


@dataclass(frozen=True)
class AllocatedItem:
    """One allocated pair as a notification describes it. `proposal_label` is the anonymous
    description of the author (never their name); offers carry their organisation's name."""

    proposal_id: int
    proposal_title: str
    proposal_label: str
    offer_id: int
    offer_title: str
    organisation: str
    gpu_hours: int


@dataclass(frozen=True)
class Notice:
    """An email to send once the publication is committed, rendered from
    `templates/email/<template>.txt` and `.html` with `context`."""

    to: str
    name: str
    template: str
    subject: str
    context: dict[str, Any]


@dataclass(frozen=True)
class PublishedRound:
    round: AllocationRound
    linked: int
    created: int
    skipped: int
    notices: list[Notice]


def _check_still_valid(session: Session, allocation_round: AllocationRound) -> None:
    """Refuse a draft the world has moved past: a later round already handed out capacity,
    or an assigned proposal or offer is no longer open (closed, hidden, author suspended)."""
    later = session.exec(
        select(AllocationRound).where(
            AllocationRound.status == AllocationRoundStatus.published,
            col(AllocationRound.published_at) >= allocation_round.created_at,
        )
    ).first()
    if later is not None:
        raise Conflict(
            f"Round {later.id} was published after this draft was computed, so its capacity "
            "figures are out of date. Discard this draft and compute a new round."
        )
    assignments = session.exec(
        select(AllocationAssignment).where(AllocationAssignment.round_id == allocation_round.id)
    ).all()
    proposal_ids = {a.proposal_id for a in assignments}
    offer_ids = {a.offer_id for a in assignments}
    open_proposals = set(
        session.exec(
            select(Proposal.id).where(col(Proposal.id).in_(proposal_ids), *visible_proposals())
        )
    )
    open_offers = set(
        session.exec(select(Offer.id).where(col(Offer.id).in_(offer_ids), *visible_offers()))
    )
    gone = [f"proposal {i}" for i in sorted(proposal_ids - open_proposals)] + [
        f"offer {i}" for i in sorted(offer_ids - open_offers)
    ]
    if gone:
        raise Conflict(
            f"This draft is out of date: {', '.join(gone)} no longer take part in matching. "
            "Discard it and compute a new round."
        )


def publish_round(*, session: Session, round_id: int) -> PublishedRound:
    """Publish a draft round: link every assigned pair's match to it (creating the match,
    with the round's score, where the pair has none) and prepare the notifications.

    Pairs whose match a side has dismissed are left out (neither linked nor announced). The
    returned notices are for the caller to send after committing: one per academic with an
    allocated proposal, one per active member of each company with an allocated offer.
    Allocation reveals no contact details; the two sides still confirm interest first."""
    allocation_round = get_round(session=session, round_id=round_id, lock=True)
    if allocation_round.status == AllocationRoundStatus.published:
        raise Conflict(f"Round {round_id} is already published.")
    _check_still_valid(session, allocation_round)
    pairs = round_pairs(session=session, round_id=round_id)
    if not pairs:
        raise DomainError("This round assigns no proposal, so there is nothing to publish.")
    version = str(allocation_round.summary.get("algorithm_version") or "allocation")
    linked = created = skipped = 0
    by_author: dict[int, list[AllocatedItem]] = defaultdict(list)
    by_organisation: dict[int, list[AllocatedItem]] = defaultdict(list)
    # A pair that stopped fitting since the draft (e.g. an exclusion was added) is left out.
    no_longer_fit = ineligible_pairs(
        session=session, pairs=[(pair.proposal.id, pair.offer.id) for pair in pairs]
    )
    for pair in pairs:
        if pair.dismissed or (pair.proposal.id, pair.offer.id) in no_longer_fit:
            skipped += 1
            continue
        match = pair.match
        if match is None:
            match = Match(
                proposal_id=pair.proposal.id,  # type: ignore[arg-type]
                offer_id=pair.offer.id,  # type: ignore[arg-type]
                score=pair.assignment.score,
                algorithm_version=version,
            )
            created += 1
        else:
            linked += 1
        match.allocation_round_id = allocation_round.id
        session.add(match)
        item = AllocatedItem(
            proposal_id=pair.proposal.id,  # type: ignore[arg-type]
            proposal_title=pair.proposal.title,
            proposal_label=author_label(session=session, proposal=pair.proposal),
            offer_id=pair.offer.id,  # type: ignore[arg-type]
            offer_title=pair.offer.title,
            organisation=pair.organisation.name,
            gpu_hours=pair.assignment.gpu_hours,
        )
        by_author[pair.proposal.author_id].append(item)
        by_organisation[pair.organisation.id].append(item)  # type: ignore[index]
    allocation_round.status = AllocationRoundStatus.published
    allocation_round.published_at = utcnow()
    session.add(allocation_round)
    session.flush()

    notices: list[Notice] = []
    authors = session.exec(
        select(User).where(col(User.id).in_(by_author), col(User.active).is_(True))
    ).all()
    for author in sorted(authors, key=lambda u: u.id or 0):
        items = by_author[author.id]  # type: ignore[index]
        notices.append(
            Notice(
                to=author.email,
                name=author.name,
                template="round_published_academic",
                subject="Your proposal was allocated an offer on Tandem"
                if len(items) == 1
                else "Your proposals were allocated offers on Tandem",
                context={"name": author.name, "items": items, "round_id": allocation_round.id},
            )
        )
    members = session.exec(
        select(User)
        .where(
            col(User.organisation_id).in_(by_organisation),
            User.role == Role.company,
            col(User.active).is_(True),
        )
        .order_by(col(User.id))
    ).all()
    for member in members:
        items = by_organisation[member.organisation_id]  # type: ignore[index]
        notices.append(
            Notice(
                to=member.email,
                name=member.name,
                template="round_published_company",
                subject=f"Allocation round {allocation_round.id}: proposals allocated to "
                f"{items[0].organisation}'s offers",
                context={
                    "name": member.name,
                    "organisation": items[0].organisation,
                    "items": items,
                    "round_id": allocation_round.id,
                },
            )
        )
    return PublishedRound(
        round=allocation_round, linked=linked, created=created, skipped=skipped, notices=notices
    )


def discard_round(*, session: Session, round_id: int) -> None:
    """Delete a draft round and its assignments; a published round stays on record."""
    allocation_round = get_round(session=session, round_id=round_id)
    if allocation_round.status == AllocationRoundStatus.published:
        raise Conflict(f"Round {round_id} is published and cannot be discarded.")
    session.exec(
        sa.delete(AllocationAssignment).where(col(AllocationAssignment.round_id) == round_id)
    )
    session.delete(allocation_round)
    session.flush()
