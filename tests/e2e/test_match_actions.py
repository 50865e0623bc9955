"""Acting on a match where people look: the ranked lists on a proposal's and an offer's own
pages carry the same card and actions as the dashboards, on both sides. Interest is said and
taken back, a dismissal is undone, and the introduction that follows holds at phone width
even with a long address."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models import (
    Match,
    MatchStatus,
    Offer,
    Proposal,
)
from tests.e2e.conftest import ACTION_TIMEOUT_MS, LiveServer, screenshot
from tests.e2e.forms import (
    MATCHED_OFFER,
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    flash,
    make_matched_pair,
    sign_in,
)

PROPOSAL, OFFER = MATCHED_PROPOSAL, MATCHED_OFFER
# An address as long as real ones get: it must wrap, not widen the page.
LONG_EMAIL = "samuel.reyes-okonkwo.research-partnerships@helios-compute-europe.example.com"


@pytest.fixture
def pair(live_server: LiveServer) -> LiveServer:
    """A researcher's open proposal needing compute and data, and a company's open compute
    offer, matched by the engine."""
    make_matched_pair(
        live_server,
        member_email=LONG_EMAIL,
        member_name="Samuel Reyes-Okonkwo",
        data_need="Cryo-EM density maps of membrane proteins",
        data_domains=["structural biology"],
    )
    return live_server


def _status(server: LiveServer) -> MatchStatus:
    with server.session() as session:
        return session.exec(select(Match)).one().status


def _card(page: Page, title: str):  # noqa: ANN202 (a Playwright locator)
    return page.locator("article.match-card").filter(
        has=page.get_by_role("link", name=title, exact=True)
    )


def test_interest_withdrawal_and_undo_from_the_proposal_page(page: Page, pair: LiveServer) -> None:
    sign_in(page, pair, "grace@kestrel.example.org")
    page.get_by_role("link", name=PROPOSAL).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PROPOSAL)

    card = _card(page, OFFER)
    expect(card.locator(".strength")).to_have_text(re.compile(r"(Strong|Good|Fair|Weak) match"))
    expect(card).to_contain_text("covers all 2,000 GPU hours needed")
    # The compute offer is not marked down for data; the open data need is said once, above.
    expect(card).to_contain_text("compute only: the data must come from a data offer")
    expect(page.locator(".coverage-note")).to_contain_text("also needs data in structural biology")

    card.get_by_role("button", name=re.compile("^I'm interested")).click()
    expect(flash(page)).to_contain_text("you are interested")
    expect(page).to_have_url(re.compile(r"/proposals/\d+$"))
    expect(card).to_contain_text("You said you are interested. Waiting for the company")
    assert _status(pair) == MatchStatus.interested_academic

    card.get_by_role("button", name=re.compile("^Withdraw interest")).click()
    expect(flash(page)).to_contain_text("Interest withdrawn")
    expect(card.get_by_role("button", name=re.compile("^I'm interested"))).to_be_visible()
    assert _status(pair) == MatchStatus.suggested

    card.get_by_text("Not a fit? Dismiss").click()
    card.get_by_label("Reason (optional)").fill("We need more GPU memory per node")
    card.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(flash(page)).to_contain_text("Dismissed")
    assert _status(pair) == MatchStatus.declined

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.get_by_text("1 dismissed offer").click()
    expect(page.locator(".set-aside")).to_contain_text("We need more GPU memory per node")
    page.get_by_role("button", name=re.compile("^Undo dismissal")).click()
    expect(flash(page)).to_contain_text("Dismissal undone")
    assert _status(pair) == MatchStatus.suggested
    expect(_card(page, OFFER)).to_be_visible(timeout=ACTION_TIMEOUT_MS)


def test_both_sides_meet_from_the_offer_and_proposal_pages_and_the_pages_hold_on_a_phone(
    browser: Browser, pair: LiveServer
) -> None:
    company = browser.new_context(viewport={"width": 1280, "height": 900})
    company.set_default_timeout(ACTION_TIMEOUT_MS)
    company_page = company.new_page()
    try:
        sign_in(company_page, pair, LONG_EMAIL)
        company_page.get_by_role("link", name=OFFER).first.click()
        card = _card(company_page, PROPOSAL)
        expect(card).to_contain_text("A researcher in computational biology at a university")
        expect(card).not_to_contain_text("Grace")
        card.get_by_role("button", name=re.compile("^I'm interested")).click()
        expect(flash(company_page)).to_contain_text("you are interested")
        assert _status(pair) == MatchStatus.interested_company
    finally:
        company.close()

    for width in (320, 390):
        phone = browser.new_context(viewport={"width": width, "height": 800})
        phone.set_default_timeout(ACTION_TIMEOUT_MS)
        page = phone.new_page()
        try:
            sign_in(page, pair, "grace@kestrel.example.org")
            if _status(pair) != MatchStatus.introduced:
                page.get_by_role("link", name=PROPOSAL).first.click()
                card = _card(page, OFFER)
                expect(card).to_contain_text("The company is interested")
                card.get_by_role("button", name=re.compile("^I'm interested")).click()
                expect(flash(page)).to_contain_text("You are introduced")
            pages = {
                "dashboard": "/proposals/mine",
                "account": "/account",
            }
            with pair.session() as session:
                proposal_id = session.exec(select(Proposal.id)).one()
                offer_id = session.exec(select(Offer.id)).one()
            pages["proposal"] = f"/proposals/{proposal_id}"
            pages["offer"] = f"/offers/{offer_id}"
            for name, path in pages.items():
                page.goto(pair.url + path)
                if name in ("dashboard", "proposal"):
                    expect(page.locator("body")).to_contain_text(LONG_EMAIL)
                assert page.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways at {width}"
                screenshot(page, f"introduced-academic-{name}-{width}")
        finally:
            phone.close()
    assert _status(pair) == MatchStatus.introduced

    phone = browser.new_context(viewport={"width": 320, "height": 800})
    phone.set_default_timeout(ACTION_TIMEOUT_MS)
    page = phone.new_page()
    try:
        sign_in(page, pair, LONG_EMAIL)
        expect(page.locator("body")).to_contain_text("grace@kestrel.example.org")
        for path in ("/offers/mine", "/account"):
            page.goto(pair.url + path)
            assert page.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways at 320"
        screenshot(page, "introduced-company-account-320")
    finally:
        phone.close()
