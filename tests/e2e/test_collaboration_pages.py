"""The collaboration and programme pages as people use them, at 1280 and 390 px: the demo
academic walks their own just-introduced record to "Published" with the company contact
moving it too; a person with more collaborations than a page goes through the list with Next
and Previous; an administrator reads every figure of the programme tables without scrolling
sideways and downloads the CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask_security.proxies import _security
from playwright.sync_api import Browser, Page, expect
from sqlmodel import col, select

from app.services import collaborations, demo, recommendations
from models import (
    Collaboration,
    CollaborationStage,
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    OfferStatus,
    Proposal,
    ProposalStatus,
    Role,
    User,
    utcnow,
)
from tests.e2e.conftest import LiveServer
from tests.e2e.forms import (
    EMAIL_LABEL,
    NO_HORIZONTAL_SCROLL,
    flash,
    give_admin_an_authenticator,
    make_sides,
    sign_in,
)

ACADEMIC = "grace@kestrel.example.org"
MEMBER = "sam@helios.example.com"
DOI = "10.5555/tandem-demo.2026.777"

# Every figure of a programme table that a person cannot read where it stands: outside the
# table's visible box (scrolled out of view), or with no column name beside or above it.
UNREADABLE_FIGURES = """(wrap) => {
  const box = wrap.getBoundingClientRect();
  const within = (r) => r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1;
  const heads = Array.from(wrap.querySelectorAll('thead th'));
  const problems = [];
  for (const row of wrap.querySelectorAll('tbody tr')) {
    const group = row.querySelector('th').textContent.trim();
    row.querySelectorAll('td').forEach((cell, i) => {
      const head = heads[i + 1];
      const name = head.textContent.trim();
      const r = cell.getBoundingClientRect();
      const h = head.getBoundingClientRect();
      const headAbove = within(h) && h.left < r.right && h.right > r.left && h.bottom <= r.top;
      const labelled = getComputedStyle(cell, '::before').content === JSON.stringify(name);
      if (!within(r)) problems.push(`${group} / ${name}: out of view`);
      else if (!headAbove && !labelled) problems.push(`${group} / ${name}: no column name`);
    });
  }
  return problems;
}"""


@pytest.fixture
def page(any_width_page: Page) -> Page:
    return any_width_page


@pytest.fixture
def demo_server(live_server: LiveServer) -> LiveServer:
    """The demo as `flask demo load` leaves it: catalogue ranked, its scripted
    collaborations walked, ranked again; the administrator on an authenticator."""
    encoder = live_server.app.extensions["tandem.encoder"]
    with live_server.app.app_context(), live_server.session() as session:
        data = demo.read_demo_data()
        demo.load_demo(session=session, data=data)
        session.flush()
        recommendations.recompute_all(session=session, encoder=encoder, k=5)
        assert demo.load_collaborations(session=session, data=data) == 7
        recommendations.recompute_all(session=session, encoder=encoder, k=5)
        give_admin_an_authenticator(session)
        session.commit()
    return live_server


def _demo_login(role: str) -> str:
    (email,) = [e for r, e, _ in demo.demo_logins(demo.read_demo_data()) if r == role]
    return email


def _sign_in_with_demo_password(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.url + "/")
    banner = page.get_by_role("banner")
    if not banner.get_by_role("link", name="Sign in", exact=True).is_visible():
        banner.get_by_role("button", name=re.compile("menu", re.IGNORECASE)).click()
    banner.get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label("Password", exact=True).fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _save(page: Page, stage: str) -> None:
    page.get_by_role("button", name="Save the new stage").click()
    expect(flash(page)).to_contain_text(f"now at “{stage}”")
    expect(page.locator(".collaboration-facts")).to_contain_text(stage)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    # Each date of the record reads on one line, never "2026-" then "12-04".
    dates = page.locator(".collaboration-facts time")
    assert dates.evaluate_all("ts => ts.filter(t => t.getClientRects().length > 1).length") == 0


def test_the_demo_academic_walks_their_own_record_from_introduced_to_published(
    page: Page, demo_server: LiveServer, browser: Browser
) -> None:
    academic_email = _demo_login("academic")
    _sign_in_with_demo_password(page, demo_server, academic_email)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # From the introduced match on the dashboard to its record.
    page.get_by_role("link", name=re.compile("^Collaboration record")).first.click()
    facts = page.locator(".collaboration-facts")
    expect(facts).to_contain_text("Introduced")
    title = page.get_by_role("heading", level=1).inner_text().removeprefix("Collaboration: ")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)

    page.get_by_label(re.compile("^Talking")).check()
    _save(page, "Talking")
    page.get_by_label(re.compile("^Agreement signed")).check()
    page.get_by_label("Data-use agreement").check()
    page.get_by_label("Date the agreement was signed").fill(
        (utcnow() - timedelta(days=2)).date().isoformat()
    )
    _save(page, "Agreement signed")

    # The company contact of this pair moves it on from their own list of collaborations.
    with demo_server.session() as session:
        record = session.exec(
            select(Collaboration)
            .join(Match, col(Match.id) == col(Collaboration.match_id))
            .join(Proposal, col(Proposal.id) == col(Match.proposal_id))
            .join(User, col(User.id) == col(Proposal.author_id))
            .where(User.email == academic_email)
            .where(Collaboration.stage == CollaborationStage.agreement_signed)
        ).one()
        contact = session.get(User, session.get(Match, record.match_id).company_contact_id)
    company = browser.new_context(viewport=page.viewport_size).new_page()
    try:
        _sign_in_with_demo_password(company, demo_server, contact.email)
        company.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Collaborations"
        ).click()
        company.get_by_role("row").filter(has_text=title).get_by_role("link").click()
        # What is on record is said beside the fields that would correct it.
        expect(company.get_by_text(re.compile("^Recorded: Data-use agreement"))).to_be_visible()
        company.get_by_label(re.compile("^Started")).check()
        company.get_by_label("GPU hours granted").fill("400")
        _save(company, "Started")
    finally:
        company.context.close()

    page.reload()
    expect(page.locator(".collaboration-facts")).to_contain_text("Started")
    page.get_by_label(re.compile("^Completed")).check()
    page.get_by_label("GPU hours used so far (optional)").fill("380")
    _save(page, "Completed")
    # From "Completed" only "Published" is left: no reason for ending is asked.
    expect(page.get_by_label("Why it ended")).to_have_count(0)
    page.get_by_label(re.compile("^Published")).check()
    page.get_by_label("DOI or link of the result").fill(DOI)
    _save(page, "Published")
    expect(page.get_by_role("link", name=f"https://doi.org/{DOI}")).to_be_visible()
    expect(page.get_by_text(re.compile("reached its outcome"))).to_be_visible()

    page.get_by_role("link", name="All collaborations").click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("Published")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


def _many_records(server: LiveServer, count: int) -> None:
    """A researcher with `count` proposals "Study N", each introduced to the same company's
    offer with a record; the higher N moved more recently."""
    academic, member = make_sides(
        server, academic=(ACADEMIC, "Grace Hopper"), member=(MEMBER, "Sam Reyes")
    )
    now = utcnow()
    with server.app.app_context(), server.session() as session:
        offer = Offer(
            kind=OfferKind.compute,
            title="H100 hours for open research",
            description="H100 hours for academic projects that publish openly.",
            gpu_type="H100",
            gpu_hours_budget=50_000,
            max_hours_per_project=1_000,
            max_projects=count,
            status=OfferStatus.open,
            organisation_id=member.organisation_id,
            created_by_id=member.id,
        )
        session.add(offer)
        session.flush()
        for number in range(1, count + 1):
            proposal = Proposal(
                title=f"Study {number}",
                abstract="A study that needs a little compute and publishes openly.",
                research_areas=["reinforcement learning"],
                gpu_hours_needed=100,
                status=ProposalStatus.matched,
                author_id=academic.id,
            )
            session.add(proposal)
            session.flush()
            match = Match(
                proposal_id=proposal.id,
                offer_id=offer.id,  # type: ignore[arg-type]
                score=0.5,
                algorithm_version="e2e",
                status=MatchStatus.introduced,
                introduced_at=now,
                company_contact_id=member.id,
            )
            session.add(match)
            session.flush()
            collaborations.start(session=session, match=match, now=now + timedelta(minutes=number))
        session.commit()


def test_a_long_list_of_collaborations_goes_page_by_page(
    page: Page, live_server: LiveServer
) -> None:
    per_page = live_server.app.config["TANDEM_PAGE_SIZE"]
    count = per_page + 2
    _many_records(live_server, count)
    sign_in(page, live_server, ACADEMIC)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collaborations").click()
    expect(page.get_by_text(f"{count} collaborations, most recently moved first")).to_be_visible()
    titles: Callable[[], list[str]] = lambda: [  # noqa: E731
        text.split(" × ")[0] for text in page.locator("table.collaborations a").all_inner_texts()
    ]
    expect(page.locator("table.collaborations tbody tr")).to_have_count(per_page)
    assert titles() == [f"Study {n}" for n in range(count, count - per_page, -1)]
    pages = page.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text("Page 1 of 2")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)

    pages.get_by_role("link", name=re.compile("Next")).click()
    expect(pages).to_contain_text("Page 2 of 2")
    assert titles() == ["Study 2", "Study 1"]
    expect(pages.get_by_role("link", name=re.compile("Next"))).to_have_count(0)
    # A record on page 2 opens, and its way back leads to the list.
    page.get_by_role("link", name=re.compile("^Study 1 ×")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Study 1")
    page.get_by_role("link", name="All collaborations").click()
    page.get_by_role("navigation", name="Pages").get_by_role(
        "link", name=re.compile("Next")
    ).click()
    pages.get_by_role("link", name=re.compile("Previous")).click()
    expect(pages).to_contain_text("Page 1 of 2")
    assert titles()[0] == f"Study {count}"


def _sign_in_as_admin(page: Page, server: LiveServer) -> None:
    with server.session() as session:
        admin = session.exec(select(User).where(User.role == Role.admin)).one()
        email, secret = admin.email, admin.tf_totp_secret
    _sign_in_with_demo_password(page, server, email)
    with server.app.app_context():
        code = _security._totp_factory.generate_totp_password(secret)
    page.get_by_label("Authentication Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_administrator_reads_every_programme_figure_without_scrolling_sideways(
    page: Page, demo_server: LiveServer, tmp_path: Path
) -> None:
    _sign_in_as_admin(page, demo_server)
    page.goto(demo_server.url + "/admin/")
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Programme", exact=True
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Programme report")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    for name in ("Outcomes by lab resource level", "Outcomes by research field"):
        wrap = page.locator(f"div.table-wrap[aria-label='{name}']")
        expect(wrap.get_by_role("row").nth(1)).to_be_visible()
        assert wrap.evaluate(UNREADABLE_FIGURES) == [], name

    labs = page.locator("div.table-wrap[aria-label='Outcomes by lab resource level']")
    under = labs.get_by_role("row", name=re.compile("^Under-resourced labs"))
    shown_introduced = under.get_by_role("cell").first.inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the table as CSV").click()
    saved = tmp_path / "programme.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    lab = next(r for r in rows if r["grouping"] == "lab" and r["group"] == "Under-resourced labs")
    assert lab["introduced"] == shown_introduced.replace(",", "")
