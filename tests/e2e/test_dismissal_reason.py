"""Dismissing a match asks why, from the short list (with optional words), at 1280 and 390 px:
the choice is kept with the match and said again in the dismissed list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import DeclineReason, Match, MatchStatus
from tests.e2e.conftest import LiveServer
from tests.e2e.forms import (
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    flash,
    make_matched_pair,
    sign_in,
)

MEMBER = "sam@helios.example.com"


@pytest.fixture
def page(any_width_page: Page) -> Page:
    return any_width_page


def test_a_dismissal_keeps_the_reason_chosen_from_the_list(
    page: Page, live_server: LiveServer
) -> None:
    make_matched_pair(live_server, member_email=MEMBER, member_name="Sam Reyes")
    sign_in(page, live_server, MEMBER)
    # The proposal's card in the offer's ranked list on the dashboard.
    card = page.locator("article.match-card").filter(has_text=MATCHED_PROPOSAL)
    card.get_by_text("Not a fit? Dismiss").click()
    reason = card.get_by_label("Why it is not a fit")
    expect(reason).to_have_value("")  # nothing chosen for the person
    reason.select_option(label="The terms do not work (IP, publication, NDA)")
    card.get_by_label("Reason (optional)").fill("We cannot sign an NDA for this")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    card.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(flash(page)).to_contain_text("Dismissed")

    with live_server.session() as session:
        match = session.exec(select(Match)).one()
        assert match.status == MatchStatus.declined
        assert match.decline_reason_code == DeclineReason.terms
        assert match.decline_reason == "We cannot sign an NDA for this"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.get_by_text("1 dismissed proposal").click()
    expect(page.get_by_text(re.compile("reason: The terms do not work"))).to_contain_text(
        "“We cannot sign an NDA for this”"
    )
