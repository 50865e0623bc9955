"""The summary above a form that was refused names each field to correct by its label, and
each name is a link that puts the keyboard in that field: a person who cannot see the red
marks, or who would have to tab through the whole form, goes straight to the problem."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from models import OrganisationKind, Role
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import error_at, error_summary, make_person, sign_in

EMAIL = "ada.okafor@northbridge.example.edu"
# Each link's target: an element with that id which takes the keyboard's focus.
LINK_TARGETS = """links => links.map(link => {
  const target = document.getElementById(link.getAttribute('href').slice(1));
  return target ? target.tabIndex >= 0 && !target.disabled : null;
})"""


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


def _focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement.id")


def test_the_summary_links_each_field_to_correct(page: Page, live_server: LiveServer) -> None:
    make_person(
        live_server,
        email=EMAIL,
        name="Ada Okafor",
        role=Role.academic,
        organisation="Northbridge University",
        kind=OrganisationKind.university,
    )
    sign_in(page, live_server, EMAIL)
    page.get_by_role("link", name="Propose research").click()

    # A number that does not parse, with the title and abstract left empty.
    page.get_by_label("GPU hours needed").fill("lots")
    page.get_by_role("button", name="Save as draft").click()

    summary = error_summary(page)
    expect(summary).to_contain_text(re.compile(r"Please correct the 3 fields marked below\."))
    links = summary.get_by_role("link")
    expect(links).to_have_text(["Title", "Abstract", "GPU hours needed"])
    assert summary.get_by_role("link").evaluate_all(LINK_TARGETS) == [True, True, True]
    screenshot(page, "error-summary-proposal")

    # Clicking a name puts the cursor in its field, which says what is wrong and keeps the text.
    links.filter(has_text="GPU hours needed").click()
    hours = page.get_by_label("GPU hours needed")
    expect(hours).to_be_focused()
    expect(hours).to_have_value("lots")
    expect(error_at(hours)).to_contain_text("whole number")
    expect(hours).to_be_in_viewport()

    # From the keyboard alone: tab to a name in the summary and press Enter.
    summary.get_by_role("link", name="Abstract").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Abstract")).to_be_focused()
    page.keyboard.type("We learn dispatch policies for grid batteries from logged operations.")
    summary.get_by_role("link", name="Title").focus()
    page.keyboard.press("Enter")
    assert _focused_id(page) == "title"


def test_a_group_of_choices_is_reached_at_its_first_choice(
    page: Page, live_server: LiveServer
) -> None:
    """A link to a search with a choice that does not exist (hand-edited or out of date)."""
    page.goto(live_server.url + "/search/?q=protein&type=people")
    summary = error_summary(page)
    expect(summary).to_contain_text("Please correct the 1 field marked below.")
    summary.get_by_role("link", name="Show").click()
    expect(page.get_by_role("radio", name="All")).to_be_focused()
    expect(error_at(page.get_by_role("group", name="Show"))).to_contain_text(
        "Choose all, proposals or offers."
    )
