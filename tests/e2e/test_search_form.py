"""The search page used as a person uses it: signed in through the sign-in page, reached by the
header's Search link, words typed in the search box and sent with its button or Enter, filters
unfolded and set through their labels. Results must be in view without scrolling."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.services import demo, recommendations
from models import OrganisationKind, Role
from tests.e2e.conftest import ACTION_TIMEOUT_MS, LiveServer, screenshot
from tests.e2e.forms import (
    NO_HORIZONTAL_SCROLL,
    UNLABELLED_INPUTS,
    error_at,
    error_summary,
    make_person,
    sign_in,
)

EMAIL = "lin.park@seabright.example.edu"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def catalogue(live_server: LiveServer) -> LiveServer:
    """The demo's proposals and offers loaded as `flask demo load` does (recommendations
    included, which store the texts' embeddings search reads), and a researcher who is not
    part of the demo."""
    with live_server.app.app_context(), live_server.session() as session:
        demo.load_demo(session=session, data=demo.read_demo_data())
        session.flush()
        recommendations.recompute_all(
            session=session, encoder=live_server.app.extensions["tandem.encoder"], k=5
        )
        session.commit()
    make_person(
        live_server,
        email=EMAIL,
        name="Lin Park",
        role=Role.academic,
        organisation="Seabright University",
        kind=OrganisationKind.university,
    )
    return live_server


def _page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def laptop(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, LAPTOP)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, PHONE)


def _open_search(page: Page, server: LiveServer) -> None:
    sign_in(page, server, EMAIL)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    assert page.evaluate(UNLABELLED_INPUTS) == []


def _results(page: Page) -> Locator:
    return page.get_by_role("article")


def _results_heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=2, name=re.compile(r"results? for"))


def _top_of_first_result(page: Page) -> float:
    box = _results(page).first.bounding_box()
    assert box is not None, "the first result is not displayed"
    return box["y"]


def test_words_are_searched_with_the_button_and_with_enter(
    laptop: Page, catalogue: LiveServer
) -> None:
    page = laptop
    _open_search(page, catalogue)
    form = page.get_by_role("search")
    expect(form.get_by_role("button")).to_have_count(1)  # one way to send the search
    expect(page.get_by_label("Minimum GPU hours")).to_be_hidden()  # filters folded

    page.get_by_label("Search proposals and offers").fill("protein")
    form.get_by_role("button", name="Search").click()
    expect(_results_heading(page)).to_contain_text("for “protein”")
    expect(error_summary(page)).to_have_count(0)
    expect(_results(page).first).to_contain_text(re.compile("protein", re.IGNORECASE))
    assert _top_of_first_result(page) < LAPTOP["height"]  # in view without scrolling
    expect(page.get_by_label("Search proposals and offers")).to_have_value("protein")
    screenshot(page, "search-laptop")

    page.get_by_label("Search proposals and offers").fill("chest CT")
    page.get_by_label("Search proposals and offers").press("Enter")
    expect(_results_heading(page)).to_contain_text("for “chest CT”")
    expect(_results(page).first).to_contain_text("chest CT")
    assert _top_of_first_result(page) < LAPTOP["height"]


def test_filters_are_unfolded_set_through_their_labels_and_kept(
    laptop: Page, catalogue: LiveServer
) -> None:
    page = laptop
    _open_search(page, catalogue)
    page.get_by_label("Search proposals and offers").fill("medical imaging")
    page.get_by_label("Offers", exact=True).check()
    page.get_by_text("Filters", exact=True).click()  # the folded filters' summary
    page.get_by_label("Data domain").select_option(label="healthcare")
    page.get_by_label("Minimum GPU hours").fill("10000")
    page.get_by_role("search").get_by_role("button", name="Search").click()

    expect(_results_heading(page)).to_contain_text("1 result for “medical imaging”")
    expect(_results(page)).to_have_count(1)
    expect(_results(page).first).to_contain_text("breast-screening")  # 12,000 hours, healthcare
    # The filters stay unfolded with what was chosen, and say how many are set.
    expect(page.get_by_text("Filters (2 active)")).to_be_visible()
    expect(page.get_by_label("Data domain")).to_have_value("healthcare")
    expect(page.get_by_label("Minimum GPU hours")).to_have_value("10000")
    expect(page.get_by_label("Offers", exact=True)).to_be_checked()
    screenshot(page, "search-filtered")

    page.get_by_role("link", name="Clear filters").click()
    expect(_results_heading(page)).to_contain_text("for “medical imaging”")
    expect(page.get_by_label("Minimum GPU hours")).to_be_hidden()
    assert _results(page).count() > 1


def test_a_bad_minimum_is_refused_at_its_field_and_kept(
    laptop: Page, catalogue: LiveServer
) -> None:
    page = laptop
    _open_search(page, catalogue)
    page.get_by_label("Search proposals and offers").fill("protein")
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Minimum GPU hours").fill("500 hours")
    page.get_by_label("Minimum GPU hours").press("Enter")

    expect(error_summary(page)).to_contain_text("Please correct the 1 field marked below")
    expect(error_at(page.get_by_label("Minimum GPU hours"))).to_have_text(
        "Enter a whole number of GPU hours, e.g. 500."
    )
    expect(page.get_by_label("Minimum GPU hours")).to_have_value("500 hours")
    expect(page.get_by_label("Search proposals and offers")).to_have_value("protein")
    expect(_results(page)).to_have_count(0)
    screenshot(page, "search-error")

    page.get_by_label("Minimum GPU hours").fill("")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(_results_heading(page)).to_contain_text("for “protein”")
    expect(error_summary(page)).to_have_count(0)


def test_results_are_in_view_at_phone_width(phone: Page, catalogue: LiveServer) -> None:
    page = phone
    _open_search(page, catalogue)
    page.get_by_label("Search proposals and offers").fill("speech recognition")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(_results_heading(page)).to_contain_text("for “speech recognition”")
    assert _top_of_first_result(page) < PHONE["height"]
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "search-phone")
