"""The company's exclusion list, used as a company member uses it: reached from the dashboard
after signing in, typed into its one box, saved with the page's own button."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import Offer, OfferKind, OfferStatus, OrganisationKind, Role, User
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

LIST_LABEL = "Institutions and email domains never to be matched"
SAVE = "Save the list for all our offers"


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


def _member(server: LiveServer, *, offers: int) -> User:
    member = make_person(
        server,
        email="sam.reyes@helios.example.com",
        name="Sam Reyes",
        role=Role.company,
        organisation="Helios Compute",
        kind=OrganisationKind.company,
    )
    with server.session() as session:
        for number in range(1, offers + 1):
            session.add(
                Offer(
                    organisation_id=member.organisation_id,
                    kind=OfferKind.compute,
                    title=f"H100 hours for open research, round {number}",
                    description="Up to 5,000 H100 hours for academic projects that publish.",
                    gpu_type="H100",
                    gpu_memory_gb=80,
                    gpu_hours_budget=20_000,
                    max_hours_per_project=5_000,
                    max_projects=4,
                    status=OfferStatus.open,
                )
            )
        session.commit()
    return member


def _lists(server: LiveServer) -> list[list[str]]:
    with server.session() as session:
        return list(session.exec(select(Offer.excluded_institutions).order_by(Offer.id)))


def _open_exclusions(page: Page, server: LiveServer, count: int = 0) -> None:
    sign_in(page, server, "sam.reyes@helios.example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    page.get_by_role("link", name=f"Exclusion list ({count})").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Institutions you are never matched with"
    )
    assert page.evaluate(UNLABELLED_INPUTS) == []
    assert page.evaluate(FORMS_WITHOUT_NOVALIDATE) == []


def test_the_list_is_saved_for_every_offer_and_shown_again(
    page: Page, live_server: LiveServer
) -> None:
    _member(live_server, offers=2)
    _open_exclusions(page, live_server)
    expect(page.get_by_label(LIST_LABEL)).to_be_empty()
    page.get_by_label(LIST_LABEL).fill("Northbridge University\n@Uni.Example.edu\n")
    page.get_by_role("button", name=SAVE).click()

    expect(flash(page)).to_contain_text(
        "Saved. The list now applies to all your offers (2 updated)."
    )
    # Domains are shown as they are compared: lower case, without the @.
    expect(page.get_by_label(LIST_LABEL)).to_have_value("Northbridge University\nuni.example.edu")
    assert _lists(live_server) == [["Northbridge University", "uni.example.edu"]] * 2
    screenshot(page, "exclusions-saved")

    # Sent again as the page shows it, nothing changes.
    page.get_by_role("button", name=SAVE).click()
    expect(flash(page)).to_contain_text("Saved. Nothing changed.")
    page.get_by_role("link", name="Back to your dashboard").click()
    expect(page.get_by_role("link", name="Exclusion list (2)")).to_be_visible()

    # Emptying the box clears the list everywhere.
    page.get_by_role("link", name="Exclusion list (2)").click()
    page.get_by_label(LIST_LABEL).fill("")
    page.get_by_role("button", name=SAVE).click()
    expect(flash(page)).to_contain_text("(2 updated)")
    assert _lists(live_server) == [[], []]


def test_two_bad_lines_are_both_named_at_the_field_and_the_text_is_kept(
    page: Page, live_server: LiveServer
) -> None:
    _member(live_server, offers=1)
    typed = "Northbridge University\nhttps://www.rival.example.com/\nsam@uni.example.edu"
    _open_exclusions(page, live_server)
    page.get_by_label(LIST_LABEL).fill(typed)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=SAVE).click()
    assert answer.value.status == 422

    expect(error_summary(page)).to_contain_text("Please correct the 1 field marked below.")
    message = error_at(page.get_by_label(LIST_LABEL))
    expect(message).to_contain_text("Line 2 (“https://www.rival.example.com/”)")
    expect(message).to_contain_text("write the bare domain")
    expect(message).to_contain_text("Line 3 (“sam@uni.example.edu”)")
    expect(message).to_contain_text("write the domain only (uni.example.edu)")
    expect(page.get_by_label(LIST_LABEL)).to_have_value(typed)
    assert _lists(live_server) == [[]]
    screenshot(page, "exclusions-errors")

    page.get_by_label(LIST_LABEL).fill("Northbridge University\nrival.example.com\nuni.example.edu")
    page.get_by_role("button", name=SAVE).click()
    expect(flash(page)).to_contain_text("(1 updated)")
    assert _lists(live_server) == [
        ["Northbridge University", "rival.example.com", "uni.example.edu"]
    ]


def test_without_offers_the_page_leads_to_the_offer_form_instead_of_a_form_that_fails(
    page: Page, live_server: LiveServer
) -> None:
    _member(live_server, offers=0)
    _open_exclusions(page, live_server)
    expect(page.get_by_role("button", name=SAVE)).to_have_count(0)
    expect(page.get_by_label(LIST_LABEL)).to_have_count(0)
    page.get_by_role("link", name="Create your first offer").click()
    expect(page.get_by_label(LIST_LABEL)).to_be_visible()
