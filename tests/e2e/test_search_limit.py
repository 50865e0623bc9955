"""The search limit as a person meets it: too many new searches in a short time are answered
with a notice that says how long to wait (and, to someone not signed in, that signing in gives
a higher limit), the words typed stay in the box, the notice fits a 390 px phone, and a search
already run still answers at once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ACTION_TIMEOUT_MS, NARROW_PHONE, LiveServer, screenshot
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, make_matched_pair, sign_in

BOX = "Search proposals and offers"
WAIT = re.compile(r"Wait \d+ seconds? and press Search again")


def _search(page: Page, words: str) -> None:
    page.get_by_label(BOX).fill(words)
    page.get_by_role("search").get_by_role("button", name="Search").click()


def _notice(page: Page):  # noqa: ANN202
    return page.get_by_role("alert").filter(has_text="new searches in a short time")


def _new_words() -> list[str]:
    """Searches no other test ran (the encoder is shared by the run, and a search the model
    embedded already is never counted), each finding the catalogue's proposal and offer."""
    return [f"protein structure {uuid.uuid4().hex[:8]}" for _ in range(3)]


@pytest.fixture
def narrow_page(browser: Browser) -> Iterator[Page]:
    """A phone-sized tab 390 px wide, with its own cookies."""
    context = browser.new_context(viewport=NARROW_PHONE)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_a_visitor_over_the_limit_is_told_to_wait_or_sign_in_at_phone_width(
    narrow_page: Page, live_server: LiveServer
) -> None:
    live_server.app.config["TANDEM_SEARCH_LIMIT_ANONYMOUS"] = "2 per hour"
    make_matched_pair(live_server, member_email="sam@helios.example.com", member_name="Sam Reyes")
    page = narrow_page
    page.goto(live_server.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    first, second, third = _new_words()
    _search(page, first)
    _search(page, second)
    expect(_notice(page)).to_have_count(0)

    _search(page, third)
    expect(_notice(page)).to_contain_text(WAIT)
    expect(_notice(page).get_by_role("link", name="sign in")).to_be_visible()
    expect(page.get_by_label(BOX)).to_have_value(third)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "search-limit-phone")

    _search(page, first)  # already run: costs nothing, answered at once
    expect(_notice(page)).to_have_count(0)
    expect(page.get_by_role("heading", level=2, name=re.compile("for “protein"))).to_be_visible()


def test_a_signed_in_person_has_a_limit_of_their_own(page: Page, live_server: LiveServer) -> None:
    live_server.app.config["TANDEM_SEARCH_LIMIT_ANONYMOUS"] = "1 per hour"
    live_server.app.config["TANDEM_SEARCH_LIMIT_SIGNED_IN"] = "2 per hour"
    academic, _ = make_matched_pair(
        live_server, member_email="sam@helios.example.com", member_name="Sam Reyes"
    )
    sign_in(page, live_server, academic.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    first, second, third = _new_words()
    _search(page, first)
    _search(page, second)  # over the visitors' limit, within the account's
    expect(_notice(page)).to_have_count(0)

    _search(page, third)
    expect(_notice(page)).to_contain_text(WAIT)
    expect(_notice(page).get_by_role("link", name="sign in")).to_have_count(0)
    expect(page.get_by_label(BOX)).to_have_value(third)
