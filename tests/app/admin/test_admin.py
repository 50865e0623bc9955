"""The administrator's pages: organisations, users, moderation, and who may use them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import (
    AllocationRound,
    Match,
    User,
)
from tests.conftest import TEST_PASSWORD
from tests.scenarios import ScenarioFactory


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


class _Fields(HTMLParser):
    """Inputs by the text of their <label for=...>, and the error shown with each field."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str | None]] = {}
        self._label_for: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label" and values.get("for"):
            self._label_for = values["for"]
            self.labels[self._label_for] = ""  # type: ignore[index]
        elif tag in ("input", "textarea", "select") and values.get("id"):
            self.inputs[values["id"]] = values  # type: ignore[index]

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_for = None

    def handle_data(self, data: str) -> None:
        if self._label_for:
            self.labels[self._label_for] += data

    def by_label(self, text: str) -> dict[str, str | None]:
        for field_id, label in self.labels.items():
            if label.strip() == text:
                return self.inputs[field_id]
        raise AssertionError(f"no field labelled {text!r}")


def fields(html: bytes) -> _Fields:
    parser = _Fields()
    parser.feed(html.decode())
    return parser


@pytest.fixture
def world(make_admin: Callable[..., Any], make_scenario: ScenarioFactory) -> dict[str, Any]:
    """An admin, an academic with an open proposal, an unverified company with a member and
    an open offer, their recommendations, and one draft allocation round."""
    admin = make_admin(name="Ada Admin", email="ada.admin@example.org")
    built = make_scenario(
        university={"name": "University of Examples", "email_domains": ["uni.example.org"]},
        company={
            "name": "Nimbus Labs",
            "email_domains": ["nimbus.example.com"],
            "verified": False,
        },
        academics=[{"name": "Alice Academic", "email": "alice@uni.example.org"}],
        members=[{"name": "Carl Company", "email": "carl@nimbus.example.com"}],
        proposals=[
            {
                "title": "Offline reinforcement learning for grid batteries",
                "research_areas": ["reinforcement learning", "energy"],
            }
        ],
        offers=[
            {
                "title": "H100 hours for energy and reinforcement learning research",
                "description": "GPU hours for reinforcement learning on energy systems and "
                "batteries.",
            }
        ],
        draft_round=True,
        round_created_by=admin,
    )
    return {
        "admin": admin,
        "university": built.university,
        "academic": built.academics[0],
        "company": built.company,
        "member": built.members[0],
        "proposal": built.proposals[0],
        "offer": built.offers[0],
        "round": built.round,
    }


def _routes(world: dict[str, Any]) -> list[tuple[str, str]]:
    ids = {
        "org": world["company"].id,
        "user": world["academic"].id,
        "proposal": world["proposal"].id,
        "offer": world["offer"].id,
        "round": world["round"].id,
    }
    return [
        ("GET", "/admin/"),
        ("GET", "/admin/organisations"),
        ("GET", "/admin/users"),
        ("GET", "/admin/content"),
        ("GET", "/admin/content?kind=offers"),
        ("GET", "/admin/rounds"),
        ("GET", "/admin/rounds/new"),
        ("GET", f"/admin/rounds/{ids['round']}"),
        ("GET", "/admin/metrics"),
        ("GET", "/admin/programme"),
        ("GET", "/admin/programme.csv"),
        ("POST", f"/admin/organisations/{ids['org']}/verify"),
        ("POST", f"/admin/organisations/{ids['org']}/unverify"),
        ("POST", f"/admin/users/{ids['user']}/suspend"),
        ("POST", f"/admin/users/{ids['user']}/reinstate"),
        ("POST", f"/admin/proposals/{ids['proposal']}/hide"),
        ("POST", f"/admin/proposals/{ids['proposal']}/unhide"),
        ("POST", f"/admin/offers/{ids['offer']}/hide"),
        ("POST", f"/admin/offers/{ids['offer']}/unhide"),
        ("POST", "/admin/rounds/new"),
        ("POST", f"/admin/rounds/{ids['round']}/publish"),
        ("POST", f"/admin/rounds/{ids['round']}/delete"),
    ]


