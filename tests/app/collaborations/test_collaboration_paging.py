"""The collaborations list in pages (a person or an administrator with many records gets
Previous and Next, not one long page), read with as many statements whatever the number of
records; the record's form asks only what the next steps can take; the demo academic and company
each have a record at an early stage to walk through."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import collaborations, demo
from models import (
    Collaboration,
    CollaborationStage,
    Match,
    MatchStatus,
    Offer,
    OrganisationKind,
    Proposal,
    Role,
    User,
    utcnow,
)
from tests.app.pages import text_of
from tests.app.test_page_queries import counted
from tests.conftest import AuthActions

PAGE_SIZE = 10  # the test app's TANDEM_PAGE_SIZE


def _titles(html: bytes) -> list[str]:
    """The proposal titles linked from the list, top to bottom."""
    return re.findall(r"Project (\d+) ×", text_of(html))


def _records(
    session: Session,
    *,
    academic: User,
    offer_id: int,
    make_proposal: Callable[..., Any],
    start: int,
    count: int,
) -> None:
    """`count` introduced pairs of the academic's proposals "Project N" with the offer, the
    higher N moved more recently."""
    now = utcnow()
    for number in range(start, start + count):
        proposal = make_proposal(author_id=academic.id, title=f"Project {number}")
        match = Match(
            proposal_id=proposal.id,
            offer_id=offer_id,
            score=0.5,
            algorithm_version="test",
            status=MatchStatus.introduced,
            introduced_at=now,
        )
        session.add(match)
        session.flush()
        collaborations.start(session=session, match=match, now=now + timedelta(minutes=number))
    session.commit()


def test_many_collaborations_are_paged_for_each_side_and_the_administrator(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., Any],
    make_admin: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    academic = make_user(email="ada@nb.example.org")
    company = make_organisation(kind=OrganisationKind.company)
    member = make_user(
        email="sam@helios.example.com", role=Role.company, organisation_id=company.id
    )
    offer = make_offer(organisation_id=company.id, created_by_id=member.id)
    _records(
        session,
        academic=academic,
        offer_id=offer.id,
        make_proposal=make_proposal,
        start=1,
        count=PAGE_SIZE + 3,
    )
    newest_first = [str(n) for n in range(PAGE_SIZE + 3, 0, -1)]

    for email in (academic.email, member.email):
        auth.login(email)
        first = client.get("/collaborations/")
        assert _titles(first.data) == newest_first[:PAGE_SIZE]
        assert "13 collaborations, most recently moved first" in text_of(first.data)
        assert "Page 1 of 2" in text_of(first.data)
        assert 'rel="next" href="/collaborations/?page=2"' in first.text
        second = client.get("/collaborations/?page=2")
        assert _titles(second.data) == newest_first[PAGE_SIZE:]
        assert 'rel="prev" href="/collaborations/?page=1"' in second.text
        assert 'rel="next"' not in second.text
        # Past the end: the last page, not an empty one.
        assert _titles(client.get("/collaborations/?page=9").data) == newest_first[PAGE_SIZE:]
        auth.logout()

    admin = make_admin(email="morgan@tandem.example.org")
    page = collaborations.visible(session=session, user_id=admin.id, page=2, per_page=PAGE_SIZE)
    assert [v.proposal.title for v in page.items] == [f"Project {n}" for n in (3, 2, 1)]
    assert (page.total, page.pages) == (13, 2)


def test_the_list_is_read_with_as_many_statements_for_3_or_40_records(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    academic = make_user(email="ada@nb.example.org")
    company = make_organisation(kind=OrganisationKind.company)
    offer = make_offer(organisation_id=company.id)
    records = {"academic": academic, "offer_id": offer.id, "make_proposal": make_proposal}
    _records(session, **records, start=1, count=3)
    auth.login(academic.email)
    client.get("/collaborations/")  # the first request warms the app's own caches

    def statements(path: str, rows: int) -> int:
        with counted(app) as sent:
            response = client.get(path)
        assert response.status_code == 200
        assert len(_titles(response.data)) == rows
        return len(sent)

    few = statements("/collaborations/", rows=3)
    _records(session, **records, start=4, count=37)
    assert statements("/collaborations/", rows=PAGE_SIZE) == few
    assert statements("/collaborations/?page=4", rows=PAGE_SIZE) == few


def test_the_form_asks_only_what_the_next_steps_take_and_says_when_it_is_over(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    academic = make_user(email="ada@nb.example.org")
    offer = make_offer(organisation_id=make_organisation(kind=OrganisationKind.company).id)
    _records(
        session, academic=academic, offer_id=offer.id, make_proposal=make_proposal, start=1, count=1
    )
    record = session.exec(select(Collaboration)).one()
    path = f"/collaborations/{record.id}"
    auth.login(academic.email)

    def move(**data: Any) -> str:
        response = client.post(path, data=data, follow_redirects=True)
        assert response.status_code == 200, text_of(response.data)
        return text_of(response.data)

    talking = move(stage="talking")
    assert "Why it ended" in talking and "Recorded:" not in talking
    move(stage="agreement_signed", agreement_kind="nda", agreement_signed_on="2026-11-02")
    started = move(stage="started", gpu_hours_granted="1500")
    # What is on record already is said beside the empty fields that would correct it.
    assert "Recorded: Non-disclosure agreement (NDA), signed 2026-11-02" in started
    assert "Recorded: 1,500 GPU hours granted" in started
    completed = move(stage="completed", gpu_hours_used="1200")
    # From "Completed" only "Published" is left: no reason for ending is asked.
    assert "Why it ended" not in completed and "More about why" not in completed
    assert "1,200 used" in completed
    published = move(stage="published", outcome_link="10.5555/kestrel.2026.042")
    assert "Move it on" not in published
    assert "reached its outcome: there is nothing more to record" in published


def test_the_demo_academic_and_company_each_have_an_early_record_to_walk_through(
    demo_loaded: str, session: Session, client: FlaskClient, auth: AuthActions
) -> None:
    logins = {role: email for role, email, _ in demo.demo_logins(demo.read_demo_data())}
    academic = session.exec(select(User).where(User.email == logins["academic"])).one()
    member = session.exec(select(User).where(User.email == logins["company"])).one()
    records = select(Collaboration.stage).join(Match, Match.id == Collaboration.match_id)
    academic_stages = session.exec(
        records.join(Proposal, Proposal.id == Match.proposal_id).where(
            Proposal.author_id == academic.id
        )
    ).all()
    company_stages = session.exec(
        records.join(Offer, Offer.id == Match.offer_id).where(
            Offer.organisation_id == member.organisation_id
        )
    ).all()
    assert CollaborationStage.introduced in academic_stages
    assert CollaborationStage.talking in company_stages
    # Every stage is still shown somewhere in the demo.
    stages = set(session.exec(sa.select(Collaboration.stage)).scalars())
    assert stages == set(CollaborationStage)
    auth.login(logins["academic"], demo.DEMO_PASSWORD)
    assert "Introduced since" in text_of(client.get("/collaborations/").data)
    auth.logout()
    auth.login(logins["company"], demo.DEMO_PASSWORD)
    assert "Talking since" in text_of(client.get("/collaborations/").data)
