"""The public listings' filters used as a person uses them: reached from the header's Proposals
and Offers links, sent untouched with the page's own button, then a filter chosen through its
label. The results, the count and the chosen filter stay together, page after page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from models import (
    Offer,
    OfferKind,
    OfferStatus,
    Proposal,
    ProposalStatus,
    User,
)
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, UNLABELLED_INPUTS, make_sides, sign_in

# More than a page (20 a page) in the area chosen, so that its results run onto a second page.
BIOLOGY = 23
CLIMATE = 3
COMPUTE = 22
DATA = 2
BOTH = 1


@pytest.fixture
def listings(live_server: LiveServer) -> LiveServer:
    """Open proposals in two research areas and open offers of each kind, plus a draft and a
    closed one that the listings never show."""
    academic, member = make_sides(
        live_server,
        academic=("ada@kestrel.example.org", "Ada Byron"),
        member=("sam@helios.example.com", "Sam Reyes"),
    )
    with live_server.session() as session:
        for number in range(BIOLOGY):
            session.add(_proposal(f"Protein folding study {number + 1}", "biology", academic.id))
        for number in range(CLIMATE):
            session.add(_proposal(f"Regional climate study {number + 1}", "climate", academic.id))
        session.add(
            _proposal("Unpublished draft", "biology", academic.id, status=ProposalStatus.draft)
        )
        for kind, count in ((OfferKind.compute, COMPUTE), (OfferKind.data, DATA)):
            for number in range(count):
                session.add(_offer(f"{kind.value.title()} offer {number + 1}", kind, member))
        session.add(_offer("Compute and data offer 1", OfferKind.compute_data, member))
        session.add(_offer("Closed data offer", OfferKind.data, member, status=OfferStatus.closed))
        session.commit()
    return live_server


def _proposal(
    title: str, area: str, author_id: int, *, status: ProposalStatus = ProposalStatus.open
) -> Proposal:
    areas = {"biology": ["computational biology"], "climate": ["climate science"]}[area]
    return Proposal(
        title=title,
        abstract=f"{title}: a study that needs GPU time and publishes its results openly.",
        research_areas=areas,
        gpu_hours_needed=1_000,
        status=status,
        author_id=author_id,
    )


def _offer(
    title: str, kind: OfferKind, member: User, *, status: OfferStatus = OfferStatus.open
) -> Offer:
    return Offer(
        kind=kind,
        title=title,
        description=f"{title}: resources for academic work that publishes openly.",
        gpu_type="H100" if kind != OfferKind.data else None,
        gpu_hours_budget=10_000 if kind != OfferKind.data else None,
        max_hours_per_project=2_000 if kind != OfferKind.data else None,
        dataset_description="Anonymised records" if kind != OfferKind.compute else None,
        data_domains=["health"] if kind != OfferKind.compute else [],
        max_projects=3,
        status=status,
        organisation_id=member.organisation_id,
        created_by_id=member.id,
    )


def _titles(page: Page) -> list[str]:
    return page.locator("main article.card h2").all_inner_texts()


def _filter_form(page: Page) -> Locator:
    return page.locator("form.filters")


def _submit(page: Page) -> int:
    """Press the form's own button; the status of the page it leads to."""
    with page.expect_navigation() as navigation:
        _filter_form(page).get_by_role("button", name="Filter").click()
    response = navigation.value
    assert response is not None
    return response.status


def _open_listing(page: Page, server: LiveServer, link: str) -> None:
    page.goto(server.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    assert page.evaluate(UNLABELLED_INPUTS) == []


def test_proposals_filtered_by_research_area_page_after_page(
    page: Page, listings: LiveServer
) -> None:
    _open_listing(page, listings, "Proposals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Research proposals")
    area = page.get_by_label("Research area", exact=True)
    expect(area).to_have_value("")

    # The untouched form lists everything, without an error.
    assert _submit(page) == 200
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(f"{BIOLOGY + CLIMATE} proposals.")
    expect(area).to_have_value("")
    assert "Unpublished draft" not in _titles(page)

    area.select_option(label="climate science")
    assert _submit(page) == 200
    expect(page).to_have_url(re.compile(r"area=climate\+science|area=climate%20science"))
    expect(area).to_have_value("climate science")
    expect(page.locator("main")).to_contain_text(f"{CLIMATE} proposals in climate science.")
    assert sorted(_titles(page)) == [f"Regional climate study {n}" for n in (1, 2, 3)]
    expect(page.get_by_role("navigation", name="Pages")).to_have_count(0)

    area.select_option(label="computational biology")
    assert _submit(page) == 200
    expect(page.locator("main")).to_contain_text(f"{BIOLOGY} proposals in computational biology.")
    first_page = _titles(page)
    assert len(first_page) == 20 and all(t.startswith("Protein folding") for t in first_page)

    pages = page.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text("Page 1 of 2")
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text("Page 2 of 2")
    expect(area).to_have_value("computational biology")
    expect(page.locator("main")).to_contain_text(f"{BIOLOGY} proposals in computational biology.")
    second_page = _titles(page)
    assert len(second_page) == BIOLOGY - 20
    assert all(t.startswith("Protein folding") for t in second_page)
    assert not set(first_page) & set(second_page)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "proposals-filtered-page-2")

    pages.get_by_role("link", name="Previous").click()
    expect(pages).to_contain_text("Page 1 of 2")
    assert _titles(page) == first_page

    # Back to every area through the same select and button.
    area.select_option(label="All areas")
    assert _submit(page) == 200
    expect(page.locator("main")).to_contain_text(f"{BIOLOGY + CLIMATE} proposals.")


