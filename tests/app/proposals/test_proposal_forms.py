"""Writing, publishing and closing proposals through the browser forms."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Match, OrganisationKind, Proposal, ProposalStatus, Role
from tests.app.pages import FULL, FormPage, text_of
from tests.conftest import AuthActions

LABELS = {
    "title": "Title",
    "abstract": "Abstract",
    "research_areas": "Research areas",
    "gpu_hours_needed": "GPU hours needed",
    "gpu_memory_min_gb": "Minimum GPU memory (GB)",
    "gpu_type": "GPU type",
    "duration_months": "Duration (months)",
    "earliest_start": "Earliest start",
    "data_need": "Data needed",
    "data_domains": "Data domains",
    "collaboration_kinds": "Collaboration wanted",
    "requires_open_publication": "I must be free to publish the results",
    "requires_open_source": "The code must be released as open source",
    "ip_stance": "Intellectual property: the most you accept",
    "lab_resource_level": "Your lab's resources",
    "excluded_companies": "Never match me with",
}


@pytest.fixture
def academic(make_user: Callable[..., Any], auth: AuthActions) -> Any:
    user = make_user(email="ada@example.org", name="Ada Okafor")
    auth.login(user.email)
    return user


def test_every_field_is_labelled_with_help_and_an_example(
    client: FlaskClient, academic: Any
) -> None:
    response = client.get("/proposals/new")
    assert response.status_code == 200
    page = FormPage(response.data)
    for label in LABELS.values():
        assert "e.g." in page.help(label), label
    assert page.checked("I must be free to publish the results")
    assert page.checked("Open: results belong to no one (public domain or open licences)")
    assert page.value("Duration (months)") == "6"
    assert page.controls[page.control_id("Duration (months)")]["max"] == "60"
    assert 'value="Publish"' in response.data.decode()
    assert 'value="Save as draft"' in response.data.decode()


def test_publishing_stores_every_field_and_matches_at_once(
    client: FlaskClient,
    session: Session,
    academic: Any,
    make_offer: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    offer = make_offer()
    excluded = make_offer(
        organisation_id=make_organisation(name="Acme AI", kind=OrganisationKind.company).id
    )
    response = client.post("/proposals/new", data={**FULL, "publish": "Publish"})
    assert response.status_code == 302
    proposal = session.exec(select(Proposal)).one()
    assert response.headers["Location"] == f"/proposals/{proposal.id}"
    assert proposal.author_id == academic.id
    assert proposal.status == ProposalStatus.open
    assert proposal.research_areas == ["reinforcement learning", "energy systems"]
    assert (proposal.gpu_hours_needed, proposal.gpu_memory_min_gb, proposal.gpu_type) == (
        2000,
        40,
        "H100",
    )
    assert proposal.duration_months == 9 and proposal.earliest_start == date(2026, 9, 1)
    assert proposal.data_need == FULL["data_need"]
    assert proposal.data_domains == ["energy", "time series"]
    assert proposal.collaboration_kinds == ["compute", "co_authorship"]
    assert proposal.requires_open_publication and not proposal.requires_open_source
    assert proposal.ip_stance.value == "joint"
    assert proposal.lab_resource_level.value == "under_resourced"
    assert proposal.excluded_companies == ["Acme AI", "acme.example.com"]
    matched = {m.offer_id for m in session.exec(select(Match)).all()}
    assert matched == {offer.id}, "refreshed at once, and never with an excluded company"
    assert excluded.id not in matched


def test_a_draft_is_shown_only_to_its_author(
    client: FlaskClient,
    session: Session,
    academic: Any,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    make_offer()
    response = client.post("/proposals/new", data={**FULL, "save_draft": "Save as draft"})
    assert response.status_code == 302
    proposal = session.exec(select(Proposal)).one()
    assert proposal.status == ProposalStatus.draft
    assert session.exec(select(Match)).all() == [], "drafts are not matched"
    own = client.get(f"/proposals/{proposal.id}")
    assert own.status_code == 200
    assert "Draft — only you can see this" in text_of(own.data)
    assert "acme.example.com" in text_of(own.data)
    assert proposal.title not in text_of(client.get("/proposals/").data)

    auth.logout()
    assert client.get(f"/proposals/{proposal.id}").status_code == 404
    make_user(email="other@example.org")
    auth.login("other@example.org")
    other = client.get(f"/proposals/{proposal.id}")
    assert other.status_code == 404 and proposal.title not in other.get_data(as_text=True)


def test_invalid_input_is_shown_at_the_field_and_nothing_is_written(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    bad = {
        **FULL,
        "title": "RL",
        "duration_months": "99",
        "gpu_hours_needed": "lots",
        "gpu_memory_min_gb": "-5",
        "collaboration_kinds": ["co_authorship", "bribery"],
        "publish": "Publish",
    }
    response = client.post("/proposals/new", data=bad)
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Title") == "Please write at least 5 characters."
    assert page.error("Duration (months)") == "Please enter a number of at most 60."
    assert page.error("GPU hours needed") == "Please enter a whole number of GPU hours, e.g. 2000."
    assert page.error("Collaboration wanted") == (
        "Please tick only the kinds of collaboration listed."
    )
    assert page.value("Title") == "RL"
    assert page.value("Duration (months)") == "99"
    assert page.value("GPU hours needed") == "lots"
    assert page.value("Never match me with") == FULL["excluded_companies"]
    assert page.checked("Co-authorship with company researchers")
    assert page.checked("Joint: the university and the company may share ownership")
    assert session.exec(select(Proposal)).all() == []

    # Model limits are checked once the form's types are right, still at the field.
    response = client.post(
        "/proposals/new", data={**FULL, "gpu_memory_min_gb": "-5", "publish": "Publish"}
    )
    assert response.status_code == 422
    assert (
        FormPage(response.data).error("Minimum GPU memory (GB)")
        == "Please enter a number of at least 0."
    )
    assert session.exec(select(Proposal)).all() == []


def test_the_author_edits_and_the_form_shows_current_values(
    client: FlaskClient,
    session: Session,
    academic: Any,
    make_proposal: Callable[..., Any],
) -> None:
    proposal = make_proposal(
        author_id=academic.id,
        research_areas=["robotics", "tactile sensing"],
        excluded_companies=["acme.example.com"],
    )
    page = FormPage(client.get(f"/proposals/{proposal.id}/edit").data)
    assert page.value("Title") == proposal.title
    assert page.value("Research areas") == "robotics, tactile sensing"
    assert page.value("Never match me with") == "acme.example.com"

    response = client.post(
        f"/proposals/{proposal.id}/edit",
        data={**FULL, "title": "Tactile policies", "abstract": "x" * 10, "save": "Save changes"},
    )
    assert response.status_code == 422
    errors = FormPage(response.data)
    assert errors.error("Abstract") == "Please write at least 20 characters."
    assert errors.value("Title") == "Tactile policies"
    session.expire_all()
    assert (
        session.get(Proposal, proposal.id).title
        == "Offline reinforcement learning for grid batteries"
    )

    response = client.post(
        f"/proposals/{proposal.id}/edit",
        data={**FULL, "title": "Tactile foundation policies", "save": "Save changes"},
    )
    assert response.status_code == 302
    session.expire_all()
    edited = session.get(Proposal, proposal.id)
    assert edited.title == "Tactile foundation policies"
    assert edited.research_areas == ["reinforcement learning", "energy systems"]
    assert edited.status == ProposalStatus.open, "editing does not change the status"


def test_open_and_close_move_the_proposal_in_and_out_of_matching(
    client: FlaskClient,
    session: Session,
    academic: Any,
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    offer = make_offer()
    proposal = make_proposal(author_id=academic.id, status=ProposalStatus.draft)
    assert client.post(f"/proposals/{proposal.id}/open").status_code == 302
    session.expire_all()
    assert session.get(Proposal, proposal.id).status == ProposalStatus.open
    assert [m.offer_id for m in session.exec(select(Match)).all()] == [offer.id]
    assert proposal.title in text_of(client.get("/proposals/").data)

    response = client.post(f"/proposals/{proposal.id}/close")
    assert response.status_code == 302 and response.headers["Location"] == "/proposals/mine"
    session.expire_all()
    assert session.get(Proposal, proposal.id).status == ProposalStatus.closed
    assert session.exec(select(Match)).all() == [], "untouched suggestions go with it"

    again = client.post(f"/proposals/{proposal.id}/close", follow_redirects=True)
    assert "already closed" in text_of(again.data)


def test_no_one_else_can_see_edit_open_or_close_a_proposal(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    owner = make_user(email="owner@example.org")
    draft = make_proposal(author_id=owner.id, status=ProposalStatus.draft, title="Secret draft")
    public = make_proposal(
        author_id=owner.id, title="Public proposal", excluded_companies=["rival.example.com"]
    )
    company = make_organisation(kind=OrganisationKind.company)
    make_user(email="other@example.org")
    make_user(email="member@example.com", role=Role.company, organisation_id=company.id)
    edit = {**FULL, "title": "Hijacked", "save": "Save changes"}

    def attempts() -> list[int]:
        codes = []
        for proposal in (draft, public):
            codes += [
                client.get(f"/proposals/{proposal.id}/edit").status_code,
                client.post(f"/proposals/{proposal.id}/edit", data=edit).status_code,
                client.post(f"/proposals/{proposal.id}/open").status_code,
                client.post(f"/proposals/{proposal.id}/close").status_code,
            ]
        return codes

    auth.login("other@example.org")
    assert set(attempts()) == {404}
    assert "rival.example.com" not in client.get(f"/proposals/{public.id}").get_data(as_text=True)
    assert client.get("/proposals/new").status_code == 200
    auth.logout()
    auth.login("member@example.com")
    assert set(attempts()) == {403}
    assert client.get("/proposals/new").status_code == 403
    assert client.post("/proposals/new", data={**FULL, "publish": "Publish"}).status_code == 403
    auth.logout()
    for code in attempts():
        assert code == 302
    response = client.post("/proposals/new", data={**FULL, "publish": "Publish"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    session.expire_all()
    assert session.get(Proposal, draft.id).title == "Secret draft"
    assert session.get(Proposal, draft.id).status == ProposalStatus.draft
    assert session.get(Proposal, public.id).title == "Public proposal"
    assert session.get(Proposal, public.id).status == ProposalStatus.open
    assert len(session.exec(select(Proposal)).all()) == 2


# Text that shows nothing: zero-width space, word joiner, byte-order mark, zero-width
# joiners and spaces, each at least as long as the title's 5-character minimum.
INVISIBLE_TITLES = [
    "\u200b" * 5,
    "\u2060" * 5,
    "\ufeff" * 5,
    "\u200b \u2060 \ufeff",
    "\u200b\u00a0\u200d\u3000\u200c\ufeff",
]


@pytest.mark.parametrize("title", INVISIBLE_TITLES)
def test_a_title_of_invisible_characters_is_as_empty_as_no_title(
    client: FlaskClient,
    session: Session,
    academic: Any,
    make_proposal: Callable[..., Any],
    title: str,
) -> None:
    empty = client.post("/proposals/new", data={**FULL, "title": "", "publish": "Publish"})
    expected = FormPage(empty.data).error("Title")
    assert expected == "Please write at least 5 characters."

    response = client.post("/proposals/new", data={**FULL, "title": title, "publish": "Publish"})
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Title") == expected
    assert page.value("Title") == title, "what was typed stays in the form"
    invisible_abstract = {**FULL, "abstract": "\u2060\u200b" * 15, "publish": "Publish"}
    response = client.post("/proposals/new", data=invisible_abstract)
    assert FormPage(response.data).error("Abstract") == "Please write at least 20 characters."
    assert session.exec(select(Proposal)).all() == []

    # Editing cannot blank a title that way either.
    proposal = make_proposal(author_id=academic.id)
    response = client.post(
        f"/proposals/{proposal.id}/edit", data={**FULL, "title": title, "save": "Save changes"}
    )
    assert response.status_code == 422
    assert FormPage(response.data).error("Title") == expected
    session.expire_all()
    assert session.get(Proposal, proposal.id).title == proposal.title


def test_invisible_characters_around_text_are_dropped_and_inside_kept(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    data = {
        **FULL,
        "title": "\u200b\u200bGrid\u200dbatteries\ufeff",
        "research_areas": "\u200b, energy\u2060, \u2060",
        "excluded_companies": "\u200b\nAcme AI",
        "publish": "Publish",
    }
    assert client.post("/proposals/new", data=data).status_code == 302
    proposal = session.exec(select(Proposal)).one()
    assert proposal.title == "Grid\u200dbatteries"
    assert proposal.research_areas == ["energy"]
    assert proposal.excluded_companies == ["Acme AI"]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0001-01-01", "Please enter a date on or after 1 January 2000."),
        ("1999-12-31", "Please enter a date on or after 1 January 2000."),
        ("2101-01-01", "Please enter a date on or before 31 December 2100."),
        ("9999-12-31", "Please enter a date on or before 31 December 2100."),
    ],
)
def test_an_absurd_start_date_is_refused_at_the_field(
    client: FlaskClient,
    session: Session,
    academic: Any,
    make_proposal: Callable[..., Any],
    typed: str,
    message: str,
) -> None:
    response = client.post(
        "/proposals/new", data={**FULL, "earliest_start": typed, "publish": "Publish"}
    )
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Earliest start") == message
    assert page.value("Earliest start") == typed
    assert session.exec(select(Proposal)).all() == []

    proposal = make_proposal(author_id=academic.id)
    response = client.post(
        f"/proposals/{proposal.id}/edit",
        data={**FULL, "earliest_start": typed, "save": "Save changes"},
    )
    assert response.status_code == 422
    assert FormPage(response.data).error("Earliest start") == message
    session.expire_all()
    assert session.get(Proposal, proposal.id).earliest_start is None
    page = FormPage(client.get("/proposals/new").data)
    picker = page.controls[page.control_id("Earliest start")]
    assert (picker["min"], picker["max"]) == ("2000-01-01", "2100-12-31"), "the picker's range"


def test_excluded_companies_are_bounded_in_length_and_number(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    long_entry = "A" * 20_000  # the review stored one of 1 MB
    response = client.post(
        "/proposals/new",
        data={**FULL, "excluded_companies": f"Acme AI\n{long_entry}", "publish": "Publish"},
    )
    assert response.status_code == 422
    page = FormPage(response.data)
    assert page.error("Never match me with") == (
        "Entry 2 (“AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA…”): "
        "Please keep this to at most 200 characters."
    )
    assert page.value("Never match me with") == f"Acme AI\n{long_entry}"

    many = "\n".join(f"company{number}.example.com" for number in range(51))
    response = client.post(
        "/proposals/new", data={**FULL, "excluded_companies": many, "publish": "Publish"}
    )
    assert response.status_code == 422
    assert FormPage(response.data).error("Never match me with") == (
        "Please list at most 50 entries."
    )
    assert session.exec(select(Proposal)).all() == []

    fifty = "\n".join(["B" * 200, *(f"company{n}.example.com" for n in range(49))])
    response = client.post(
        "/proposals/new", data={**FULL, "excluded_companies": fifty, "publish": "Publish"}
    )
    assert response.status_code == 302
    assert len(session.exec(select(Proposal)).one().excluded_companies) == 50
