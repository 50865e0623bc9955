"""Opening, closing and reopening an offer as a company member does it: from the offer's own
page and from the dashboard, reached by clicking. A tab left open from before (its button no
longer matches the offer) says what happened and changes nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import Offer, OfferKind, OfferStatus, OrganisationKind, Role
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, flash, make_person, sign_in

EMAIL = "sam@helios.example.com"
OPEN_OFFER = "H100 hours for open climate research"
DRAFT_OFFER = "A100 hours for medical imaging"
EXPIRED_OFFER = "Last year's V100 hours"


@pytest.fixture
def company(live_server: LiveServer) -> LiveServer:
    """A company member whose organisation has an open offer, a draft and a closed offer
    whose deadline has passed."""
    member = make_person(
        live_server,
        email=EMAIL,
        name="Sam Reyes",
        role=Role.company,
        organisation="Helios Compute",
        kind=OrganisationKind.company,
    )
    with live_server.session() as session:
        for title, status, deadline in (
            (OPEN_OFFER, OfferStatus.open, None),
            (DRAFT_OFFER, OfferStatus.draft, None),
            (EXPIRED_OFFER, OfferStatus.closed, date.today() - timedelta(days=30)),
        ):
            session.add(
                Offer(
                    kind=OfferKind.compute,
                    title=title,
                    description=f"{title}: GPU time for academic work that publishes openly.",
                    gpu_type="H100",
                    gpu_memory_gb=80,
                    gpu_hours_budget=10_000,
                    max_hours_per_project=2_000,
                    max_projects=3,
                    status=status,
                    deadline=deadline,
                    organisation_id=member.organisation_id,
                    created_by_id=member.id,
                )
            )
        session.commit()
    return live_server


def _status(server: LiveServer, title: str) -> OfferStatus:
    with server.session() as session:
        return session.exec(select(Offer.status).where(Offer.title == title)).one()


def _panel(page: Page, title: str):  # noqa: ANN202 (a Playwright locator)
    """The offer's panel on the company dashboard."""
    return page.locator("section.offer-panel").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


def test_close_and_reopen_from_the_offers_own_page(page: Page, company: LiveServer) -> None:
    sign_in(page, company, EMAIL)
    page.get_by_role("link", name=OPEN_OFFER, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(OPEN_OFFER)
    owner = page.get_by_role("region", name="Manage this offer")
    expect(owner).to_contain_text("Open: listed publicly")

    owner.get_by_role("button", name="Close this offer").click()
    expect(flash(page)).to_contain_text("The offer is closed: it takes no new projects.")
    expect(page).to_have_url(re.compile(r"/offers/\d+$"))
    expect(owner).to_contain_text("Closed: this offer takes no new projects.")
    expect(owner.get_by_role("button", name="Close this offer")).to_have_count(0)
    assert _status(company, OPEN_OFFER) == OfferStatus.closed

    # The public listing no longer shows it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Offers").click()
    expect(page.get_by_role("link", name=OPEN_OFFER)).to_have_count(0)
    page.go_back()

    owner.get_by_role("button", name="Reopen this offer").click()
    expect(flash(page)).to_contain_text("The offer is open: it is listed and matched")
    expect(page).to_have_url(re.compile(r"/offers/\d+$"))
    expect(owner).to_contain_text("Open: listed publicly")
    assert _status(company, OPEN_OFFER) == OfferStatus.open
    screenshot(page, "offer-reopened-own-page")


def test_open_close_and_reopen_from_the_dashboard(page: Page, company: LiveServer) -> None:
    sign_in(page, company, EMAIL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")

    draft = _panel(page, DRAFT_OFFER)
    expect(draft.locator(".status")).to_have_text("Draft")
    draft.get_by_role("button", name=f"Open {DRAFT_OFFER}", exact=True).click()
    expect(flash(page)).to_contain_text("The offer is open")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(draft.locator(".status")).to_have_text("Open")
    assert _status(company, DRAFT_OFFER) == OfferStatus.open

    offer = _panel(page, OPEN_OFFER)
    offer.get_by_role("button", name=f"Close {OPEN_OFFER}", exact=True).click()
    expect(flash(page)).to_contain_text("The offer is closed")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(offer.locator(".status")).to_have_text("Closed")
    expect(offer).to_contain_text("This offer is closed and takes no new projects.")
    assert _status(company, OPEN_OFFER) == OfferStatus.closed

    offer.get_by_role("button", name=f"Reopen {OPEN_OFFER}", exact=True).click()
    expect(flash(page)).to_contain_text("The offer is open")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(offer.locator(".status")).to_have_text("Open")
    assert _status(company, OPEN_OFFER) == OfferStatus.open
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


def test_a_stale_tab_says_what_happened_and_changes_nothing(
    page: Page, company: LiveServer
) -> None:
    sign_in(page, company, EMAIL)
    stale = page.context.new_page()
    stale.goto(page.url)
    expect(stale.get_by_role("heading", level=1)).to_have_text("Your offers")

    # Closed in one tab...
    _panel(page, OPEN_OFFER).get_by_role("button", name=f"Close {OPEN_OFFER}").click()
    expect(flash(page)).to_contain_text("The offer is closed")

    # ...and closed again from the other, which still shows it open.
    _panel(stale, OPEN_OFFER).get_by_role("button", name=f"Close {OPEN_OFFER}").click()
    expect(flash(stale)).to_contain_text("This offer is already closed.")
    expect(stale.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(_panel(stale, OPEN_OFFER).locator(".status")).to_have_text("Closed")
    expect(
        _panel(stale, OPEN_OFFER).get_by_role("button", name=f"Reopen {OPEN_OFFER}")
    ).to_be_visible()
    assert _status(company, OPEN_OFFER) == OfferStatus.closed
    screenshot(stale, "offer-stale-close-dashboard")

    # The same from the offer's own page, the other way round.
    stale.get_by_role("link", name=OPEN_OFFER, exact=True).click()
    page.reload()
    _panel(page, OPEN_OFFER).get_by_role("button", name=f"Reopen {OPEN_OFFER}").click()
    expect(flash(page)).to_contain_text("The offer is open")
    stale.get_by_role("region", name="Manage this offer").get_by_role(
        "button", name="Reopen this offer"
    ).click()
    expect(flash(stale)).to_contain_text("This offer is already open.")
    expect(stale.get_by_role("heading", level=1)).to_have_text(OPEN_OFFER)
    expect(stale.get_by_role("region", name="Manage this offer")).to_contain_text(
        "Open: listed publicly"
    )
    assert _status(company, OPEN_OFFER) == OfferStatus.open


def test_reopening_after_the_deadline_says_how_and_stays_closed(
    phone_page: Page, company: LiveServer
) -> None:
    page = phone_page
    sign_in(page, company, EMAIL)
    offer = _panel(page, EXPIRED_OFFER)
    offer.get_by_role("button", name=f"Reopen {EXPIRED_OFFER}").click()
    expect(flash(page)).to_contain_text("has passed. Edit the offer to set a later deadline")
    expect(_panel(page, EXPIRED_OFFER).locator(".status")).to_have_text("Closed")
    assert _status(company, EXPIRED_OFFER) == OfferStatus.closed
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "offer-reopen-expired-phone")