def _snapshot(session: Session, world: dict[str, Any], app: Flask) -> dict[str, Any]:
    session.expire_all()
    mail = Path(app.config["TANDEM_MAIL_DIR"])
    return {
        "verified": session.get(type(world["company"]), world["company"].id).verified,
        "active": session.get(User, world["academic"].id).active,
        "proposal_hidden": session.get(type(world["proposal"]), world["proposal"].id).hidden,
        "offer_hidden": session.get(type(world["offer"]), world["offer"].id).hidden,
        "rounds": [(r.id, r.status) for r in session.exec(select(AllocationRound))],
        "matches": sorted(
            (m.proposal_id, m.offer_id, m.status, m.allocation_round_id)
            for m in session.exec(select(Match))
        ),
        "mail": sorted(mail.glob("*.eml")) if mail.exists() else [],
    }


@pytest.mark.parametrize("who", ["anonymous", "academic", "company"])
def test_every_admin_route_is_refused_to_non_admins(
    who: str, app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    if who != "anonymous":
        auth.login(world["academic" if who == "academic" else "member"].email)
    before = _snapshot(session, world, app)
    assert before["matches"], "the fixture should have recommendations"
    for method, path in _routes(world):
        response = client.open(path, method=method, data={"reason": "x", "min_score": "0"})
        if who == "anonymous":
            assert response.status_code == 302, (method, path)
            assert "/login" in response.headers["Location"], (method, path)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
        body = response.get_data(as_text=True)
        assert "Nimbus Labs" not in body and world["academic"].email not in body
    assert _snapshot(session, world, app) == before


def test_overview_shows_unverified_organisations_with_offers(
    client: FlaskClient, auth: Any, world: dict[str, Any]
) -> None:
    auth.login(world["admin"].email)
    response = client.get("/admin/")
    assert response.status_code == 200
    text = _text(response.data)
    attention = text.split("Needs attention", 1)[1].split("Sections", 1)[0]
    assert "Nimbus Labs" in attention and "1 open offer" in attention
    assert "University of Examples" not in attention
    assert "1 draft allocation round" in text
    for section in ("Organisations", "Users", "Content", "Allocation rounds", "Metrics"):
        assert section in text


def test_organisations_are_listed_filtered_and_verified(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    company = world["company"]
    auth.login(world["admin"].email)
    listing = client.get("/admin/organisations")
    assert listing.status_code == 200
    row = re.search(r"<tr>\s*<th scope=\"row\">Nimbus Labs</th>(.*?)</tr>", listing.text, re.S)
    assert row is not None
    cells = [_text(c.encode()).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)]
    assert cells[:5] == ["company", "nimbus.example.com", "1", "1 (1 open)", "Unverified"]
    unverified = _text(client.get("/admin/organisations?unverified=1").data)
    assert "Nimbus Labs" in unverified and "University of Examples" not in unverified

    public = client.get("/offers/").text
    assert re.search(r'class="unverified">\(unverified\)', public)

    response = client.post(f"/admin/organisations/{company.id}/verify", follow_redirects=True)
    assert response.status_code == 200 and "Nimbus Labs is verified." in _text(response.data)
    session.refresh(company)
    assert company.verified
    assert "(unverified)" not in client.get("/offers/").text

    again = client.post(f"/admin/organisations/{company.id}/verify", follow_redirects=True)
    assert "Nimbus Labs is already verified." in _text(again.data)
    client.post(f"/admin/organisations/{company.id}/unverify")
    session.refresh(company)
    assert not company.verified
    assert client.post("/admin/organisations/999999/verify").status_code == 404


def test_users_are_searched_filtered_and_paginated(
    client: FlaskClient, auth: Any, world: dict[str, Any], make_user: Callable[..., Any]
) -> None:
    for number in range(12):
        make_user(name=f"Researcher {number:02d}", email=f"researcher{number:02d}@example.org")
    auth.login(world["admin"].email)
    by_email = _text(client.get("/admin/users?q=CARL@nimbus").data)
    assert "Carl Company" in by_email and "Alice Academic" not in by_email
    by_name = _text(client.get("/admin/users?q=researcher 0").data)
    assert "10 users" in by_name and "Researcher 09" in by_name and "Researcher 10" not in by_name
    companies = _text(client.get("/admin/users?role=company").data)
    assert "1 user" in companies and "Carl Company" in companies and "Researcher" not in companies
    first, second = client.get("/admin/users?page=1"), client.get("/admin/users?page=2")
    names = lambda html: set(re.findall(r'<th scope="row">([^<]+)</th>', html))  # noqa: E731
    assert len(names(first.text)) == 10 and len(names(second.text)) == 5
    assert names(first.text).isdisjoint(names(second.text))
    assert client.get("/admin/users?q=%25&role=bogus&page=x").status_code == 200


def test_suspending_an_academic_hides_their_proposals_and_stops_sign_in(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    academic, proposal, offer = world["academic"], world["proposal"], world["offer"]
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all()
    auth.login(world["admin"].email)
    response = client.post(f"/admin/users/{academic.id}/suspend", follow_redirects=True)
    assert "Alice Academic is suspended." in _text(response.data)
    session.expire_all()
    assert not session.get(User, academic.id).active
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all() == []
    assert proposal.title not in _text(client.get(f"/offers/{offer.id}").data)
    assert client.get(f"/proposals/{proposal.id}").status_code == 404

    auth.logout()
    refused = client.post("/login", data={"email": academic.email, "password": TEST_PASSWORD})
    assert refused.status_code != 302 and "This account is suspended" in _text(refused.data)

    auth.login(world["admin"].email)
    client.post(f"/admin/users/{academic.id}/reinstate")
    session.expire_all()
    assert session.get(User, academic.id).active
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all()


def test_an_admin_cannot_suspend_themselves(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    auth.login(admin.email)
    page = client.get("/admin/users?q=ada")
    assert f"/admin/users/{admin.id}/suspend" not in page.text and "You" in _text(page.data)
    response = client.post(f"/admin/users/{admin.id}/suspend", follow_redirects=True)
    assert "You cannot suspend your own account." in _text(response.data)
    session.expire_all()
    assert session.get(User, admin.id).active
    assert client.get("/admin/").status_code == 200


def test_hiding_a_proposal_logs_the_reason_and_removes_its_matches(
    client: FlaskClient,
    session: Session,
    auth: Any,
    world: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proposal = world["proposal"]
    auth.login(world["admin"].email)
    listing = client.get("/admin/content")
    assert fields(listing.data).by_label("Reason (optional)")["name"] == "reason"
    with caplog.at_level(logging.INFO, logger="app.services.admin"):
        response = client.post(
            f"/admin/proposals/{proposal.id}/hide",
            data={"reason": "Duplicate of proposal 3"},
            follow_redirects=True,
        )
    assert f"Proposal {proposal.id} is hidden. Reason: Duplicate of proposal 3" in _text(
        response.data
    )
    assert any("Duplicate of proposal 3" in r.getMessage() for r in caplog.records)
    session.expire_all()
    assert session.get(type(proposal), proposal.id).hidden
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all() == []
    assert client.get(f"/proposals/{proposal.id}").status_code == 404
    hidden = client.get("/admin/content?hidden=1").text
    assert "badge-hidden" in hidden and proposal.title in hidden and "Unhide" in hidden

    client.post(f"/admin/proposals/{proposal.id}/unhide")
    session.expire_all()
    assert not session.get(type(proposal), proposal.id).hidden
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all()
    assert client.get(f"/proposals/{proposal.id}").status_code == 200


def test_hiding_an_offer_takes_it_out_of_listings_and_matching(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    offer = world["offer"]
    auth.login(world["admin"].email)
    response = client.post(f"/admin/offers/{offer.id}/hide", follow_redirects=True)
    assert f"Offer {offer.id} is hidden." in _text(response.data)
    session.expire_all()
    assert session.get(type(offer), offer.id).hidden
    assert session.exec(select(Match).where(Match.offer_id == offer.id)).all() == []
    assert offer.title not in _text(client.get("/offers/").data)
    again = client.post(f"/admin/offers/{offer.id}/hide", follow_redirects=True)
    assert f"Offer {offer.id} is already hidden." in _text(again.data)
    offers_tab = client.get("/admin/content?kind=offers").text
    assert offer.title in offers_tab and "badge-hidden" in offers_tab
    client.post(f"/admin/offers/{offer.id}/unhide")
    session.expire_all()
    assert not session.get(type(offer), offer.id).hidden
    assert session.exec(select(Match).where(Match.offer_id == offer.id)).all()
    assert client.post("/admin/offers/999999/hide").status_code == 404


def test_a_too_long_reason_is_refused_with_the_text_kept(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    proposal = world["proposal"]
    auth.login(world["admin"].email)
    reason = "Spam " * 101
    response = client.post(f"/admin/proposals/{proposal.id}/hide", data={"reason": reason})
    assert response.status_code == 422
    reason_input = fields(response.data).by_label("Reason (optional)")
    assert reason_input["value"] == reason
    error = re.search(r'id="reason-error">(.*?)</div>', response.text, re.S)
    assert error and "Keep the reason under 500 characters." in error[1]
    session.expire_all()
    assert not session.get(type(proposal), proposal.id).hidden
    assert session.exec(select(Match).where(Match.proposal_id == proposal.id)).all()
