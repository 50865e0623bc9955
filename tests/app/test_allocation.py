"""Allocation rounds on the demo data: every capacity respected, only eligible pairs."""

from __future__ import annotations

from collections import defaultdict

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session

from app.services import allocation, recommendations
from matching import check_eligibility
from models import LabResourceLevel, OfferKind


@pytest.fixture
def preview(app: Flask, session: Session, demo_loaded: str):
    def solve(**options):
        return allocation.preview_round(
            session=session, encoder=app.extensions["tandem.encoder"], **options
        )

    return solve


def test_round_respects_every_capacity_and_constraint(session: Session, preview) -> None:
    result = preview(min_score=0.3)
    compute, data = result.passes
    assert compute.name == "compute" and data.name == "data"
    assert compute.allocation.status == "optimal"
    assert compute.assigned and data.assigned
    snapshot = recommendations.load_snapshot(session=session)
    for solved in result.passes:
        hours, projects = defaultdict(float), defaultdict(int)
        seen = set()
        for proposal, offer, score in solved.assigned:
            assert proposal.id not in seen
            seen.add(proposal.id)
            assert score >= 0.3
            hours[offer.id] += proposal.gpu_hours_needed if solved.name == "compute" else 0
            projects[offer.id] += 1
        for use in solved.offers:
            assert use.projects_used == projects[use.offer.id] <= use.projects_available
            if solved.name == "compute":
                assert use.hours_used == pytest.approx(hours[use.offer.id])
                assert use.hours_used <= use.hours_available + 1e-6
            else:
                assert use.offer.kind in (OfferKind.data, OfferKind.compute_data)
    places = defaultdict(int)
    for solved in result.passes:
        for _proposal, offer, _ in solved.assigned:
            places[offer.id] += 1
    for offer in snapshot.offers:
        left = snapshot.corpus.offers.projects_left[snapshot.offer_index()[offer.id]]
        assert places[offer.id] <= left, offer.title
    both = {(p.id, o.id) for p, o, _ in compute.assigned} & {
        (p.id, o.id) for p, o, _ in data.assigned
    }
    assert both == set()
    index = snapshot.proposal_index()
    offer_index = snapshot.offer_index()
    mask = check_eligibility(snapshot.corpus.proposals, snapshot.corpus.offers).mask
    for solved in result.passes:
        for proposal, offer, _ in solved.assigned:
            assert mask[index[proposal.id], offer_index[offer.id]]


def test_priority_equity_moves_hours_towards_under_resourced_labs(preview) -> None:
    def share(result) -> float:
        compute = result.passes[0]
        total = sum(p.gpu_hours_needed for p, _, _ in compute.assigned)
        under = sum(
            p.gpu_hours_needed
            for p, _, _ in compute.assigned
            if p.lab_resource_level == LabResourceLevel.under_resourced
        )
        return under / total

    plain, fair = preview(min_score=0.3), preview(min_score=0.3, equity="priority")
    assert share(fair) >= share(plain)
    assert fair.passes[0].allocation.equity_cost is not None
    assert fair.passes[0].allocation.equity_cost >= -1e-6
    assert fair.objective <= plain.objective + 1e-6


def test_allocate_preview_command_prints_objective_use_and_unassigned(
    runner: FlaskCliRunner, demo_loaded: str
) -> None:
    result = runner.invoke(args=["allocate", "--preview", "--min-score", "0.45"])
    assert result.exit_code == 0, result.output
    for phrase in (
        "Total score of assigned pairs",
        "compute pass",
        "data pass",
        "Offer utilisation",
        "Unassigned proposals",
        "status optimal",
    ):
        assert phrase in result.output
    refused = runner.invoke(args=["allocate"])
    assert refused.exit_code != 0 and "--preview" in refused.output


def test_a_proposal_already_introduced_to_compute_is_not_allocated_compute_again(
    session: Session, preview
) -> None:
    from sqlmodel import select

    from models import Match, MatchStatus, Offer

    match = session.exec(
        select(Match)
        .join(Offer, Offer.id == Match.offer_id)  # type: ignore[arg-type]
        .where(Offer.kind == OfferKind.compute, Match.rank_for_proposal == 1)
    ).first()
    match.status = MatchStatus.introduced
    session.add(match)
    session.commit()
    compute = preview(min_score=0.3).passes[0]
    in_round = {p.id for p, _, _ in compute.assigned} | {p.id for p in compute.unassigned}
    assert match.proposal_id not in in_round


def test_data_only_needs_can_be_met_by_compute_plus_data_offers(preview) -> None:
    data = preview(min_score=0.0).passes[1]
    kinds = {offer.kind for _, offer, _ in data.assigned}
    assert OfferKind.compute_data in {use.offer.kind for use in data.offers}
    assert kinds <= {OfferKind.data, OfferKind.compute_data}
