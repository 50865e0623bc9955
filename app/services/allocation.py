"""Allocation rounds: assign scarce offers to proposals, maximising the total match score
under every offer's hour budget and project cap.

Two passes, as the design asks: compute (offers with GPU hours, to proposals that need them),
then data (offers with data, to proposals that need data), on the project places the compute
pass left. A proposal gets at most one offer in each pass, and never the same offer twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
from sqlmodel import Session, col, select

from app.services.recommendations import Snapshot, load_snapshot, make_matcher
from matching import Encoder, ScoreWeights
from matching.allocation import Allocation, allocate
from models import LabResourceLevel, Match, MatchStatus, Offer, OfferKind, Proposal

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
