"""The offer form used as a company member uses it: signed in through the sign-in page, reached
by the dashboard's links, filled through the labels for each kind of offer, sent with the
page's own buttons; mistakes come back together, at their fields, with what was typed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models import Offer, OfferKind, OfferStatus, OrganisationKind, Role
from tests.e2e.conftest import ACTION_TIMEOUT_MS, DESKTOP, LiveServer, screenshot
from tests.e2e.forms import (
    FORMS_WITHOUT_NOVALIDATE,
    UNLABELLED_INPUTS,
    error_at,
    error_summary,
    flash,
    make_person,
    sign_in,
)

EMAIL = "sam.reyes@helios.example.com"
DESCRIPTION = (
    "Up to 4,000 H100 GPU hours per project for academic groups training protein structure "
    "prediction networks, with open publication of the results."
)
DATASET = "Two million de-identified chest X-rays with their reports, 2015-2023, research licence."


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


@pytest.fixture
def member(live_server: LiveServer) -> LiveServer:
    make_person(
        live_server,
        email=EMAIL,
        name="Sam Reyes",
        role=Role.company,
        organisation="Helios Compute",
        kind=OrganisationKind.company,
    )
    return live_server


def _offers(server: LiveServer) -> list[Offer]:
    with server.session() as session:
        return list(session.exec(select(Offer).order_by(Offer.id)))


def _open_new_offer_form(page: Page, server: LiveServer, *, signed_in: bool = False) -> None:
    if not signed_in:
        sign_in(page, server, EMAIL)
    else:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    page.get_by_role("link", name="Offer compute or data").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Offer compute or data")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    assert page.evaluate(FORMS_WITHOUT_NOVALIDATE) == []


def _describe(page: Page, title: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill(DESCRIPTION)


def _fill_compute(page: Page) -> None:
    page.get_by_label("GPU type").fill("H100")
    page.get_by_label("GPU memory (GB per GPU)").fill("80")
    page.get_by_label("GPU-hour budget (total)").fill("20,000")
    page.get_by_label("Most GPU hours for one project").fill("4000")


def _fill_data(page: Page) -> None:
    page.get_by_label("The dataset").fill(DATASET)
    page.get_by_label("Data domains").fill("medical imaging, radiology")


def test_each_kind_of_offer_is_filled_through_its_labels_and_sent(
    page: Page, member: LiveServer
) -> None:
    _open_new_offer_form(page, member)

    # Compute, the kind the page starts with: only the compute section is in view. The
    # capacity, dates and terms keep the values the page shows.
    expect(page.get_by_label("Compute: GPU hours on our hardware")).to_be_checked()
    expect(page.get_by_label("GPU type")).to_be_visible()
    expect(page.get_by_label("The dataset")).to_be_hidden()
    expect(page.get_by_label("Most projects")).to_have_value("1")
    publish = page.get_by_role("button", name="Publish offer")
    draft = page.get_by_role("button", name="Save as draft")
    background = "el => getComputedStyle(el).backgroundColor"
    assert publish.evaluate(background) != draft.evaluate(background)  # one primary button
    _describe(page, "H100 hours for protein structure research")
    _fill_compute(page)
    screenshot(page, "offer-form-compute")
    publish.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "H100 hours for protein structure research"
    )
    expect(flash(page)).to_contain_text("Your offer is open")

    # Data: the compute section goes out of view, the data section comes in.
    _open_new_offer_form(page, member, signed_in=True)
    page.get_by_label("Data: access to a dataset").check()
    expect(page.get_by_label("GPU type")).to_be_hidden()
    expect(page.get_by_label("GPU-hour budget (total)")).to_be_hidden()
    expect(page.get_by_label("The dataset")).to_be_visible()
    _describe(page, "Chest X-ray archive for imaging research")
    _fill_data(page)
    screenshot(page, "offer-form-data")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Chest X-ray archive for imaging research"
    )
    expect(flash(page)).to_contain_text("saved as a draft")

    # Compute and data together: both sections.
    _open_new_offer_form(page, member, signed_in=True)
    page.get_by_label("Compute and data together").check()
    expect(page.get_by_label("GPU type")).to_be_visible()
    expect(page.get_by_label("The dataset")).to_be_visible()
    _describe(page, "Chest X-rays with H100 hours to learn from them")
    _fill_compute(page)
    _fill_data(page)
    page.get_by_label("Most projects").fill("3")
    page.get_by_label("They may publish after we review the manuscript").check()
    page.get_by_role("button", name="Publish offer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Chest X-rays with H100 hours to learn from them"
    )

    compute, data, both = _offers(member)
    assert (compute.kind, compute.status) == (OfferKind.compute, OfferStatus.open)
    assert (compute.gpu_hours_budget, compute.max_hours_per_project) == (20_000, 4_000)
    assert (compute.max_projects, compute.dataset_description) == (1, "")
    assert (data.kind, data.status) == (OfferKind.data, OfferStatus.draft)
    assert data.data_domains == ["medical imaging", "radiology"]
    assert (data.gpu_type, data.gpu_hours_budget) == (None, 0)
    assert (both.kind, both.max_projects) == (OfferKind.compute_data, 3)
    assert both.gpu_type == "H100" and both.dataset_description == DATASET
    assert both.publication_terms.value == "after_review"


def test_two_mistakes_are_shown_together_at_their_fields_with_what_was_typed(
    page: Page, member: LiveServer
) -> None:
    _open_new_offer_form(page, member)
    _describe(page, "GPUs")  # too short: the service's rule
    _fill_compute(page)
    page.get_by_label("GPU-hour budget (total)").fill("lots")  # not a number: the form's rule
    page.get_by_role("button", name="Publish offer").click()

    expect(error_summary(page)).to_contain_text("Please correct the 2 fields marked below")
    expect(error_at(page.get_by_label("Title"))).to_contain_text("at least 5 characters")
    expect(error_at(page.get_by_label("GPU-hour budget (total)"))).to_contain_text(
        "Enter the budget as a whole number of GPU hours"
    )
    # The unreadable budget is not read as 0: the per-project limit is not blamed for it.
    expect(page.get_by_label("Most GPU hours for one project")).not_to_have_attribute(
        "aria-invalid", "true"
    )
    expect(page.get_by_label("Title")).to_have_value("GPUs")
    expect(page.get_by_label("GPU-hour budget (total)")).to_have_value("lots")
    expect(page.get_by_label("Description")).to_have_value(DESCRIPTION)
    expect(page.get_by_label("GPU type")).to_have_value("H100")
    screenshot(page, "offer-form-errors")
    assert _offers(member) == []

    page.get_by_label("Title").fill("H100 hours for protein structure research")
    page.get_by_label("GPU-hour budget (total)").fill("20000")
    page.get_by_role("button", name="Publish offer").click()
    expect(flash(page)).to_contain_text("Your offer is open")
    [offer] = _offers(member)
    assert offer.gpu_hours_budget == 20_000


def test_the_hidden_compute_section_never_blocks_a_data_offer(
    page: Page, member: LiveServer
) -> None:
    _open_new_offer_form(page, member)
    page.get_by_label("GPU memory (GB per GPU)").fill("lots")  # typed, then the kind changes
    page.get_by_label("Data: access to a dataset").check()
    expect(page.get_by_label("GPU memory (GB per GPU)")).to_be_hidden()
    _describe(page, "Chest X-ray archive for imaging research")
    _fill_data(page)
    page.get_by_role("button", name="Publish offer").click()
    expect(flash(page)).to_contain_text("Your offer is open")
    [offer] = _offers(member)
    assert (offer.kind, offer.gpu_memory_gb) == (OfferKind.data, None)

    # Its edit page opens on the data offer, with the compute section out of view.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit your offer")
    expect(page.get_by_label("Data: access to a dataset")).to_be_checked()
    expect(page.get_by_label("GPU type")).to_be_hidden()
    expect(page.get_by_label("The dataset")).to_have_value(DATASET)


@pytest.fixture
def page_without_scripts(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_without_javascript_every_section_shows_and_the_kind_decides(
    page_without_scripts: Page, member: LiveServer
) -> None:
    page = page_without_scripts
    _open_new_offer_form(page, member)
    expect(page.get_by_label("GPU type")).to_be_visible()
    expect(page.get_by_label("The dataset")).to_be_visible()
    page.get_by_label("Data: access to a dataset").check()
    expect(page.get_by_label("GPU type")).to_be_visible()  # nothing hides it
    page.get_by_label("GPU-hour budget (total)").fill("lots")
    _describe(page, "Chest X-ray archive for imaging research")
    _fill_data(page)
    page.get_by_role("button", name="Publish offer").click()
    expect(flash(page)).to_contain_text("Your offer is open")
    [offer] = _offers(member)
    assert (offer.kind, offer.gpu_hours_budget, offer.data_domains) == (
        OfferKind.data,
        0,
        ["medical imaging", "radiology"],
    )
