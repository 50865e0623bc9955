"""The publications page, used as an academic uses it: reached from the dashboard after
signing in, a paper added by hand, a BibTeX list pasted (a malformed one too), a paper
deleted, each through the labels and the page's own buttons."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import OrganisationKind, Publication, Role
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

PAPER = "Offline reinforcement learning for battery dispatch"
BIBTEX = """@inproceedings{okafor2023,
  title = {Learning to Dispatch Grid Batteries from Logged Data},
  author = {Okafor, Ada and Lin, Wei},
  booktitle = {NeurIPS},
  year = {2023},
  abstract = {We learn dispatch policies offline from five years of operator logs.}
}

@article{okafor2021,
  title = {Safe Exploration for Energy Storage},
  journal = {Energy and AI},
}
"""
# The second entry's title is never closed: the reader cannot tell where it ends.
MALFORMED = """@article{okafor2022,
  title = {Forecasting Demand with {Transformers}},
  journal = {Applied Energy},
  year = {2022}
}

@article{okafor2020,
  title = {Battery Ageing Models,
  year = {2020}
}
"""


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


def _titles(server: LiveServer) -> list[str]:
    with server.session() as session:
        return list(session.exec(select(Publication.title).order_by(Publication.id)))


def _open_publications(page: Page, server: LiveServer) -> None:
    make_person(
        server,
        email="ada.okafor@northbridge.example.edu",
        name="Ada Okafor",
        role=Role.academic,
        organisation="Northbridge University",
        kind=OrganisationKind.university,
    )
    sign_in(page, server, "ada.okafor@northbridge.example.edu")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")
    page.get_by_role("link", name="Your publications (0)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your publications")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    assert page.evaluate(FORMS_WITHOUT_NOVALIDATE) == []


def test_add_a_paper_by_hand_then_delete_it(page: Page, live_server: LiveServer) -> None:
    _open_publications(page, live_server)
    by_hand = page.get_by_role("form", name="Add a publication by hand")
    by_hand.get_by_label("Title").fill(PAPER)
    by_hand.get_by_label("Year").fill("2023")
    by_hand.get_by_label("Venue").fill("NeurIPS")
    by_hand.get_by_label("Abstract").fill("We learn dispatch policies from logged grid data.")
    by_hand.get_by_role("button", name="Add publication").click()

    expect(flash(page)).to_contain_text(f"Added “{PAPER}” to your profile.")
    expect(page.get_by_role("heading", name="On your profile (1)")).to_be_visible()
    paper = page.get_by_role("article").filter(has_text=PAPER)
    expect(paper).to_contain_text("2023")
    expect(paper).to_contain_text("NeurIPS")
    expect(
        page.get_by_role("form", name="Add a publication by hand").get_by_label("Title")
    ).to_be_empty()
    assert _titles(live_server) == [PAPER]
    page.get_by_role("link", name="Your dashboard").click()
    expect(page.get_by_role("link", name="Your publications (1)")).to_be_visible()

    page.get_by_role("link", name="Your publications (1)").click()
    # A second tab of the same browser, left open on the same page.
    stale = page.context.new_page()
    stale.goto(page.url)
    page.get_by_role("button", name=f"Delete “{PAPER}”").click()
    expect(flash(page)).to_contain_text(f"Removed “{PAPER}” from your profile.")
    expect(page.get_by_role("heading", name="On your profile (0)")).to_be_visible()
    assert _titles(live_server) == []

    stale.get_by_role("button", name=f"Delete “{PAPER}”").click()
    expect(flash(stale)).to_contain_text("That publication is no longer on your profile.")
    expect(stale.get_by_role("heading", name="On your profile (0)")).to_be_visible()


def test_a_paper_with_two_mistakes_shows_both_at_once_and_keeps_what_was_typed(
    page: Page, live_server: LiveServer
) -> None:
    _open_publications(page, live_server)
    by_hand = page.get_by_role("form", name="Add a publication by hand")
    # No title and no year: the year is checked by the form, the title by the model; both
    # must be reported by the first submission.
    by_hand.get_by_label("Venue").fill("NeurIPS")
    by_hand.get_by_label("Abstract").fill("We learn dispatch policies from logged grid data.")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        by_hand.get_by_role("button", name="Add publication").click()
    assert answer.value.status == 422

    by_hand = page.get_by_role("form", name="Add a publication by hand")
    expect(error_summary(page)).to_contain_text("Please correct the 2 fields marked below.")
    expect(error_at(by_hand.get_by_label("Title"))).to_have_text("This field is required.")
    expect(error_at(by_hand.get_by_label("Year"))).to_have_text(
        "Please give the year of publication, e.g. 2023."
    )
    expect(by_hand.get_by_label("Venue")).to_have_value("NeurIPS")
    expect(by_hand.get_by_label("Abstract")).to_have_value(
        "We learn dispatch policies from logged grid data."
    )
    assert _titles(live_server) == []

    # A year outside the model's range, and a title: one message, the rest kept.
    by_hand.get_by_label("Title").fill(PAPER)
    by_hand.get_by_label("Year").fill("3023")
    by_hand.get_by_role("button", name="Add publication").click()
    by_hand = page.get_by_role("form", name="Add a publication by hand")
    expect(error_summary(page)).to_contain_text("Please correct the 1 field marked below.")
    expect(error_at(by_hand.get_by_label("Year"))).to_have_text(
        "Please enter a number of at most 2100."
    )
    expect(by_hand.get_by_label("Title")).to_have_value(PAPER)
    expect(by_hand.get_by_label("Year")).to_have_value("3023")
    assert _titles(live_server) == []
    screenshot(page, "publications-errors")

    by_hand.get_by_label("Year").fill("2023")
    by_hand.get_by_role("button", name="Add publication").click()
    expect(flash(page)).to_contain_text(f"Added “{PAPER}” to your profile.")
    assert _titles(live_server) == [PAPER]


def test_pasted_bibtex_is_imported_entry_by_entry_with_reasons(
    page: Page, live_server: LiveServer
) -> None:
    _open_publications(page, live_server)
    paste = page.get_by_role("form", name="Paste BibTeX")
    paste.get_by_label("BibTeX").fill(BIBTEX)
    paste.get_by_role("button", name="Import BibTeX").click()

    report = page.get_by_role("status").filter(has_text="Imported 1 of 2 entries")
    expect(report).to_be_visible()
    expect(report).to_contain_text("“Learning to Dispatch Grid Batteries from Logged Data” (2023")
    expect(report).to_contain_text("“Safe Exploration for Energy Storage”")
    expect(report).to_contain_text("skipped because it has no year")
    expect(page.get_by_role("heading", name="On your profile (1)")).to_be_visible()
    expect(page.get_by_role("form", name="Paste BibTeX").get_by_label("BibTeX")).to_be_empty()
    assert _titles(live_server) == ["Learning to Dispatch Grid Batteries from Logged Data"]
    screenshot(page, "publications-imported")

    # Pasting the same list again adds nothing and says why.
    paste = page.get_by_role("form", name="Paste BibTeX")
    paste.get_by_label("BibTeX").fill(BIBTEX)
    paste.get_by_role("button", name="Import BibTeX").click()
    report = page.get_by_role("status").filter(has_text="Imported 0 of 2 entries")
    expect(report).to_contain_text("this title is already on your profile")
    assert len(_titles(live_server)) == 1


def test_malformed_bibtex_is_refused_whole_with_the_line_and_the_text_is_kept(
    page: Page, live_server: LiveServer
) -> None:
    _open_publications(page, live_server)
    paste = page.get_by_role("form", name="Paste BibTeX")
    paste.get_by_label("BibTeX").fill(MALFORMED)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        paste.get_by_role("button", name="Import BibTeX").click()
    assert answer.value.status == 422

    paste = page.get_by_role("form", name="Paste BibTeX")
    expect(error_summary(page)).to_contain_text("Please correct the 1 field marked below.")
    message = error_at(paste.get_by_label("BibTeX"))
    expect(message).to_contain_text("could not be read at line 7")
    expect(message).to_contain_text("@article{okafor2020")
    expect(message).to_contain_text("Nothing was imported.")
    expect(paste.get_by_label("BibTeX")).to_have_value(MALFORMED)
    assert _titles(live_server) == [], "not even the well-formed first entry"
    screenshot(page, "publications-bibtex-error")

    # Closing the brace imports both.
    paste.get_by_label("BibTeX").fill(
        MALFORMED.replace("Battery Ageing Models,", "Battery Ageing Models},")
    )
    paste.get_by_role("button", name="Import BibTeX").click()
    expect(page.get_by_role("status").filter(has_text="Imported 2 of 2 entries")).to_be_visible()
    assert _titles(live_server) == [
        "Forecasting Demand with Transformers",
        "Battery Ageing Models",
    ]


def test_an_empty_paste_is_refused_at_the_field(page: Page, live_server: LiveServer) -> None:
    _open_publications(page, live_server)
    page.get_by_role("form", name="Paste BibTeX").get_by_role(
        "button", name="Import BibTeX"
    ).click()
    paste = page.get_by_role("form", name="Paste BibTeX")
    expect(error_at(paste.get_by_label("BibTeX"))).to_have_text(
        "Please paste at least one BibTeX entry."
    )
    # The other form on the page is untouched and shows no error.
    by_hand = page.get_by_role("form", name="Add a publication by hand")
    expect(by_hand.get_by_role("alert")).to_have_count(0)
    assert _titles(live_server) == []
