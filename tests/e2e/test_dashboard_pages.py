"""Both dashboards used by a person who owns more than a page: the count says how many in all,
Next and Previous lead through the pages at any width, and a button pressed on a later
page comes back to that page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import Offer, OfferKind, Proposal, ProposalStatus, User
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, flash, make_sides, sign_in

PROPOSALS = 7
OFFERS = 6


@pytest.fixture
def owners(live_server: LiveServer) -> tuple[LiveServer, User, User]:
    academic, member = make_sides(
        live_server,
        academic=("ada@kestrel.example.org", "Ada Byron"),
        member=("sam@helios.example.com", "Sam Reyes"),
    )
    with live_server.session() as session:
        for number in range(1, PROPOSALS + 1):
            session.add(
                Proposal(
                    title=f"Protein folding study {number}",
                    abstract="A study of protein folding that needs GPU time and publishes.",
                    research_areas=["computational biology"],
                    gpu_hours_needed=1_000,
                    author_id=academic.id,
                )
            )
        for number in range(1, OFFERS + 1):
            session.add(
                Offer(
                    kind=OfferKind.compute,
                    title=f"Compute offer {number}",
                    description="GPU hours for academic work that publishes openly.",
                    gpu_type="H100",
                    gpu_hours_budget=10_000,
                    max_hours_per_project=2_000,
                    max_projects=3,
                    organisation_id=member.organisation_id,
                    created_by_id=member.id,
                )
            )
        session.commit()
    return live_server, academic, member


def test_the_academic_pages_through_their_proposals(
    any_width_page: Page, owners: tuple[LiveServer, User, User]
) -> None:
    page = any_width_page
    server, academic, _ = owners
    sign_in(page, server, academic.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")
    main = page.locator("main")
    expect(main).to_contain_text(f"Proposals 1–5 of {PROPOSALS}")
    titles = page.locator("main article.proposal-card h3")
    first = titles.all_inner_texts()
    assert first == [f"Protein folding study {n}" for n in range(PROPOSALS, PROPOSALS - 5, -1)]

    pages = page.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text("Page 1 of 2")
    expect(pages.get_by_role("link", name="Previous")).to_have_count(0)
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text("Page 2 of 2")
    expect(main).to_contain_text(f"Proposals 6–{PROPOSALS} of {PROPOSALS}")
    assert titles.all_inner_texts() == ["Protein folding study 2", "Protein folding study 1"]
    expect(pages.get_by_role("link", name="Next")).to_have_count(0)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, f"academic-dashboard-page-2-{page.viewport_size['width']}")

    pages.get_by_role("link", name="Previous").click()
    expect(pages).to_contain_text("Page 1 of 2")
    assert titles.all_inner_texts() == first


def test_the_company_closes_an_offer_on_the_second_page_and_stays_there(
    any_width_page: Page, owners: tuple[LiveServer, User, User]
) -> None:
    page = any_width_page
    server, _, member = owners
    sign_in(page, server, member.email)
    page.goto(server.url + "/offers/mine")
    main = page.locator("main")
    expect(main).to_contain_text(f"Offers 1–5 of {OFFERS}")
    pages = page.get_by_role("navigation", name="Pages")
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text("Page 2 of 2")
    panel = page.locator("section.offer-panel")
    expect(panel).to_have_count(1)
    expect(panel.get_by_role("heading", level=2)).to_have_text("Compute offer 1")

    panel.get_by_role("button", name="Close Compute offer 1").click()
    expect(pages).to_contain_text("Page 2 of 2")
    expect(panel.locator(".status")).to_have_text("Closed")
    expect(panel).to_contain_text("This offer is closed and takes no new projects")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, f"company-dashboard-page-2-{page.viewport_size['width']}")


def test_a_button_on_the_kept_dashboard_works_as_on_a_rendered_one(
    any_width_page: Page, owners: tuple[LiveServer, User, User]
) -> None:
    """Viewed again, the dashboard comes from the page kept for this person, answered before
    Flask (app/pagehits.py) with this session's form token put in: its Publish button works."""
    page = any_width_page
    server, academic, _ = owners
    sign_in(page, server, academic.email)
    answered = []
    for _ in range(3):
        with page.expect_navigation() as arrived:
            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Dashboard"
            ).click()
        response = arrived.value
        assert response is not None
        answered.append(response.header_value("x-tandem-dash-cache"))
    assert answered[-1] == "hit", answered

    title = f"Protein folding study {PROPOSALS}"
    page.get_by_role("button", name=f"Publish “{title}”").click()
    expect(flash(page)).to_be_visible()
    card = page.get_by_role("article").filter(has=page.get_by_role("heading", name=title))
    expect(card).to_contain_text("Open")
    with server.session() as session:
        published = session.exec(select(Proposal).where(Proposal.title == title)).one()
        assert published.status == ProposalStatus.open
