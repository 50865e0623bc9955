"""The proposal form and the proposal's Publish / Close / Reopen buttons, used as an academic
uses them: signed in through the sign-in page, reached by links from the dashboard, filled
through the labels, sent with the page's own buttons."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select

from models import OrganisationKind, Proposal, ProposalStatus, Role, User
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import (
    FORMS_WITHOUT_NOVALIDATE,
    UNLABELLED_INPUTS,
    error_at,
    error_summary,
    flash,
    make_person,
    sign_in,
)

TITLE = "Offline reinforcement learning for grid battery dispatch"
ABSTRACT = (
    "We learn dispatch policies for grid-scale batteries from five years of logged "
    "operations, compare them with the operator's rules, and publish policies and code."
)


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


def _academic(server: LiveServer) -> User:
    return make_person(
        server,
        email="ada.okafor@northbridge.example.edu",
        name="Ada Okafor",
        role=Role.academic,
        organisation="Northbridge University",
        kind=OrganisationKind.university,
    )


def _proposals(server: LiveServer) -> list[Proposal]:
    with server.session() as session:
        return list(session.exec(select(Proposal).order_by(Proposal.id)))


def _open_new_proposal_form(page: Page, server: LiveServer) -> None:
    sign_in(page, server, "ada.okafor@northbridge.example.edu")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")
    page.get_by_role("link", name="Propose research").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Propose research")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    assert page.evaluate(FORMS_WITHOUT_NOVALIDATE) == []


def _card(page: Page, title: str) -> Locator:
    return page.get_by_role("article").filter(has=page.get_by_role("heading", level=3, name=title))


def test_a_draft_with_every_kind_of_field_is_published_then_edited(
    page: Page, live_server: LiveServer
) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)

    # Text, comma lists, numbers, a date, checkboxes, a choice of radios and a text area;
    # Duration, the publication box and the IP choice keep the values the page shows.
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_label("Research areas").fill("reinforcement learning, energy systems")
    page.get_by_label("GPU hours needed").fill("2000")
    page.get_by_label("Minimum GPU memory (GB)").fill("40")
    page.get_by_label("GPU type").fill("H100")
    expect(page.get_by_label("Duration (months)")).to_have_value("6")
    page.get_by_label("Earliest start").fill("2026-09-01")
    page.get_by_label("Data needed").fill("Hourly battery telemetry from grid-scale storage")
    page.get_by_label("Data domains").fill("energy, time series")
    page.get_by_label("Compute (GPU time)").check()
    page.get_by_label("Co-authorship with company researchers").check()
    expect(page.get_by_label("I must be free to publish the results")).to_be_checked()
    page.get_by_label("The code must be released as open source").check()
    expect(page.get_by_label(re.compile("^Open: results belong to no one"))).to_be_checked()
    page.get_by_label(re.compile("^Under-resourced")).check()
    page.get_by_label("Never match me with").fill("Acme AI\nacme.example.com")
    screenshot(page, "proposal-form-filled")
    page.get_by_role("button", name="Save as draft").click()

    expect(flash(page)).to_contain_text("Draft saved. Only you can see it until you publish it.")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_text("Draft — only you can see this.")).to_be_visible()
    [draft] = _proposals(live_server)
    assert draft.status == ProposalStatus.draft
    assert draft.research_areas == ["reinforcement learning", "energy systems"]
    assert (draft.gpu_hours_needed, draft.gpu_memory_min_gb, draft.gpu_type) == (2000, 40, "H100")
    assert draft.duration_months == 6 and draft.earliest_start == date(2026, 9, 1)
    assert draft.data_domains == ["energy", "time series"]
    assert draft.collaboration_kinds == ["compute", "co_authorship"]
    assert draft.requires_open_publication and draft.requires_open_source
    assert draft.ip_stance.value == "open"
    assert draft.lab_resource_level.value == "under_resourced"
    assert draft.excluded_companies == ["Acme AI", "acme.example.com"]

    # Publish from the dashboard.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    card = _card(page, TITLE)
    expect(card).to_contain_text("Draft")
    card.get_by_role("button", name="Publish").click()
    expect(flash(page)).to_contain_text("Your proposal is open")
    expect(_card(page, TITLE).locator(".status")).to_have_text("Open")

    # Edit: the form shows what was saved; changes of each kind are kept.
    _card(page, TITLE).get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    assert page.evaluate(UNLABELLED_INPUTS) == []
    expect(page.get_by_label("Research areas")).to_have_value(
        "reinforcement learning, energy systems"
    )
    expect(page.get_by_label("Earliest start")).to_have_value("2026-09-01")
    expect(page.get_by_label("Never match me with")).to_have_value("Acme AI\nacme.example.com")
    expect(page.get_by_label("Co-authorship with company researchers")).to_be_checked()
    expect(page.get_by_label(re.compile("^Under-resourced"))).to_be_checked()
    page.get_by_label("Title").fill("Offline RL for battery dispatch on the grid")
    page.get_by_label("GPU hours needed").fill("3500")
    page.get_by_label("Duration (months)").fill("9")
    page.get_by_label("Co-authorship with company researchers").uncheck()
    page.get_by_label("Data access").check()
    page.get_by_label(re.compile("^Joint:")).check()
    page.get_by_label("I must be free to publish the results").uncheck()
    page.get_by_role("button", name="Save changes").click()

    expect(flash(page)).to_contain_text("Your changes are saved")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Offline RL for battery dispatch on the grid"
    )
    expect(page.locator("body")).to_contain_text("3,500")
    expect(page.locator("body")).to_contain_text("9 months")
    [edited] = _proposals(live_server)
    assert edited.status == ProposalStatus.open, "editing does not change the status"
    assert edited.gpu_hours_needed == 3500 and edited.duration_months == 9
    assert edited.collaboration_kinds == ["compute", "data"]
    assert edited.ip_stance.value == "joint" and not edited.requires_open_publication
    assert edited.research_areas == ["reinforcement learning", "energy systems"]


def test_title_and_abstract_alone_publish_with_the_page_defaults(
    page: Page, live_server: LiveServer
) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_role("button", name="Publish").click()

    expect(flash(page)).to_contain_text("Your proposal is open")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    [proposal] = _proposals(live_server)
    assert proposal.status == ProposalStatus.open
    assert proposal.duration_months == 6 and proposal.gpu_hours_needed == 0
    assert proposal.requires_open_publication and proposal.ip_stance.value == "open"
    assert proposal.lab_resource_level.value == "typical"


def test_two_mistakes_show_at_their_fields_at_once_and_everything_typed_is_kept(
    page: Page, live_server: LiveServer
) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)
    page.get_by_label("Title").fill("RL")  # too short for the model
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_label("Research areas").fill("reinforcement learning")
    page.get_by_label("GPU hours needed").fill("2.5")  # not a whole number
    page.get_by_label("Earliest start").fill("2026-09-01")
    page.get_by_label("Data access").check()
    page.get_by_label("I must be free to publish the results").uncheck()
    page.get_by_label(re.compile("^Joint:")).check()
    page.get_by_label("Never match me with").fill("Acme AI")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Publish").click()
    assert answer.value.status == 422, "the browser sent the form: no bubble stopped it"

    expect(error_summary(page)).to_contain_text("Please correct the 2 fields marked below.")
    expect(error_at(page.get_by_label("Title"))).to_have_text("Please write at least 5 characters.")
    expect(error_at(page.get_by_label("GPU hours needed"))).to_have_text(
        "Please enter a whole number of GPU hours, e.g. 2000."
    )
    expect(page.get_by_label("Title")).to_have_value("RL")
    expect(page.get_by_label("Abstract")).to_have_value(ABSTRACT)
    expect(page.get_by_label("Research areas")).to_have_value("reinforcement learning")
    expect(page.get_by_label("GPU hours needed")).to_have_value("2.5")
    expect(page.get_by_label("Earliest start")).to_have_value("2026-09-01")
    expect(page.get_by_label("Data access")).to_be_checked()
    expect(page.get_by_label("I must be free to publish the results")).not_to_be_checked()
    expect(page.get_by_label(re.compile("^Joint:"))).to_be_checked()
    expect(page.get_by_label("Never match me with")).to_have_value("Acme AI")
    assert _proposals(live_server) == []
    screenshot(page, "proposal-form-errors")

    # Corrected, the same form publishes.
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("GPU hours needed").fill("2500")
    page.get_by_role("button", name="Publish").click()
    expect(flash(page)).to_contain_text("Your proposal is open")
    [proposal] = _proposals(live_server)
    assert proposal.gpu_hours_needed == 2500 and proposal.excluded_companies == ["Acme AI"]
    assert proposal.collaboration_kinds == ["data"] and not proposal.requires_open_publication


def test_editing_with_mistakes_keeps_the_saved_proposal_unchanged(
    page: Page, live_server: LiveServer
) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_role("button", name="Publish").click()
    expect(flash(page)).to_contain_text("Your proposal is open")

    # Sent untouched, the edit form saves what it shows.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    _card(page, TITLE).get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Save changes").click()
    expect(flash(page)).to_contain_text("Your changes are saved")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    _card(page, TITLE).get_by_role("link", name="Edit").click()
    page.get_by_label("Abstract").fill("Too short.")
    page.get_by_label("Duration (months)").fill("")
    page.get_by_role("button", name="Save changes").click()

    expect(error_summary(page)).to_contain_text("Please correct the 2 fields marked below.")
    expect(error_at(page.get_by_label("Abstract"))).to_have_text(
        "Please write at least 20 characters."
    )
    expect(error_at(page.get_by_label("Duration (months)"))).to_have_text(
        "Please give the duration in months, e.g. 6."
    )
    expect(page.get_by_label("Abstract")).to_have_value("Too short.")
    [proposal] = _proposals(live_server)
    assert proposal.abstract == ABSTRACT and proposal.duration_months == 6


def test_close_and_reopen_from_the_dashboard(page: Page, live_server: LiveServer) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_role("button", name="Publish").click()
    expect(flash(page)).to_contain_text("Your proposal is open")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    _card(page, TITLE).get_by_role("button", name="Close").click()
    expect(flash(page)).to_contain_text("Your proposal is closed")
    expect(_card(page, TITLE).locator(".status")).to_have_text("Closed")
    assert _proposals(live_server)[0].status == ProposalStatus.closed
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Proposals").click()
    expect(page.get_by_role("link", name=TITLE)).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    _card(page, TITLE).get_by_role("button", name="Reopen").click()
    expect(flash(page)).to_contain_text("Your proposal is open")
    expect(_card(page, TITLE).locator(".status")).to_have_text("Open")
    assert _proposals(live_server)[0].status == ProposalStatus.open
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Proposals").click()
    expect(page.get_by_role("link", name=TITLE)).to_be_visible()

    # The same buttons on the proposal's own page bring the author back to it.
    page.get_by_role("link", name=TITLE).click()
    proposal_page = page.url
    page.get_by_role("button", name="Close").click()
    expect(flash(page)).to_contain_text("Your proposal is closed")
    assert page.url == proposal_page
    assert _proposals(live_server)[0].status == ProposalStatus.closed
    page.get_by_role("button", name="Reopen").click()
    expect(flash(page)).to_contain_text("Your proposal is open")
    assert page.url == proposal_page
    assert _proposals(live_server)[0].status == ProposalStatus.open


def test_a_button_on_a_stale_page_says_what_happened_and_changes_nothing(
    page: Page, live_server: LiveServer
) -> None:
    _academic(live_server)
    _open_new_proposal_form(page, live_server)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Abstract").fill(ABSTRACT)
    page.get_by_role("button", name="Publish").click()
    expect(flash(page)).to_contain_text("Your proposal is open")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()

    # The same dashboard in a second tab of the same browser closes the proposal first.
    other = page.context.new_page()
    other.goto(page.url)
    _card(other, TITLE).get_by_role("button", name="Close").click()
    expect(flash(other)).to_contain_text("Your proposal is closed")

    _card(page, TITLE).get_by_role("button", name="Close").click()
    expect(flash(page)).to_contain_text("This proposal is already closed.")
    expect(_card(page, TITLE).locator(".status")).to_have_text("Closed")
    expect(_card(page, TITLE).get_by_role("button", name="Reopen")).to_be_visible()
    assert _proposals(live_server)[0].status == ProposalStatus.closed
