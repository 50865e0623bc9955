"""Allocation rounds in the admin area: compute a draft, review it, publish it (matches linked,
everyone concerned emailed, nobody's contact details revealed) or discard it."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import allocation, round_publishing
from app.services.errors import Conflict
from models import (
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    LabResourceLevel,
    Match,
    MatchStatus,
    OrganisationKind,
    Proposal,
)
from tests.scenarios import ScenarioFactory

BASE_URL = "https://tandem.example.org"


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def _mails(app: Flask) -> list[email.message.EmailMessage]:
    folder = Path(app.config["TANDEM_MAIL_DIR"])
    paths = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [
        email.message_from_bytes(path.read_bytes(), policy=default_policy)  # type: ignore[misc]
        for path in paths
    ]


def _body(message: email.message.EmailMessage, kind: str) -> str:
    return message.get_body(preferencelist=(kind,)).get_content()  # type: ignore[union-attr]


@pytest.fixture
def world(
    app: Flask,
    session: Session,
    make_admin: Callable[..., Any],
    make_scenario: ScenarioFactory,
) -> dict[str, Any]:
    """Two academics whose proposals fit one company's offer, a third proposal no offer can
    take (too many hours), the company's two members, and recommendations for all. The
    second proposal's match is then removed, so publishing has to create it."""
    app.config["TANDEM_BASE_URL"] = BASE_URL + "/"
    admin = make_admin(email="ada.admin@example.org")
    built = make_scenario(
        company={"name": "Nimbus Labs", "email_domains": ["nimbus.example.com"]},
        academics=[
            {"name": "Alice Academic", "email": "alice@uni-a.example.org"},
            {"name": "Bob Boffin", "email": "bob@uni-b.example.org"},
        ],
        members=[
            {"name": "Carl Company", "email": "carl@nimbus.example.com"},
            {"name": "Cora", "email": "cora@nimbus.example.com"},
        ],
        proposals=[
            {
                "title": "Offline reinforcement learning for grid batteries",
                "research_areas": ["reinforcement learning"],
            },
            {
                "author": 1,
                "title": "Reinforcement learning for district heating",
                "abstract": "We learn control policies for district heating networks with "
                "offline RL.",
                "research_areas": ["reinforcement learning"],
                "gpu_hours_needed": 2000,
            },
            {
                "author": 1,
                "title": "Pretraining a climate foundation model",
                "abstract": "We pretrain a large foundation model on decades of reanalysis "
                "climate data.",
                "gpu_hours_needed": 50_000,
            },
        ],
        offers=[
            {
                "title": "H100 hours for reinforcement learning research",
                "description": "GPU hours for reinforcement learning on energy systems and "
                "batteries.",
            }
        ],
    )
    heat = built.proposals[1]
    removed = session.exec(select(Match).where(Match.proposal_id == heat.id)).one()
    session.delete(removed)
    session.commit()
    return {
        "admin": admin,
        "academics": built.academics,
        "members": built.members,
        "company": built.company,
        "offer": built.offers[0],
        "proposals": built.proposals,
    }


