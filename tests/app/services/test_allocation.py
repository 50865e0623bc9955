"""Allocation rounds on the demo data: every capacity respected, only eligible pairs."""

from __future__ import annotations

from collections import defaultdict

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session

from app.services import allocation, corpus
from matching import check_eligibility
from matching.round_report import REASON_HEADINGS
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
    snapshot = corpus.load_snapshot(session=session)
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


@pytest.mark.semantic
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
        "below the round's minimum of 45/100",
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


def test_every_unassigned_proposal_gets_a_reason_that_holds(preview) -> None:
    """On the demo, each unassigned proposal's reason agrees with the round's own numbers."""
    result = preview(min_score=0.45)
    explained = 0
    for solved in result.passes:
        assert len(solved.reasons) == len(solved.unassigned)
        for proposal, reason in zip(solved.unassigned, solved.reasons, strict=True):
            assert reason.code in REASON_HEADINGS and reason.text.endswith(".")
            explained += 1
            if reason.code == "below_min_score":
                assert reason.best_fit is not None and reason.best_fit < 45
            if reason.code == "per_project_limit":
                assert f"{proposal.gpu_hours_needed:,}" in reason.text
    assert explained > 0
    codes = {reason.code for solved in result.passes for reason in solved.reasons}
    assert "below_min_score" in codes


@pytest.mark.semantic
def test_unverified_organisations_offers_take_part_only_when_included(preview) -> None:
    left_out, included = preview(min_score=0.3), preview(min_score=0.3, include_unverified=True)
    names = {offer.organisation.name for offer in left_out.unverified_offers}
    assert names == {"Brightclause Legal Technologies", "Transitmesh Data"}
    assert [o.id for o in included.unverified_offers] == [o.id for o in left_out.unverified_offers]
    unverified = {offer.id for offer in left_out.unverified_offers}
    assert not any(o.id in unverified for s in left_out.passes for _, o, _ in s.assigned)
    assert any(o.id in unverified for s in included.passes for _, o, _ in s.assigned)


def test_allocate_command_leaves_unverified_offers_out_unless_asked(
    runner: FlaskCliRunner, demo_loaded: str
) -> None:
    plain = runner.invoke(args=["allocate", "--preview"])
    assert plain.exit_code == 0, plain.output
    assert (
        "Offers of unverified organisations, left out (--include-unverified adds them): 2"
        in plain.output
    )
    assert "Brightclause Legal Technologies" in plain.output
    included = runner.invoke(args=["allocate", "--preview", "--include-unverified"])
    assert included.exit_code == 0, included.output
    assert "Offers of unverified organisations, included: 2" in included.output
