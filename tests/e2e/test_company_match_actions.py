"""The company's side of a match, on its dashboard: a member says "I'm interested" in a ranked
proposal, takes it back, dismisses it with a reason through the "Not a fit? Dismiss"
disclosure, then undoes the dismissal from the dismissed list. The researcher stays anonymous
throughout, and a stale tab says what happened."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select

from models import (
    Match,
    MatchStatus,
)
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import (
    MATCHED_OFFER,
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    flash,
    make_matched_pair,
    sign_in,
)

PROPOSAL, OFFER = MATCHED_PROPOSAL, MATCHED_OFFER
MEMBER = "sam@helios.example.com"
REASON = "Our cluster is booked for cryo-EM work until spring"


@pytest.fixture
def pair(live_server: LiveServer) -> LiveServer:
    """A researcher's open proposal and a company's open offer, matched by the engine."""
    make_matched_pair(live_server, member_email=MEMBER, member_name="Sam Reyes")
    return live_server


def _match(server: LiveServer) -> Match:
    with server.session() as session:
        return session.exec(select(Match)).one()


def _card(page: Page) -> Locator:
    """The proposal's card in the offer's ranked list on the dashboard."""
    return page.locator("article.match-card").filter(has_text=PROPOSAL)


def _dismissed(page: Page) -> Locator:
    return page.locator("details.set-aside")


def test_interest_withdrawal_dismissal_and_undo_from_the_company_dashboard(
    page: Page, pair: LiveServer
) -> None:
    sign_in(page, pair, MEMBER)
    # Signing in opens the dashboard; the Dashboard link leads back to it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    card = _card(page)
    expect(card.get_by_role("heading", name=re.compile(r"^1\. " + PROPOSAL))).to_be_visible()
    expect(card).to_contain_text("A researcher in computational biology at a university")
    expect(card).not_to_contain_text("Grace")
    expect(card).to_contain_text("Suggested by Tandem. Neither side has said it is interested")

    card.get_by_role("button", name=re.compile("^I'm interested")).click()
    expect(flash(page)).to_contain_text("Noted: you are interested.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(card).to_contain_text("You said you are interested. Waiting for the researcher")
    expect(card.get_by_role("button", name=re.compile("^I'm interested"))).to_have_count(0)
    assert _match(pair).status == MatchStatus.interested_company

    card.get_by_role("button", name=re.compile("^Withdraw interest")).click()
    expect(flash(page)).to_contain_text("Interest withdrawn.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(card.get_by_role("button", name=re.compile("^I'm interested"))).to_be_visible()
    assert _match(pair).status == MatchStatus.suggested

    # The reason is behind the disclosure until it is opened.
    reason = card.get_by_label("Reason (optional)")
    expect(reason).to_be_hidden()
    card.get_by_text("Not a fit? Dismiss").click()
    reason.fill(REASON)
    card.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(flash(page)).to_contain_text("Dismissed: it has left the list")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(_card(page)).to_have_count(0)
    match = _match(pair)
    assert match.status == MatchStatus.declined and match.decline_reason == REASON

    dismissed = _dismissed(page)
    dismissed.get_by_text("1 dismissed proposal").click()
    expect(dismissed).to_contain_text(f"dismissed by your organisation: “{REASON}”")
    screenshot(page, "company-dismissed-list")
    dismissed.get_by_role("button", name=f"Undo dismissal of “{PROPOSAL}”").click()
    expect(flash(page)).to_contain_text("Dismissal undone.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    expect(_dismissed(page)).to_have_count(0)
    expect(_card(page)).to_contain_text("Suggested by Tandem.")
    assert _match(pair).status == MatchStatus.suggested
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


def test_dismissing_without_a_reason_and_from_a_phone(phone_page: Page, pair: LiveServer) -> None:
    """The reason is optional: the disclosure's form sent as rendered dismisses the match."""
    page = phone_page
    sign_in(page, pair, MEMBER)
    card = _card(page)
    card.get_by_text("Not a fit? Dismiss").click()
    expect(card.get_by_label("Reason (optional)")).to_have_value("")
    card.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(flash(page)).to_contain_text("Dismissed: it has left the list")
    match = _match(pair)
    assert match.status == MatchStatus.declined and not match.decline_reason
    _dismissed(page).get_by_text("1 dismissed proposal").click()
    expect(_dismissed(page)).to_contain_text("dismissed by your organisation")
    expect(_dismissed(page)).not_to_contain_text("organisation:")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "company-dismissed-list-phone")


def test_a_stale_tab_says_what_happened(page: Page, pair: LiveServer) -> None:
    """Two tabs on the dashboard: the match is dismissed in one; the other still offers
    interest, and pressing it says the match was dismissed instead of changing it."""
    sign_in(page, pair, MEMBER)
    stale = page.context.new_page()
    stale.goto(page.url)
    expect(_card(stale)).to_be_visible()

    _card(page).get_by_text("Not a fit? Dismiss").click()
    _card(page).get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(flash(page)).to_contain_text("Dismissed: it has left the list")

    _card(stale).get_by_role("button", name=re.compile("^I'm interested")).click()
    expect(stale.locator(".flashes .flash-error")).to_contain_text("This match was dismissed")
    expect(stale.get_by_role("heading", level=1)).to_have_text("Your offers")
    assert _match(pair).status == MatchStatus.declined
    screenshot(stale, "company-stale-interest")
