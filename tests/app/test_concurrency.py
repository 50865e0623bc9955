"""Two requests at once lose nothing: real concurrent requests against the real database
(SQLite, and PostgreSQL when TANDEM_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import DomainEvent, Match, MatchStatus, Notification, Proposal, ProposalStatus
from tests.conftest import AuthActions

TRIALS = 50


def _signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    AuthActions(client).login(email)
    return client


def _reset(session: Session, match_id: int, proposal_id: int) -> None:
    """The pair back to a plain suggestion, with no introduction recorded or mailed yet."""
    session.execute(
        sa.update(Match)
        .where(Match.id == match_id)  # type: ignore[arg-type]
        .values(
            status=MatchStatus.suggested,
            academic_interested_at=None,
            company_interested_at=None,
            company_contact_id=None,
            introduced_at=None,
        )
    )
    session.execute(
        sa.update(Proposal)
        .where(Proposal.id == proposal_id)  # type: ignore[arg-type]
        .values(status=ProposalStatus.open)
    )
    session.execute(sa.delete(Notification))
    session.execute(sa.delete(DomainEvent))
    session.commit()


def test_both_sides_interested_at_the_same_moment_are_introduced_every_time(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    """The researcher and the company press "I'm interested" at the same instant, 50 times:
    every time they are introduced, and each person's introduction mail is written once."""
    match_id, proposal_id = pair["match"].id, pair["proposal"].id
    clients = [_signed_in(app, pair["academic"].email), _signed_in(app, pair["member"].email)]
    recipients = sorted([pair["academic"].email, pair["member"].email, pair["colleague"].email])
    lost = []
    for trial in range(TRIALS):
        _reset(session, match_id, proposal_id)
        start = threading.Barrier(len(clients))

        def press(client: FlaskClient, start: threading.Barrier = start) -> int:
            start.wait()
            return client.post(f"/matches/{match_id}/interest").status_code

        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            codes = list(pool.map(press, clients))
        assert codes == [302, 302], f"trial {trial}: {codes}"
        session.expire_all()
        match = session.get(Match, match_id)
        assert match is not None
        if match.status != MatchStatus.introduced:
            lost.append((trial, match.status.value))
            continue
        mails = session.exec(select(Notification).where(Notification.kind == "introduction")).all()
        assert sorted(m.recipient_email for m in mails) == recipients, f"trial {trial}"
    assert lost == [], f"{len(lost)} of {TRIALS} simultaneous pairs were not introduced"


def test_twenty_sign_ups_with_one_address_at_once_make_one_account_and_no_error(
    app: Flask, session: Session
) -> None:
    """The same address signed up from 20 tabs at the same instant: one account, and every
    other request is answered with a page that says so (never a 500)."""
    from models import User

    clients = [app.test_client() for _ in range(20)]
    start = threading.Barrier(len(clients))
    form = {
        "email": "newcomer@nb.example.org",
        "name": "New Comer",
        "role": "academic",
        "organisation": "Northbridge University",
        "password": "violet-harbour-lantern-42",
        "password_confirm": "violet-harbour-lantern-42",
    }

    def sign_up(client: FlaskClient) -> tuple[int, str]:
        start.wait()
        response = client.post("/register", data=form)
        return response.status_code, response.get_data(as_text=True)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        answers = list(pool.map(sign_up, clients))
    codes = sorted(code for code, _ in answers)
    assert 500 not in codes, codes
    session.expire_all()
    accounts = session.exec(select(User).where(User.email == form["email"])).all()
    assert len(accounts) == 1
    assert codes.count(302) >= 1
    for code, page in answers:
        if code != 302:
            assert code in (409, 422), code
            assert "newcomer@nb.example.org" in page or "at the same moment" in page
