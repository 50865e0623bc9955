"""A company member creates, edits, opens and closes offers and keeps an exclusion list; nobody
outside the organisation can read a draft or change anything."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import recommendations
from matching import Encoder
from models import Match, Offer, OfferKind, OfferStatus, OrganisationKind, Role
from tests.app.pages import FormPage, text_of
from tests.conftest import AuthActions

VALID = {
    "kind": "compute",
    "title": "A100 hours for climate research",
    "description": "Up to 2,000 A100 hours per project for open climate modelling work.",
    "gpu_type": "A100",
    "gpu_memory_gb": "80",
    "gpu_hours_budget": "10000",
    "max_hours_per_project": "2000",
    "max_projects": "5",
    "dataset_description": "",
    "data_domains": "climate, weather, climate",
    "access_mode": "remote",
    "publication_terms": "after_review",
    "ip_stance": "open",
    "code_release_allowed": "y",
    "deadline": "",
    "available_until": "",
    "excluded_institutions": "",
}


@pytest.fixture
def company(make_organisation: Callable[..., Any], make_user: Callable[..., Any]) -> dict[str, Any]:
    """An unverified company with two members, and a member of another company."""
    organisation = make_organisation(
        name="Acme Compute", kind=OrganisationKind.company, verified=False
    )
    other = make_organisation(name="Rival Labs", kind=OrganisationKind.company)
    return {
        "organisation": organisation,
        "member": make_user(role=Role.company, organisation_id=organisation.id),
        "colleague": make_user(role=Role.company, organisation_id=organisation.id),
        "outsider": make_user(role=Role.company, organisation_id=other.id),
        "academic": make_user(role=Role.academic),
    }


def offers_in(session: Session) -> list[Offer]:
    session.expire_all()
    return list(session.exec(select(Offer).order_by(Offer.id)))


def test_member_creates_a_draft_others_cannot_see_then_opens_and_closes_it(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    company: dict[str, Any],
    make_proposal: Callable[..., Any],
) -> None:
    proposal = make_proposal(
        title="Downscaling climate models with diffusion", gpu_hours_needed=500
    )
    auth.login(company["member"].email)
    page = client.get("/offers/new")
    assert page.status_code == 200
    form = FormPage(page.data)
    assert form.value("Title") == ""
    assert form.checked("Compute: GPU hours on our hardware")
    assert form.checked("Code written in the project may be released as open source")
    assert "e.g. 20000" in text_of(page.data)
    assert "shown marked “unverified” until an administrator verifies" in text_of(page.data)

    both = {**VALID, "kind": "compute+data", "dataset_description": "Forty years of reanalysis"}
    response = client.post("/offers/new", data={**both, "save": "Save as draft"})
    assert response.status_code == 302
    [offer] = offers_in(session)
    assert response.headers["Location"] == f"/offers/{offer.id}"
    assert offer.status == OfferStatus.draft
    assert (offer.organisation_id, offer.created_by_id) == (
        company["organisation"].id,
        company["member"].id,
    )
    assert (offer.gpu_hours_budget, offer.max_hours_per_project, offer.max_projects) == (
        10_000,
        2_000,
        5,
    )
    assert offer.data_domains == ["climate", "weather"]
    assert offer.publication_terms.value == "after_review" and offer.ip_stance.value == "open"

    draft_page = text_of(client.get(f"/offers/{offer.id}").data)
    assert "Draft: only members of Acme Compute can see this offer" in draft_page
    auth.logout()
    assert client.get(f"/offers/{offer.id}").status_code == 404
    for outsider in (company["outsider"], company["academic"]):
        auth.login(outsider.email)
        assert client.get(f"/offers/{offer.id}").status_code == 404
        assert client.post(f"/offers/{offer.id}/open").status_code == 404
        auth.logout()
    assert offers_in(session)[0].status == OfferStatus.draft

    # A colleague (not the creator) opens it: it is matched at once.
    auth.login(company["colleague"].email)
    response = client.post(f"/offers/{offer.id}/open", data={"next": "/offers/mine"})
    assert response.status_code == 302 and response.headers["Location"] == "/offers/mine"
    assert offers_in(session)[0].status == OfferStatus.open
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    assert proposal.title in text_of(client.get(f"/offers/{offer.id}").data)

    response = client.post(f"/offers/{offer.id}/close")
    assert response.status_code == 302 and response.headers["Location"] == f"/offers/{offer.id}"
    assert offers_in(session)[0].status == OfferStatus.closed
    assert session.exec(select(Match)).all() == []
    # Closed again (a stale tab): said where the button was, nothing changes.
    response = client.post(f"/offers/{offer.id}/close", follow_redirects=True)
    assert "This offer is already closed." in text_of(response.data)
    assert offers_in(session)[0].status == OfferStatus.closed


def test_invalid_offer_is_refused_at_each_field_keeping_what_was_typed(
    client: FlaskClient, auth: AuthActions, session: Session, company: dict[str, Any]
) -> None:
    auth.login(company["member"].email)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    bad = {
        **VALID,
        "kind": "compute+data",
        "title": "GPUs",
        "gpu_memory_gb": "5000",
        "gpu_hours_budget": "1000",
        "max_hours_per_project": "4000",
        "dataset_description": "   ",
        "deadline": yesterday,
        "excluded_institutions": "Northbridge University\nx\nsomeone@uni.example.edu",
        "publish": "Publish offer",
    }
    response = client.post("/offers/new", data=bad)
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "at least 5 characters" in form.error("Title")
    assert "at most 4,096" in form.error("GPU memory (GB per GPU)")
    assert "cannot exceed the total budget (1,000 GPU hours)" in form.error(
        "Most GPU hours for one project"
    )
    assert "needs a description of the dataset" in form.error("The dataset")
    assert "cannot be in the past" in form.error("Deadline for projects")
    exclusions = form.error("Institutions and email domains never to be matched")
    assert "Line 2" in exclusions and "Line 3" in exclusions and "(uni.example.edu)" in exclusions
    assert form.value("Title") == "GPUs"
    assert form.value("Most GPU hours for one project") == "4000"
    assert form.value("Deadline for projects") == yesterday
    assert form.checked("Compute and data together")
    assert form.value("Institutions and email domains never to be matched").startswith(
        "Northbridge University\nx\n"
    )

    no_budget = {**VALID, "gpu_hours_budget": "", "max_hours_per_project": ""}
    response = client.post("/offers/new", data=no_budget)
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "needs a GPU-hour budget above 0" in form.error("GPU-hour budget (total)")
    assert form.value("Title") == VALID["title"]

    response = client.post("/offers/new", data={**VALID, "gpu_memory_gb": "lots"})
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "Enter the memory of one GPU as a whole number of GB" in form.error(
        "GPU memory (GB per GPU)"
    )
    assert form.value("GPU memory (GB per GPU)") == "lots"
    assert offers_in(session) == []


def test_the_form_leaves_checking_to_the_server_and_shows_every_problem_at_once(
    client: FlaskClient, auth: AuthActions, session: Session, company: dict[str, Any]
) -> None:
    auth.login(company["member"].email)
    page = client.get("/offers/new").data.decode()
    form_tag = re.search(r"<form[^>]*offer-form[^>]*>", page)
    assert form_tag and "novalidate" in form_tag.group(0)  # no browser bubbles
    number = FormPage(page.encode()).control("GPU-hour budget (total)")
    assert (number["type"], number["inputmode"]) == ("text", "numeric")  # keeps what is typed

    # A value that does not parse, a value the model refuses and a missing number: all three
    # at their fields in the first answer, and the unreadable budget is not read as 0 (no
    # "per-project limit exceeds the budget" at the next field).
    bad = {
        **VALID,
        "title": "GPUs",
        "gpu_hours_budget": "lots",
        "max_hours_per_project": "4000",
        "max_projects": "  ",
        "publish": "Publish offer",
    }
    response = client.post("/offers/new", data=bad)
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "Please correct the 3 fields marked below" in text_of(response.data)
    assert "at least 5 characters" in form.error("Title")
    assert "Enter the budget as a whole number of GPU hours" in form.error(
        "GPU-hour budget (total)"
    )
    assert "how many projects you can take" in form.error("Most projects")
    assert form.error("Most GPU hours for one project") == ""
    assert form.value("GPU-hour budget (total)") == "lots"
    assert form.value("Title") == "GPUs"
    assert offers_in(session) == []

    # Numbers as Tandem prints them, with spaces around them, are read as numbers.
    grouped = {**VALID, "gpu_hours_budget": "20,000", "max_hours_per_project": " 5000 "}
    response = client.post("/offers/new", data={**grouped, "publish": "Publish offer"})
    assert response.status_code == 302
    [offer] = offers_in(session)
    assert (offer.gpu_hours_budget, offer.max_hours_per_project) == (20_000, 5_000)
    assert offer.status == OfferStatus.open


def test_a_section_that_does_not_apply_to_the_kind_is_ignored(
    client: FlaskClient, auth: AuthActions, session: Session, company: dict[str, Any]
) -> None:
    """Without JavaScript the page shows every section; what a section that does not apply to
    the kind holds can neither block the offer nor end up in it."""
    auth.login(company["member"].email)
    page = client.get("/offers/new").data.decode()
    assert re.search(r'id="compute-section"[^>]*data-offer-kinds="compute compute\+data"', page)
    assert re.search(r'id="data-section"[^>]*data-offer-kinds="data compute\+data"', page)

    data_only = {
        **VALID,
        "kind": "data",
        "title": "Chest X-ray archive for research",
        "gpu_type": "H100",
        "gpu_memory_gb": "lots",
        "gpu_hours_budget": "100",
        "max_hours_per_project": "4000",
        "dataset_description": "Two million de-identified chest X-rays with reports.",
        "data_domains": "medical imaging",
    }
    response = client.post("/offers/new", data={**data_only, "publish": "Publish offer"})
    assert response.status_code == 302
    compute_only = {**VALID, "dataset_description": "x" * 20_000, "data_domains": "weather"}
    response = client.post("/offers/new", data={**compute_only, "save": "Save as draft"})
    assert response.status_code == 302

    data_offer, compute_offer = offers_in(session)
    assert data_offer.kind == OfferKind.data
    assert (data_offer.gpu_type, data_offer.gpu_memory_gb) == (None, None)
    assert (data_offer.gpu_hours_budget, data_offer.max_hours_per_project) == (0, 0)
    assert data_offer.data_domains == ["medical imaging"]
    assert compute_offer.kind == OfferKind.compute
    assert (compute_offer.dataset_description, compute_offer.data_domains) == ("", [])
    assert compute_offer.gpu_hours_budget == 10_000

    # The same section counts again as soon as the kind includes it.
    both = {**data_only, "kind": "compute+data"}
    response = client.post("/offers/new", data=both)
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "whole number of GB" in form.error("GPU memory (GB per GPU)")
    assert "cannot exceed the total budget" in form.error("Most GPU hours for one project")


def test_colleague_edits_and_outsiders_cannot(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    company: dict[str, Any],
    make_offer: Callable[..., Any],
) -> None:
    offer = make_offer(
        organisation_id=company["organisation"].id,
        created_by_id=company["member"].id,
        status=OfferStatus.draft,
        deadline=date.today() - timedelta(days=3),
        data_domains=["climate"],
    )
    before = offers_in(session)[0].model_dump()

    auth.logout()
    for path in (f"/offers/{offer.id}/edit", "/offers/new"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    for action in ("edit", "open", "close"):
        response = client.post(f"/offers/{offer.id}/{action}", data={**VALID, "title": "Taken"})
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    for outsider in (company["outsider"], company["academic"]):
        auth.login(outsider.email)
        assert client.get(f"/offers/{offer.id}/edit").status_code == 404
        for action in ("edit", "open", "close"):
            response = client.post(f"/offers/{offer.id}/{action}", data={**VALID, "title": "Taken"})
            assert response.status_code == 404
        auth.logout()
    assert offers_in(session)[0].model_dump() == before

    auth.login(company["colleague"].email)
    form = FormPage(client.get(f"/offers/{offer.id}/edit").data)
    assert form.value("Title") == offer.title
    assert form.value("Data domains") == "climate"
    assert form.value("Deadline for projects") == offer.deadline.isoformat()

    # The database's CHECK (per project <= budget) is a message at the field, never a 500.
    response = client.post(
        f"/offers/{offer.id}/edit",
        data={**VALID, "gpu_hours_budget": "100", "max_hours_per_project": "200"},
    )
    assert response.status_code == 422
    assert "cannot exceed" in FormPage(response.data).error("Most GPU hours for one project")
    assert offers_in(session)[0].model_dump() == before

    # Opening is refused while the deadline is past; an edit that keeps the old deadline is fine.
    response = client.post(f"/offers/{offer.id}/open", follow_redirects=True)
    assert "has passed" in text_of(response.data)
    assert offers_in(session)[0].status == OfferStatus.draft
    edited = {**VALID, "title": "Renamed offer", "deadline": offer.deadline.isoformat()}
    response = client.post(f"/offers/{offer.id}/edit", data=edited)
    assert response.status_code == 302
    [saved] = offers_in(session)
    assert saved.title == "Renamed offer" and saved.status == OfferStatus.draft
    assert saved.created_by_id == company["member"].id


def test_exclusion_list_applies_to_every_offer_and_stops_matching(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    encoder: Encoder,
    company: dict[str, Any],
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    ours = company["organisation"].id
    first = make_offer(organisation_id=ours, excluded_institutions=["Old Institute"])
    second = make_offer(organisation_id=ours, kind=OfferKind.compute, status=OfferStatus.draft)
    theirs = make_offer(organisation_id=company["outsider"].organisation_id)
    university = make_organisation(name="Northbridge University", email_domains=["nb.example.edu"])
    researcher = make_user(email="ada@cs.uni.example.edu", organisation_id=university.id)
    proposal = make_proposal(author_id=researcher.id)
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    assert session.exec(select(Match).where(Match.offer_id == first.id)).all()

    auth.login(company["academic"].email)
    assert client.get("/offers/exclusions").status_code == 403
    assert (
        client.post(
            "/offers/exclusions", data={"excluded_institutions": "x.example.org"}
        ).status_code
        == 403
    )
    auth.logout()
    response = client.post("/offers/exclusions", data={"excluded_institutions": "x.example.org"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    auth.login(company["member"].email)
    page = client.get("/offers/exclusions")
    assert page.status_code == 200
    label = "Institutions and email domains never to be matched"
    assert FormPage(page.data).value(label) == "Old Institute"
    assert "never shown to you, and your offers are never shown to them" in text_of(page.data)

    bad = "uni.example.edu\nhttps://www.rival.example.com/\nA"
    response = client.post("/offers/exclusions", data={"excluded_institutions": bad})
    assert response.status_code == 422
    form = FormPage(response.data)
    assert "Line 2" in form.error(label) and "Line 3" in form.error(label)
    assert form.value(label) == bad
    assert [o.excluded_institutions for o in offers_in(session)] == [["Old Institute"], [], []]

    response = client.post(
        "/offers/exclusions", data={"excluded_institutions": "@Uni.Example.edu\nRival Labs\n"}
    )
    assert response.status_code == 302
    lists = {o.id: o.excluded_institutions for o in offers_in(session)}
    assert lists == {
        first.id: ["uni.example.edu", "Rival Labs"],
        second.id: ["uni.example.edu", "Rival Labs"],
        theirs.id: [],
    }
    # The researcher's address is at a subdomain of an excluded domain: no longer matched
    # with our offers, still with the other company's.
    session.expire_all()
    matched = {
        m.offer_id for m in session.exec(select(Match).where(Match.proposal_id == proposal.id))
    }
    assert matched == {theirs.id}
    new_form = FormPage(client.get("/offers/new").data)
    assert new_form.value(label) == "uni.example.edu\nRival Labs"


@pytest.mark.parametrize(
    "typed", ["\u200b" * 5, "\u2060" * 5, "\ufeff" * 5, "\u200b \u2060 \ufeff", "\u00ad" * 6]
)
def test_a_title_of_invisible_characters_is_as_empty_as_no_title(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    company: dict[str, Any],
    make_offer: Callable[..., Any],
    typed: str,
) -> None:
    auth.login(company["member"].email)
    empty = FormPage(client.post("/offers/new", data={**VALID, "title": ""}).data)
    assert "at least 5 characters" in empty.error("Title")

    response = client.post("/offers/new", data={**VALID, "title": typed})
    assert response.status_code == 422
    form = FormPage(response.data)
    assert form.error("Title") == empty.error("Title")
    assert form.value("Title") == typed, "what was typed stays in the form"
    response = client.post("/offers/new", data={**VALID, "description": typed * 5})
    assert "at least 20 characters" in FormPage(response.data).error("Description")
    data_offer = {**VALID, "kind": "data", "dataset_description": typed}
    response = client.post("/offers/new", data=data_offer)
    assert "needs a description of the dataset" in FormPage(response.data).error("The dataset")
    assert offers_in(session) == []

    offer = make_offer(organisation_id=company["organisation"].id)
    response = client.post(f"/offers/{offer.id}/edit", data={**VALID, "title": typed})
    assert response.status_code == 422
    assert FormPage(response.data).error("Title") == empty.error("Title")
    assert offers_in(session)[0].title == offer.title

    # An exclusion line of invisible characters is a blank line, not an institution.
    lines = f"{typed}\nNorthbridge University"
    response = client.post("/offers/new", data={**VALID, "excluded_institutions": lines})
    assert response.status_code == 302
    assert offers_in(session)[-1].excluded_institutions == ["Northbridge University"]


def test_absurd_or_past_dates_are_refused_at_their_fields(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    company: dict[str, Any],
    make_offer: Callable[..., Any],
) -> None:
    auth.login(company["member"].email)
    response = client.post(
        "/offers/new",
        data={**VALID, "deadline": "9999-12-31", "available_until": "0001-01-01"},
    )
    assert response.status_code == 422
    form = FormPage(response.data)
    assert form.error("Deadline for projects") == (
        "Please enter a date on or before 31 December 2100."
    )
    assert form.error("Available until") == "Please enter a date on or after 1 January 2000."
    assert form.value("Deadline for projects") == "9999-12-31"
    assert form.value("Available until") == "0001-01-01"

    yesterday = date.today() - timedelta(days=1)
    response = client.post("/offers/new", data={**VALID, "available_until": yesterday.isoformat()})
    assert response.status_code == 422
    assert "cannot stop being available in the past" in FormPage(response.data).error(
        "Available until"
    )
    assert offers_in(session) == []

    # An offer whose dates have passed since they were set can still be edited as it is; a
    # date changed to an absurd one cannot.
    offer = make_offer(
        organisation_id=company["organisation"].id,
        deadline=date.today() - timedelta(days=10),
        available_until=yesterday,
    )
    kept = {
        **VALID,
        "title": "Renamed offer",
        "deadline": offer.deadline.isoformat(),
        "available_until": yesterday.isoformat(),
    }
    assert client.post(f"/offers/{offer.id}/edit", data=kept).status_code == 302
    response = client.post(
        f"/offers/{offer.id}/edit", data={**kept, "available_until": "2200-01-01"}
    )
    assert response.status_code == 422
    assert FormPage(response.data).error("Available until") == (
        "Please enter a date on or before 31 December 2100."
    )
    [saved] = offers_in(session)
    assert (saved.title, saved.available_until) == ("Renamed offer", yesterday)
    form = FormPage(client.get("/offers/new").data)
    for label in ("Deadline for projects", "Available until"):
        picker = form.control(label)
        assert (picker["min"], picker["max"]) == ("2000-01-01", "2100-12-31"), "picker's range"
