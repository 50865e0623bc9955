"""The programme report in a real browser at 1280 and 390 px: an administrator reaches it
from the administration menu, reads the funnel chart, the hours and the time to agreement,
scrolls the tables inside their own region, and downloads the table as CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask_security.proxies import _security
from playwright.sync_api import Page, expect
from sqlmodel import select

from app.services import demo, recommendations
from app.services.programme import programme_report
from models import (
    Collaboration,
    CollaborationStage,
    LabResourceLevel,
    Match,
    MatchStatus,
    Proposal,
    Role,
    User,
    utcnow,
)
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, give_admin_an_authenticator


@pytest.fixture
def page(any_width_page: Page) -> Page:
    return any_width_page


@pytest.fixture
def programme_server(live_server: LiveServer) -> LiveServer:
    """The demo catalogue ranked, three of its pairs introduced and followed to an agreement
    (one published, from an under-resourced lab), the administrator on an authenticator."""
    with live_server.app.app_context(), live_server.session() as session:
        demo.load_demo(session=session, data=demo.read_demo_data())
        session.flush()
        recommendations.recompute_all(
            session=session, encoder=live_server.app.extensions["tandem.encoder"], k=5
        )
        suggested = session.exec(
            select(Match).where(Match.status == MatchStatus.suggested).order_by(Match.id)
        ).all()
        introduced_at = utcnow() - timedelta(days=40)
        for match, stage, hours in zip(
            suggested[:3],
            (CollaborationStage.published, CollaborationStage.started, CollaborationStage.talking),
            (1200, 800, None),
            strict=True,
        ):
            match.status, match.introduced_at = MatchStatus.introduced, introduced_at
            session.add(match)
            session.flush()
            existing = session.exec(
                select(Collaboration).where(Collaboration.match_id == match.id)
            ).first()
            collaboration = existing or Collaboration(match_id=match.id)
            collaboration.stage = stage
            collaboration.gpu_hours_granted = hours
            collaboration.gpu_hours_used = hours // 2 if hours else None
            if hours:
                collaboration.agreement_signed_on = date.today() - timedelta(days=26)
            session.add(collaboration)
        first = session.get(Proposal, suggested[0].proposal_id)
        first.lab_resource_level = LabResourceLevel.under_resourced
        session.add(first)
        give_admin_an_authenticator(session)
        session.commit()
    return live_server


def _sign_in_as_admin(page: Page, server: LiveServer) -> None:
    with server.session() as session:
        admin = session.exec(select(User).where(User.role == Role.admin)).one()
        email, secret = admin.email, admin.tf_totp_secret
    page.goto(server.url + "/")
    banner = page.get_by_role("banner")
    if not banner.get_by_role("link", name="Sign in", exact=True).is_visible():
        banner.get_by_role("button", name=re.compile("menu", re.IGNORECASE)).click()
    banner.get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label(re.compile(r"^email address$", re.IGNORECASE)).fill(email)
    page.get_by_label("Password", exact=True).fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    with server.app.app_context():
        code = _security._totp_factory.generate_totp_password(secret)
    page.get_by_label("Authentication Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.goto(server.url + "/admin/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")


def test_an_administrator_reads_the_programme_and_downloads_its_table(
    page: Page, programme_server: LiveServer, tmp_path: Path
) -> None:
    with programme_server.session() as session:
        report = programme_report(session=session)
    funnel = {key: count for key, _, count in report.funnel}
    assert funnel["published"] >= 1 and funnel["agreement_signed"] >= 2
    _sign_in_as_admin(page, programme_server)
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Programme", exact=True
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Programme report")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)

    chart = page.locator("figure").filter(has_text="furthest step reached")
    for _key, label, count in report.funnel:
        row = chart.get_by_role("row", name=re.compile(f"^{re.escape(label)}"))
        expect(row.locator(".bar-value")).to_have_text(f"{count:,}")
    published = chart.get_by_role("row", name=re.compile("^Published")).locator(".bar-fill")
    box = published.bounding_box()
    assert box and box["width"] >= 4, box
    expect(page.locator("dd").filter(has_text="days from the introduction")).to_contain_text(
        f"median {report.days_to_agreement_median} days"
    )
    expect(page.get_by_text(f"{report.gpu_hours_granted:,}", exact=True).first).to_be_visible()

    screenshot(page, f"admin-programme-{page.viewport_size['width']}")  # type: ignore[index]
    labs = page.get_by_role("region", name="Outcomes by lab resource level")
    under = labs.get_by_role("row", name=re.compile("^Under-resourced labs"))
    expect(under.get_by_role("cell").first).to_have_text(str(report.by_lab[0].introduced))

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the table as CSV").click()
    saved = tmp_path / "programme.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    lab_rows = {row["group"]: row for row in rows if row["grouping"] == "lab"}
    assert lab_rows["Under-resourced labs"]["introduced"] == str(report.by_lab[0].introduced)
    assert sum(int(r["published"]) for r in lab_rows.values()) == funnel["published"]
