"""Platform metrics: the numbers on small hand-made data, the chart geometry, and the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from app.admin import charts
from app.services import metrics
from models import (
    Match,
    MatchStatus,
    OfferKind,
    OfferStatus,
    OrganisationKind,
    ProposalStatus,
    Role,
)

TODAY = date(2026, 3, 11)  # a Wednesday; its week starts on Monday 9 March


@pytest.fixture
def platform(
    session: Session,
    make_admin: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> dict[str, Any]:
    university = make_organisation(name="University of Examples")
    company = make_organisation(name="Nimbus Labs", kind=OrganisationKind.company, verified=False)
    admin = make_admin(organisation_id=None)
    alice = make_user(name="Alice", organisation_id=university.id)
    bob = make_user(name="Bob", organisation_id=university.id)
    make_user(name="Suspended Sam", organisation_id=university.id, active=False)
    make_user(role=Role.company, name="Carl", organisation_id=company.id)

    rl, vision, draft_area = ["reinforcement learning", "energy"], ["vision"], ["robotics"]
    p1 = make_proposal(author_id=alice.id, research_areas=rl, gpu_hours_needed=1000)
    p2 = make_proposal(author_id=alice.id, research_areas=vision, gpu_hours_needed=3000)
    p3 = make_proposal(author_id=bob.id, research_areas=rl, gpu_hours_needed=500)
    make_proposal(author_id=bob.id, research_areas=draft_area, status=ProposalStatus.draft)
    closed = make_proposal(author_id=bob.id, status=ProposalStatus.closed, gpu_hours_needed=700)

    compute = make_offer(organisation_id=company.id, gpu_hours_budget=20_000)
    data = make_offer(
        organisation_id=company.id,
        kind=OfferKind.data,
        gpu_hours_budget=0,
        max_hours_per_project=0,
        gpu_type=None,
        gpu_memory_gb=None,
    )
    make_offer(organisation_id=company.id, status=OfferStatus.closed, gpu_hours_budget=9_000)

    this_week = datetime(2026, 3, 10, 12, tzinfo=UTC)
    last_week = datetime(2026, 3, 3, 12, tzinfo=UTC)
    rows = [
        Match(proposal_id=p1.id, offer_id=compute.id, status=MatchStatus.suggested),
        Match(
            proposal_id=p1.id,
            offer_id=data.id,
            status=MatchStatus.interested_academic,
            academic_interested_at=this_week,
        ),
        Match(
            proposal_id=p2.id,
            offer_id=compute.id,
            status=MatchStatus.introduced,
            academic_interested_at=this_week,
            company_interested_at=this_week,
            introduced_at=this_week,
        ),
        Match(
            proposal_id=p2.id,
            offer_id=data.id,
            status=MatchStatus.declined,
            company_interested_at=last_week,
            declined_by="academic",
        ),
        Match(
            proposal_id=closed.id,
            offer_id=compute.id,
            status=MatchStatus.introduced,
            introduced_at=last_week,
        ),
        Match(proposal_id=p3.id, offer_id=data.id, status=MatchStatus.withdrawn),
    ]
    for match in rows:
        match.score, match.algorithm_version = 0.5, "test"
        session.add(match)
    session.commit()
    return {"admin": admin}


def test_platform_metrics_counts_and_rates(session: Session, platform: dict[str, Any]) -> None:
    numbers = metrics.platform_metrics(session=session, today=TODAY, weeks=4)
    assert numbers.users_by_role == {"academic": 3, "company": 1, "admin": 1}
    assert numbers.suspended_users == 1
    assert (numbers.organisations_verified, numbers.organisations_unverified) == (1, 1)
    assert numbers.proposals_by_status == {"draft": 1, "open": 3, "matched": 0, "closed": 1}
    assert numbers.offers_by_status == {"draft": 0, "open": 2, "closed": 1}
    assert numbers.matches_by_status == {
        "suggested": 1,
        "interested_academic": 1,
        "interested_company": 0,
        "introduced": 2,
        "declined": 1,
        "withdrawn": 1,
    }
    # Open proposals: p1 (live suggestions), p2 (introduced), p3 (only a withdrawn match).
    assert (numbers.match_rate.numerator, numbers.match_rate.denominator) == (2, 3)
    # Any interest: the interested, both introduced and the declined-after-interest match.
    assert (numbers.interest_rate.numerator, numbers.interest_rate.denominator) == (4, 6)
    assert numbers.introduction_rate.value == pytest.approx(0.5)
    assert numbers.gpu_hours_offered == 20_000
    assert numbers.gpu_hours_promised == 3000 + 700
    assert numbers.gpu_hours_allocated == 0
    assert numbers.proposals_per_area == [
        ("energy", 2),
        ("reinforcement learning", 2),
        ("vision", 1),
    ]
    assert numbers.introductions_per_week == [
        (date(2026, 2, 16), 0),
        (date(2026, 2, 23), 0),
        (date(2026, 3, 2), 1),
        (date(2026, 3, 9), 1),
    ]
    assert numbers.mails_by_status == {"pending": 0, "sending": 0, "sent": 0, "failed": 0}


def test_rates_on_an_empty_platform_are_undefined_not_errors(session: Session) -> None:
    numbers = metrics.platform_metrics(session=session, today=TODAY)
    assert numbers.match_rate.value is None and numbers.introduction_rate.value is None
    assert len(numbers.introductions_per_week) == 12
    assert numbers.introductions_per_week[-1] == (TODAY - timedelta(days=2), 0)


def test_horizontal_bars_are_proportional_to_their_values() -> None:
    chart = charts.horizontal_bars(
        [("introduced", 10), ("suggested", 5), ("declined", 0)],
        width=500,
        label_width=150,
        value_width=50,
        bar_height=20,
        gap=10,
    )
    assert [bar.width for bar in chart.bars] == [300, 150, 0]
    assert [bar.y for bar in chart.bars] == [10, 40, 70]
    assert chart.height == 100 and chart.maximum == 10
    assert all(bar.x == 150 for bar in chart.bars)
    assert chart.bars[0].value_x == 150 + 300 + 6
    assert max(bar.value_x for bar in chart.bars) < 500
    long = charts.horizontal_bars([("a" * 40, 1)], label_chars=10)
    assert long.bars[0].label == "a" * 9 + "…"
    empty = charts.horizontal_bars([("none", 0)])
    assert empty.bars[0].width == 0


def test_columns_stand_on_the_baseline_and_fit_the_width() -> None:
    chart = charts.columns(
        [("w1", 0), ("w2", 4), ("w3", 2)], width=300, height=200, top=20, bottom=40
    )
    baseline = 200 - 40
    assert chart.baseline == (0, baseline, 300, baseline)
    assert [bar.height for bar in chart.bars] == [0, 140, 70]
    assert all(bar.y + bar.height == baseline for bar in chart.bars)
    assert chart.bars[0].x >= 0 and chart.bars[-1].x + chart.bars[-1].width <= 300
    assert chart.bars[1].x - chart.bars[0].x == pytest.approx(100)
    assert charts.columns([]).bars == []


def test_metrics_page_draws_accessible_charts_with_the_same_numbers(
    client: FlaskClient, auth: Any, platform: dict[str, Any]
) -> None:
    auth.login(platform["admin"].email)
    response = client.get("/admin/metrics")
    assert response.status_code == 200
    html = response.text
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", html, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    status_svg = next(svg for svg in svgs if "Matches by status</title>" in svg)
    assert "introduced: 2" in status_svg and "suggested: 1" in status_svg
    assert len(re.findall(r'<rect class="chart-bar"', status_svg)) == 6
    table = re.search(r"<caption>Matches by status</caption>(.*?)</table>", html, re.S)
    assert table and re.search(r'introduced</th><td class="number">2<', table[1])
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "67% (2 of 3)" in text and "50% (2 of 4)" in text
    assert "20,000 in open offers" in text