def test_offers_filtered_by_kind_page_after_page(page: Page, listings: LiveServer) -> None:
    _open_listing(page, listings, "Offers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Offers from industry")
    kind = page.get_by_label("Kind of offer", exact=True)
    expect(kind).to_have_value("")

    assert _submit(page) == 200
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(f"{COMPUTE + DATA + BOTH} open offers.")
    assert "Closed data offer" not in _titles(page)

    kind.select_option(label="Compute and data")
    assert _submit(page) == 200
    expect(kind).to_have_value("compute+data")
    expect(page.locator("main")).to_contain_text("1 open compute and data offer.")
    assert _titles(page) == ["Compute and data offer 1"]

    kind.select_option(label="Data")
    assert _submit(page) == 200
    expect(page.locator("main")).to_contain_text(f"{DATA} open data offers.")
    assert sorted(_titles(page)) == ["Data offer 1", "Data offer 2"]

    kind.select_option(label="Compute")
    assert _submit(page) == 200
    expect(page.locator("main")).to_contain_text(f"{COMPUTE} open compute offers.")
    first_page = _titles(page)
    assert len(first_page) == 20 and all(t.startswith("Compute offer") for t in first_page)

    pages = page.get_by_role("navigation", name="Pages")
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text("Page 2 of 2")
    expect(kind).to_have_value("compute")
    second_page = _titles(page)
    assert len(second_page) == COMPUTE - 20
    assert all(t.startswith("Compute offer") for t in second_page)
    screenshot(page, "offers-filtered-page-2")


def test_the_filters_at_phone_width(phone_page: Page, listings: LiveServer) -> None:
    _open_listing(phone_page, listings, "Offers")
    kind = phone_page.get_by_label("Kind of offer", exact=True)
    kind.select_option(label="Data")
    _filter_form(phone_page).get_by_role("button", name="Filter").click()
    expect(phone_page.locator("main")).to_contain_text(f"{DATA} open data offers.")
    assert phone_page.evaluate(NO_HORIZONTAL_SCROLL)

    _open_listing(phone_page, listings, "Proposals")
    area = phone_page.get_by_label("Research area", exact=True)
    area.select_option(label="climate science")
    _filter_form(phone_page).get_by_role("button", name="Filter").click()
    expect(phone_page.locator("main")).to_contain_text(f"{CLIMATE} proposals in climate science.")
    assert phone_page.evaluate(NO_HORIZONTAL_SCROLL)


def test_a_filter_that_no_longer_matches_says_so_and_keeps_the_choice(
    page: Page, listings: LiveServer
) -> None:
    """A saved link to an area whose last proposal has closed, or to a kind that is not one."""
    page.goto(listings.url + "/proposals/?area=quantum+chemistry")
    area = page.get_by_label("Research area", exact=True)
    expect(area).to_have_value("quantum chemistry")
    expect(page.locator("main")).to_contain_text("0 proposals in quantum chemistry.")
    page.get_by_role("link", name="Show all areas").click()
    expect(area).to_have_value("")
    expect(page.locator("main")).to_contain_text(f"{BIOLOGY + CLIMATE} proposals.")

    page.goto(listings.url + "/offers/?kind=gpus")
    kind = page.get_by_label("Kind of offer", exact=True)
    expect(kind).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#kind-error")).to_have_text("Choose a kind of offer from the list.")
    kind.select_option(label="Data")
    assert _submit(page) == 200
    expect(kind).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("main")).to_contain_text(f"{DATA} open data offers.")


def _current(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main").locator("[aria-current=page]")


def test_the_header_marks_the_dashboard_on_a_persons_own_work(
    page: Page, listings: LiveServer
) -> None:
    """The listings are where others' work is; writing one's own proposal or offer, the
    publications and the exclusion list belong to the dashboard."""
    sign_in(page, listings, "ada@kestrel.example.org")
    nav = page.get_by_role("navigation", name="Main")
    expect(_current(page)).to_have_text("Dashboard")
    steps = [
        (nav.get_by_role("link", name="Proposals"), "Proposals"),
        (page.get_by_role("link", name="Regional climate study 1"), "Proposals"),
        (nav.get_by_role("link", name="Dashboard"), "Dashboard"),
        (page.get_by_role("link", name="Propose research"), "Dashboard"),
        (nav.get_by_role("link", name="Dashboard"), "Dashboard"),
        (page.get_by_role("link", name="Edit “Regional climate study 1”"), "Dashboard"),
        (nav.get_by_role("link", name="Dashboard"), "Dashboard"),
        (page.get_by_role("link", name=re.compile(r"^Your publications")), "Dashboard"),
        (nav.get_by_role("link", name="Offers"), "Offers"),
    ]
    for link, current in steps:
        link.click()
        expect(_current(page)).to_have_text(current)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, listings, "sam@helios.example.com")
    expect(_current(page)).to_have_text("Dashboard")
    steps = [
        (page.get_by_role("link", name="Offer compute or data"), "Dashboard"),
        (nav.get_by_role("link", name="Dashboard"), "Dashboard"),
        (page.get_by_role("link", name="Edit Data offer 1"), "Dashboard"),
        (nav.get_by_role("link", name="Dashboard"), "Dashboard"),
        (page.get_by_role("link", name=re.compile(r"^Exclusion list")), "Dashboard"),
        (nav.get_by_role("link", name="Offers"), "Offers"),
        (page.get_by_role("link", name="Data offer 1", exact=True), "Offers"),
    ]
    for link, current in steps:
        link.click()
        expect(_current(page)).to_have_text(current)