def test_the_new_round_form_refuses_bad_options_and_keeps_them(
    client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    auth.login(world["admin"].email)
    form = client.get("/admin/rounds/new")
    assert form.status_code == 200
    html = form.text
    assert "<legend>Equity option</legend>" in html
    assert re.search(r'<label for="min_fit">Minimum fit \(out of 100\)</label>', html)
    assert re.search(r'<input[^>]*id="min_fit"[^>]*value="30"', html)
    assert "e.g. 30" in html
    box = re.search(r'<input[^>]*id="include_unverified"[^>]*>', html)
    assert box and "checked" not in box[0]
    assert "Include offers from unverified organisations" in html

    response = client.post("/admin/rounds/new", data={"equity": "priority", "min_fit": "150"})
    assert response.status_code == 422
    error = re.search(r'id="min_fit-error">(.*?)</div>', response.text, re.S)
    assert error and "The minimum fit must be between 0 and 100." in error[1]
    assert re.search(r'<input[^>]*id="min_fit"[^>]*value="150"', response.text)
    assert re.search(r'<input[^>]*checked[^>]*value="priority"', response.text) or re.search(
        r'<input[^>]*value="priority"[^>]*checked', response.text
    )
    bogus = client.post(
        "/admin/rounds/new",
        data={"equity": "lottery", "min_fit": "20", "include_unverified": "y"},
    )
    assert bogus.status_code == 422
    assert re.search(r'id="equity-error">.*?Not a valid choice', bogus.text, re.S)
    kept = re.search(r'<input[^>]*id="include_unverified"[^>]*>', bogus.text)
    assert kept and "checked" in kept[0]
    assert session.exec(select(AllocationRound)).all() == []


def test_a_round_is_computed_reviewed_and_published_once(
    app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    batteries, heat, huge = world["proposals"]
    offer = world["offer"]
    auth.login(world["admin"].email)
    response = client.post("/admin/rounds/new", data={"equity": "none", "min_fit": "0"})
    assert response.status_code == 303
    stored = session.exec(select(AllocationRound)).one()
    assert response.headers["Location"].endswith(f"/admin/rounds/{stored.id}")
    assert stored.status == AllocationRoundStatus.draft and stored.equity == "none"

    preview = allocation.preview_round(session=session, encoder=app.extensions["tandem.encoder"])
    expected = {
        (p.id, o.id, round(score, 5))
        for solved in preview.passes
        for p, o, score in solved.assigned
    }
    assignments = session.exec(select(AllocationAssignment)).all()
    assert {(a.proposal_id, a.offer_id, round(a.score, 5)) for a in assignments} == expected
    assert {a.proposal_id for a in assignments} == {batteries.id, heat.id}
    assert {a.gpu_hours for a in assignments} == {1000, 2000}
    assert stored.objective == pytest.approx(preview.objective, abs=1e-5)

    review = client.get(f"/admin/rounds/{stored.id}")
    text = _text(review.data)
    average = round((assignments[0].score + assignments[1].score) / 2 * 100)
    assert "2 of 3 proposals got an offer" in text
    assert "3,000 of 20,000 GPU hours allocated" in text
    assert "1 of 1 offers used" in text
    assert f"{average}/100 average fit" in text
    assert "Total score" not in text and f"{stored.objective:.3f}" not in text
    assert "2 of 4 project places · 3,000 of 20,000 GPU hours" in text
    assert batteries.title in text and heat.title in text
    not_assigned = text.split("Not assigned (1)", 1)[1]
    assert "Needs more GPU hours than any offer gives one project (1)" in not_assigned
    assert (
        f"{huge.title} : It needs 50,000 GPU hours, more than any offer gives one project "
        "(the largest limit is 5,000)." in not_assigned
    )
    assert "created on publishing" in text
    assert _mails(app) == []

    published = client.post(f"/admin/rounds/{stored.id}/publish", follow_redirects=True)
    assert "is published: 2 pair(s) allocated, 4 email(s) on their way" in _text(published.data)
    session.expire_all()
    stored = session.get(AllocationRound, stored.id)
    assert stored.status == AllocationRoundStatus.published and stored.published_at is not None
    matches = {
        m.proposal_id: m for m in session.exec(select(Match).where(Match.offer_id == offer.id))
    }
    assert matches[batteries.id].allocation_round_id == stored.id
    assert matches[heat.id].allocation_round_id == stored.id
    heat_assignment = next(a for a in assignments if a.proposal_id == heat.id)
    assert matches[heat.id].score == pytest.approx(heat_assignment.score)
    assert matches[heat.id].status == MatchStatus.suggested

    mails = _mails(app)
    by_recipient = {m["To"].addresses[0].addr_spec: m for m in mails}
    academics, members = world["academics"], world["members"]
    assert sorted(by_recipient) == sorted([a.email for a in academics] + [m.email for m in members])
    alice = _body(by_recipient["alice@uni-a.example.org"], "plain")
    assert batteries.title in alice and offer.title in alice and "Nimbus Labs" in alice
    assert heat.title not in alice
    assert f"{BASE_URL}/offers/{offer.id}" in alice and f"{BASE_URL}/dashboard" in alice
    assert "confirm interest on their dashboard" in alice
    assert "carl@nimbus.example.com" not in alice and "Carl Company" not in alice
    assert "Hello Alice Academic" in _body(by_recipient["alice@uni-a.example.org"], "html")
    for member in members:
        message = by_recipient[member.email]
        for body in (_body(message, "plain"), _body(message, "html")):
            assert batteries.title in body and heat.title in body and offer.title in body
            assert "A researcher in reinforcement learning at a university" in body
            for academic in academics:
                assert academic.name not in body and academic.email not in body
        assert f"{BASE_URL}/proposals/{heat.id}" in _body(message, "plain")

    again = client.post(f"/admin/rounds/{stored.id}/publish", follow_redirects=True)
    assert f"Round {stored.id} is already published." in _text(again.data)
    assert len(_mails(app)) == 4
    refused = client.post(f"/admin/rounds/{stored.id}/delete", follow_redirects=True)
    assert "is published and cannot be discarded" in _text(refused.data)
    assert session.get(AllocationRound, stored.id) is not None
    listing = _text(client.get("/admin/rounds").data)
    assert f"Round {stored.id}" in listing and "published" in listing

    # Both dashboards say the pair came from the round; contact still waits for interest.
    auth.logout()
    auth.login("alice@uni-a.example.org")
    assert f"Allocated in round {stored.id}" in _text(client.get("/proposals/mine").data)
    auth.logout()
    auth.login(members[0].email)
    company_view = _text(client.get("/offers/mine").data)
    assert f"Allocated in round {stored.id}" in company_view
    assert "Alice Academic" not in company_view


def test_a_draft_round_can_be_discarded(
    app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    draft = allocation.create_round(
        session=session, encoder=app.extensions["tandem.encoder"], created_by_id=None
    )
    session.commit()
    round_id = draft.id
    assert session.exec(select(AllocationAssignment)).all()
    auth.login(world["admin"].email)
    response = client.post(f"/admin/rounds/{round_id}/delete", follow_redirects=True)
    assert f"Draft round {round_id} is discarded." in _text(response.data)
    session.expire_all()
    assert session.exec(select(AllocationRound)).all() == []
    assert session.exec(select(AllocationAssignment)).all() == []
    assert client.get(f"/admin/rounds/{round_id}").status_code == 404
    assert client.post(f"/admin/rounds/{round_id}/publish").status_code == 404


def test_an_out_of_date_draft_is_not_published(
    app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    draft = allocation.create_round(
        session=session, encoder=app.extensions["tandem.encoder"], created_by_id=None
    )
    batteries = session.get(Proposal, world["proposals"][0].id)
    batteries.hidden = True
    session.add(batteries)
    session.commit()
    auth.login(world["admin"].email)
    response = client.post(f"/admin/rounds/{draft.id}/publish", follow_redirects=True)
    assert f"proposal {batteries.id} no longer take part in matching" in _text(response.data)
    session.expire_all()
    assert session.get(AllocationRound, draft.id).status == AllocationRoundStatus.draft
    assert session.exec(select(Match).where(Match.allocation_round_id.is_not(None))).all() == []  # type: ignore[union-attr]
    assert _mails(app) == []


def test_publishing_leaves_out_pairs_a_side_dismissed(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    batteries = world["proposals"][0]
    draft = allocation.create_round(
        session=session, encoder=app.extensions["tandem.encoder"], created_by_id=None
    )
    dismissed = session.exec(select(Match).where(Match.proposal_id == batteries.id)).one()
    dismissed.status, dismissed.declined_by = MatchStatus.declined, "academic"
    session.add(dismissed)
    session.flush()
    result = round_publishing.publish_round(session=session, round_id=draft.id)  # type: ignore[arg-type]
    assert (result.created, result.linked, result.skipped) == (1, 0, 1)
    assert dismissed.allocation_round_id is None
    recipients = {notice.to for notice in result.notices}
    assert "alice@uni-a.example.org" not in recipients and "bob@uni-b.example.org" in recipients
    company_notice = next(n for n in result.notices if n.template == "round_published_company")
    assert [item.proposal_id for item in company_notice.context["items"]] == [
        world["proposals"][1].id
    ]
    with pytest.raises(Conflict):
        round_publishing.publish_round(session=session, round_id=draft.id)  # type: ignore[arg-type]


def test_offers_of_unverified_organisations_are_left_out_unless_included(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: Any,
    world: dict[str, Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    """A new round promises only verified organisations' capacity unless the administrator
    ticks the box; the review says which offers were left out and where to verify them."""
    shadow = make_organisation(
        name="Shadowbyte Compute", kind=OrganisationKind.company, verified=False
    )
    unverified_offer = make_offer(
        organisation_id=shadow.id,
        title="A100 hours for reinforcement learning",
        description="GPU hours for reinforcement learning on energy systems and batteries.",
    )
    wary = make_proposal(
        author_id=world["academics"][0].id,
        title="Reinforcement learning for wind farm control",
        research_areas=["reinforcement learning"],
        excluded_companies=["Nimbus Labs"],
    )
    auth.login(world["admin"].email)
    form = _text(client.get("/admin/rounds/new").data)
    assert "1 open offer is from unverified organisations and will be left out" in form

    response = client.post("/admin/rounds/new", data={"equity": "none", "min_fit": "0"})
    assert response.status_code == 303
    left_out = session.exec(select(AllocationRound)).one()
    assert left_out.summary["include_unverified"] is False
    offers = {a.offer_id for a in session.exec(select(AllocationAssignment))}
    assert unverified_offer.id not in offers
    page = client.get(f"/admin/rounds/{left_out.id}").text
    text = _text(page.encode())
    assert (
        "1 offer was left out because its organisation is not verified: Shadowbyte Compute." in text
    )
    assert "A100 hours for reinforcement learning (Shadowbyte Compute)" in text
    assert 'href="/admin/organisations?unverified=1"' in page
    assert "Only offers of unverified organisations fit (1)" in text
    assert (
        "The 1 offer it is eligible for is from unverified organisations, which this round "
        "leaves out." in text
    )
    assert wary.title in text.split("Not assigned", 1)[1]

    client.post(f"/admin/rounds/{left_out.id}/delete")
    response = client.post(
        "/admin/rounds/new",
        data={"equity": "none", "min_fit": "0", "include_unverified": "y"},
    )
    assert response.status_code == 303
    session.expire_all()
    included = session.exec(select(AllocationRound)).one()
    assert included.summary["include_unverified"] is True
    pairs = {(a.proposal_id, a.offer_id) for a in session.exec(select(AllocationAssignment))}
    assert (wary.id, unverified_offer.id) in pairs
    text = _text(client.get(f"/admin/rounds/{included.id}").data)
    assert (
        "This round includes 1 offer from unverified organisations (Shadowbyte Compute), "
        "as you asked." in text
    )
    assert "Shadowbyte Compute (unverified)" in text


def test_the_company_mail_subject_is_one_line_without_a_leading_space(
    app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    """Mail readers showed the long subject's folded second line, starting with a space."""
    company = world["company"]
    company.name = "Nimbus Labs for Reinforcement Learning and Energy Systems Research"
    session.add(company)
    session.commit()
    draft = allocation.create_round(
        session=session, encoder=app.extensions["tandem.encoder"], created_by_id=None
    )
    session.commit()
    auth.login(world["admin"].email)
    client.post(f"/admin/rounds/{draft.id}/publish")
    subjects = {}
    for path in Path(app.config["TANDEM_MAIL_DIR"]).glob("*.eml"):
        raw = path.read_bytes().decode()
        header = re.search(r"^Subject:(.*)$((?:\n[ \t].*)*)", raw, re.M)
        assert header is not None
        assert header[2] == "", f"folded subject: {header[0]!r}"
        message = email.message_from_bytes(path.read_bytes())
        subjects[message["To"]] = message["Subject"]
    members = [m.email for m in world["members"]]
    for address, subject in subjects.items():
        assert subject == subject.strip() and not subject.startswith(" ")
        if any(member in address for member in members):
            assert subject == f"Tandem round {draft.id}: 2 proposals allocated to your offers"
    assert len(subjects) == 4
    one = round_publishing.round_subject(7, 1)
    assert one == "Tandem round 7: 1 proposal allocated to your offers"


@pytest.mark.parametrize(
    ("equity", "name", "sentence"),
    [
        (
            "priority",
            "Priority for under-resourced labs",
            r"Under-resourced labs: 1 assignment \(1 without the option\)\.",
        ),
        (
            "maxmin",
            "Max-min: raise the lowest fit",
            r"Lowest fit among assigned pairs: \d+/100 \(\d+/100 without the option\)\.",
        ),
    ],
)
def test_the_review_says_what_the_equity_option_changed(
    client: FlaskClient,
    session: Session,
    auth: Any,
    world: dict[str, Any],
    equity: str,
    name: str,
    sentence: str,
) -> None:
    heat = session.get(Proposal, world["proposals"][1].id)
    heat.lab_resource_level = LabResourceLevel.under_resourced
    session.add(heat)
    session.commit()
    auth.login(world["admin"].email)
    response = client.post("/admin/rounds/new", data={"equity": equity, "min_fit": "0"})
    assert response.status_code == 303
    text = _text(client.get(response.headers["Location"]).data)
    assert f"Equity option: {name}." in text
    assert re.search(sentence, text), text
    assert re.search(r"2 assignments \(2 without the option\), for the same total fit\.", text), (
        text
    )
    listing = _text(client.get("/admin/rounds").data)
    stored = session.exec(select(AllocationRound)).one()
    assert f"{round(stored.objective / 2 * 100)}/100" in listing


def test_a_round_stored_before_the_review_redesign_still_reads(
    app: Flask, client: FlaskClient, session: Session, auth: Any, world: dict[str, Any]
) -> None:
    """Rounds stored earlier lack reasons, counts and the unverified option in their summary."""
    draft = allocation.create_round(
        session=session, encoder=app.extensions["tandem.encoder"], created_by_id=None
    )
    old = {"algorithm_version": draft.summary["algorithm_version"], "passes": []}
    for solved in draft.summary["passes"]:
        offers = [
            {k: v for k, v in use.items() if k not in ("organisation_id", "organisation_verified")}
            for use in solved["offers"]
        ]
        unassigned = [
            {"proposal_id": i["proposal_id"], "title": i["title"]} for i in solved["unassigned"]
        ]
        kept = ("name", "status", "objective", "gap", "mode", "equity_cost", "message")
        old["passes"].append(
            {
                **{k: solved[k] for k in kept},
                "assigned": solved["assigned"],
                "offers": offers,
                "unassigned": unassigned,
            }
        )
    draft.summary = old
    session.add(draft)
    session.commit()
    auth.login(world["admin"].email)
    response = client.get(f"/admin/rounds/{draft.id}")
    assert response.status_code == 200
    text = _text(response.data)
    assert "2 of 3 proposals got an offer" in text
    assert "Reason not recorded (1)" in text
    assert "no reason was recorded for this older round" in text
    assert "left out because" not in text
