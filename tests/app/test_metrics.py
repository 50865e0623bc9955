"""Platform metrics: the numbers on small hand-made data, the chart geometry, and the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.admin import charts
from app.services import metrics
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    OfferStatus,
    OrganisationKind,
    Proposal,
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


def test_bars_are_proportional_when_the_counts_are_alike() -> None:
    chart = charts.bar_chart([("suggested", 10), ("introduced", 5), ("declined", 0)])
    assert chart.scale == "linear" and chart.ticks == []
    assert [bar.length for bar in chart.bars] == [100, 50, 0]
    assert [bar.label for bar in chart.bars] == ["suggested", "introduced", "declined"]
    assert not chart.empty
    assert charts.bar_chart([("none", 0)]).empty and charts.bar_chart([]).empty
    assert charts.bar_chart([("none", 0), ("also none", 0)]).bars[0].length == 0


def test_a_small_count_next_to_a_big_one_gets_a_visible_bar_on_a_labelled_log_scale() -> None:
    """214 suggestions and 1 introduction: linear, the 1 would be a 0.5 % hairline."""
    chart = charts.bar_chart([("Suggested", 214), ("Introduced", 1), ("Declined", 0)])
    assert chart.scale == "log"
    suggested, introduced, declined = chart.bars
    assert suggested.length == pytest.approx(100)
    assert introduced.length > 10 and declined.length == 0
    assert [tick.label for tick in chart.ticks] == ["1", "10", "100"]
    assert [round(tick.position) for tick in chart.ticks] == [13, 45, 86]
    assert chart.ticks[0].position == pytest.approx(introduced.length)
    assert charts.choose_scale([100, 6]) == "linear" and charts.choose_scale([100, 5]) == "log"
    assert charts.bar_chart([("a", 100), ("b", 5)], scale="linear").bars[1].length == 5


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [
        (1, 214, "<1%"),
        (0, 214, "0%"),
        (214, 214, "100%"),
        (213, 214, ">99%"),
        (5, 214, "2.3%"),
        (2, 3, "67%"),
        (1, 10, "10%"),
        (0, 0, "—"),
    ],
)
def test_rates_never_round_a_real_count_to_zero(part: int, whole: int, shown: str) -> None:
    assert metrics.percent_of(part, whole) == shown
    assert metrics.Rate(part, whole).percent == shown


def test_metrics_page_charts_print_every_count_beside_its_bar(
    client: FlaskClient, auth: Any, platform: dict[str, Any], session: Session
) -> None:
    auth.login(platform["admin"].email)
    response = client.get("/admin/metrics")
    assert response.status_code == 200
    html = response.text
    assert '<svg class="chart"' not in html
    status = re.search(r'<table class="bar-chart" id="chart-status">(.*?)</table>', html, re.S)
    assert status
    rows = re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td><span class="bar-cell"><span class="bar-fill" '
        r'style="--length: ([\d.]+)"></span><span class="bar-value">([\d,]+)</span>',
        status[1],
    )
    assert [(label, int(value)) for label, _, value in rows] == [
        ("Suggested", 1),
        ("Academic interested", 1),
        ("Company interested", 0),
        ("Introduced", 2),
        ("Declined", 1),
        ("Withdrawn", 1),
    ]
    assert float(rows[3][1]) == 100 and float(rows[2][1]) == 0 and float(rows[0][1]) == 50
    assert "Logarithmic scale" not in html
    # The fixture's introductions were in March 2026; the page counts the last 12 weeks.
    weeks = re.search(r'id="chart-weeks-caption">.*?</figure>', html, re.S)
    assert weeks and "Nothing to show yet: every count is 0." in weeks[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "67% (2 of 3)" in text and "50% (2 of 4)" in text
    assert "20,000 in open offers" in text

    # Hundreds of suggestions and a few interests: the rate is small, never "0%", and the
    # status chart switches to a labelled log scale so the small counts keep their bars.
    proposal = session.exec(select(Proposal)).first()
    organisation_id = session.exec(select(Offer)).first().organisation_id
    offers = [
        Offer(
            organisation_id=organisation_id,
            kind=OfferKind.compute,
            title=f"Spare GPUs {number}",
            description="Spare GPU hours.",
            gpu_hours_budget=100,
            max_hours_per_project=100,
            max_projects=1,
        )
        for number in range(500)
    ]
    session.add_all(offers)
    session.flush()
    for offer in offers:
        session.add(
            Match(
                proposal_id=proposal.id,
                offer_id=offer.id,
                status=MatchStatus.suggested,
                score=0.3,
                algorithm_version="test",
            )
        )
    session.commit()
    html = client.get("/admin/metrics").text
    text = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))
    assert "Interest rate <1% (4 of 506)" in text
    assert "Logarithmic scale: each mark is ten times the one before" in text
    axis = re.search(r'<div class="bar-axis">(.*?)</div>', html)
    assert axis and re.findall(r">([\d,]+)</span>", axis[1]) == ["1", "10", "100"]
