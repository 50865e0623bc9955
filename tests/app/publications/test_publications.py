"""The academic's publications: added by hand, pasted as BibTeX, deleted; and matched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import recommendations
from matching import Encoder
from models import Match, OrganisationKind, Publication, Role
from tests.app.pages import FormPage, text_of
from tests.conftest import AuthActions

BIBTEX = r"""
@article{mueller2021,
  title = {{Deep} Reinforcement Learning for Caf\'{e} Queues},
  author = {M{\"u}ller, Jana and Okafor, Ada},
  journal = {Journal of {Machine} Learning Research},
  year = {2021},
  abstract = {We model queues with \emph{deep} policies.}
}

@inproceedings{okafor2023,
  title = "Battery Dispatch from Logged Grid Data",
  booktitle = {Proceedings of NeurIPS},
  year = 2023
}

@misc{untitled2020,
  year = {2020},
  howpublished = {arXiv}
}

@article{noyear,
  title = {A Paper Without a Year},
  journal = {Nature}
}

@article{again,
  title = {battery dispatch from logged grid data.},
  year = {2024}
}

@article{known,
  title = {Tactile Sensing at Scale},
  year = {2019}
}

@misc{future,
  title = {A Paper From the Far Future},
  year = {2999}
}
"""


@pytest.fixture
def academic(make_user: Callable[..., Any], auth: AuthActions) -> Any:
    user = make_user(email="ada@example.org", name="Ada Okafor")
    auth.login(user.email)
    return user


def titles(session: Session, author_id: int) -> set[str]:
    session.expire_all()
    return set(
        session.exec(select(Publication.title).where(Publication.author_id == author_id)).all()
    )


def test_add_by_hand_and_invalid_input_is_kept_at_the_field(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    page = FormPage(client.get("/publications/").data)
    for label in ("Title", "Year", "Venue", "Abstract", "BibTeX"):
        assert "e.g." in page.help(label), label

    bad = {"title": "Grid batteries", "year": "1850", "venue": "NeurIPS", "abstract": "Short."}
    response = client.post("/publications/", data=bad)
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Year") == "Please enter a number of at least 1900."
    assert page.value("Title") == "Grid batteries" and page.value("Year") == "1850"
    assert page.value("Venue") == "NeurIPS" and page.value("Abstract") == "Short."
    assert titles(session, academic.id) == set()

    # A year that does not parse still lets the title's limit be reported in the same answer.
    response = client.post("/publications/", data={**bad, "title": " ", "year": "twenty"})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Year") == "Please give the year as four digits, e.g. 2023."
    assert page.error("Title") == "This field is required."
    assert page.value("Year") == "twenty"
    assert titles(session, academic.id) == set()

    response = client.post("/publications/", data={**bad, "year": "2022"})
    assert response.status_code == 302
    assert titles(session, academic.id) == {"Grid batteries"}
    listed = text_of(client.get("/publications/").data)
    assert "Grid batteries" in listed and "NeurIPS" in listed

    again = client.post("/publications/", data={**bad, "title": "grid  Batteries", "year": "2022"})
    assert again.status_code == 422
    assert "already listed" in FormPage(again.data).error("Title")
    assert len(titles(session, academic.id)) == 1


def test_bibtex_import_reports_each_entry(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    session.add(Publication(title="Tactile sensing at scale", year=2019, author_id=academic.id))
    session.commit()
    response = client.post("/publications/import", data={"bibtex-text": BIBTEX})
    assert response.status_code == 200
    report = text_of(response.data)
    assert "Imported 2 of 7 entries" in report
    assert "“Deep Reinforcement Learning for Café Queues” (2021, Journal of Machine Learning" in (
        report
    )
    assert "(untitled2020, line 16) — skipped because it has no title" in report
    assert "“A Paper Without a Year” (noyear, line 21) — skipped because it has no year" in report
    assert "skipped because this title appears earlier in the pasted text" in report
    assert (
        "“Tactile Sensing at Scale” (known, line 31) — skipped because this title is already on"
        in (report)
    )
    assert (
        "“A Paper From the Far Future” (future, line 36) — skipped because year: please enter a"
        " number of at most 2100" in (report)
    )

    session.expire_all()
    stored = {
        p.title: p
        for p in session.exec(select(Publication).where(Publication.author_id == academic.id))
    }
    assert set(stored) == {
        "Tactile sensing at scale",
        "Deep Reinforcement Learning for Café Queues",
        "Battery Dispatch from Logged Grid Data",
    }
    cafe = stored["Deep Reinforcement Learning for Café Queues"]
    assert (cafe.year, cafe.venue) == (2021, "Journal of Machine Learning Research")
    assert cafe.abstract == "We model queues with deep policies."
    assert stored["Battery Dispatch from Logged Grid Data"].venue == "Proceedings of NeurIPS"

    # Pasting the same text again imports nothing new.
    again = client.post("/publications/import", data={"bibtex-text": BIBTEX})
    assert "Imported 0 of 7 entries" in text_of(again.data)
    assert len(titles(session, academic.id)) == 3


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        (
            "@article{fine, title = {A Fine Paper}, year = {2020}}\n"
            "@article{broken, title = {Unclosed, year = 2020\n",
            "could not be read at line 2",
        ),
        ("Just some notes, no entries at all.", "No BibTeX entries found"),
    ],
)
def test_bad_bibtex_is_refused_whole_and_kept(
    client: FlaskClient, session: Session, academic: Any, pasted: str, message: str
) -> None:
    response = client.post("/publications/import", data={"bibtex-text": pasted})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert message in page.error("BibTeX")
    assert "Nothing was imported" in page.error("BibTeX")
    assert page.value("BibTeX") == pasted.strip()
    assert titles(session, academic.id) == set()


def test_delete_own_publication_only(
    client: FlaskClient,
    session: Session,
    academic: Any,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    mine = Publication(title="My paper", year=2020, author_id=academic.id)
    other_author = make_user(email="other@example.org")
    theirs = Publication(
        title="Their unpublished-looking title", year=2021, author_id=other_author.id
    )
    session.add_all([mine, theirs])
    session.commit()

    page = client.get("/publications/").get_data(as_text=True)
    assert "My paper" in page and "Their unpublished-looking title" not in page
    # Someone else's paper reads like one deleted a moment ago: nothing is removed or shown.
    refused = client.post(f"/publications/{theirs.id}/delete", follow_redirects=True)
    assert "That publication is no longer on your profile." in refused.get_data(as_text=True)
    assert "Their unpublished-looking title" not in refused.get_data(as_text=True)
    assert client.post(f"/publications/{mine.id}/delete").status_code == 302
    assert titles(session, academic.id) == set()
    assert titles(session, other_author.id) == {"Their unpublished-looking title"}

    company = make_organisation(kind=OrganisationKind.company)
    make_user(email="member@example.com", role=Role.company, organisation_id=company.id)
    for email, expected in (("member@example.com", 403), (None, 302)):
        auth.logout()
        if email:
            auth.login(email)
        responses = [
            client.get("/publications/"),
            client.post("/publications/", data={"title": "Injected", "year": "2020"}),
            client.post("/publications/import", data={"bibtex-text": BIBTEX}),
            client.post(f"/publications/{theirs.id}/delete"),
        ]
        assert {r.status_code for r in responses} == {expected}
        if expected == 302:
            assert all("/login" in r.headers["Location"] for r in responses)
    assert titles(session, other_author.id) == {"Their unpublished-looking title"}
    assert session.exec(select(Publication)).all() == [theirs]


def test_new_publications_reach_the_matches_of_open_proposals(
    client: FlaskClient,
    session: Session,
    encoder: Encoder,
    academic: Any,
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    proposal = make_proposal(author_id=academic.id)
    make_offer()
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    assert match.explanation["best_publications"] == []

    bib = "@article{a, title = {Offline Reinforcement Learning on H100 GPUs}, year = {2022}}"
    assert client.post("/publications/import", data={"bibtex-text": bib}).status_code == 200
    session.expire_all()
    match = session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    assert [p["title"] for p in match.explanation["best_publications"]] == [
        "Offline Reinforcement Learning on H100 GPUs"
    ]

    publication = session.exec(select(Publication)).one()
    assert client.post(f"/publications/{publication.id}/delete").status_code == 302
    session.expire_all()
    match = session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    assert match.explanation["best_publications"] == []


def test_both_forms_on_the_page_carry_their_own_csrf_token(
    app: Flask, client: FlaskClient, session: Session, academic: Any
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True  # as in production (signed in before turning it on)
    page = FormPage(client.get("/publications/").data)
    bib = "@article{a, title = {Protected Paper}, year = {2022}}"
    refused = client.post("/publications/import", data={"bibtex-text": bib})
    assert refused.status_code == 400
    assert titles(session, academic.id) == set()
    token = page.controls["bibtex-csrf_token"]["value"]
    accepted = client.post(
        "/publications/import", data={"bibtex-text": bib, "bibtex-csrf_token": token}
    )
    assert accepted.status_code == 200
    hand = {"title": "By hand", "year": "2021", "csrf_token": page.controls["csrf_token"]["value"]}
    assert client.post("/publications/", data=hand).status_code == 302
    assert titles(session, academic.id) == {"Protected Paper", "By hand"}


@pytest.mark.parametrize("typed", ["\u200b", "\u2060\u2060", "\ufeff \u200b", "\u200d\u00ad"])
def test_a_title_of_invisible_characters_is_as_empty_as_no_title(
    client: FlaskClient, session: Session, academic: Any, typed: str
) -> None:
    empty = client.post("/publications/", data={"title": "", "year": "2022"})
    assert FormPage(empty.data).error("Title") == "This field is required."
    response = client.post("/publications/", data={"title": typed, "year": "2022"})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Title") == "This field is required."
    assert page.value("Title") == typed
    assert titles(session, academic.id) == set()


def _entries(count: int, first: int = 0) -> str:
    numbers = range(first, first + count)
    return "\n".join(f"@misc{{k{n}, title = {{Paper {n}}}, year = {{2020}}}}" for n in numbers)


def test_one_paste_imports_at_most_200_entries_and_otherwise_nothing(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    pasted = _entries(201)
    response = client.post("/publications/import", data={"bibtex-text": pasted})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("BibTeX") == (
        "This paste holds 201 entries; please paste at most 200 at a time, e.g. your most "
        "recent or most relevant papers, and the rest in further pastes. Nothing was imported."
    )
    assert page.value("BibTeX") == pasted
    assert "200 entries at a time" in page.help("BibTeX")
    assert titles(session, academic.id) == set()


def test_a_profile_holds_at_most_500_publications(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    session.add_all(
        Publication(title=f"Earlier paper {n}", year=2010, author_id=academic.id)
        for n in range(495)
    )
    session.commit()

    six = _entries(6)
    response = client.post("/publications/import", data={"bibtex-text": six})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("BibTeX") == (
        "Your profile lists 495 publications and this paste would add 6, past the most a "
        "profile can hold (500). Paste at most 5 new entries, or remove some publications "
        "first. Nothing was imported."
    )
    assert page.value("BibTeX") == six
    assert len(titles(session, academic.id)) == 495

    # Entries skipped (already listed, no year) do not count against the room left.
    five = _entries(5) + "\n@misc{again, title = {Earlier paper 3}, year = {2010}}"
    response = client.post("/publications/import", data={"bibtex-text": five})
    assert response.status_code == 200
    assert "Imported 5 of 6 entries" in text_of(response.data)
    assert len(titles(session, academic.id)) == 500

    response = client.post("/publications/import", data={"bibtex-text": _entries(1, first=9)})
    assert response.status_code == 422
    assert FormPage(response.data).error("BibTeX") == (
        "Your profile already lists 500 publications, the most it can hold (500). Remove some "
        "older or less relevant ones first: the matcher reads your most representative work "
        "best. Nothing was imported."
    )
    response = client.post("/publications/", data={"title": "One more paper", "year": "2024"})
    assert response.status_code == 422
    assert "the most it can hold (500)" in text_of(response.data)
    assert FormPage(response.data).value("Title") == "One more paper"
    assert len(titles(session, academic.id)) == 500
