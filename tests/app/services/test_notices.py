"""Match events by mail: new matches above each person's threshold, interest from the other
side, at once or in daily and weekly digests, and never more than the hourly limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app import notify
from app.services import notices, recommendations
from matching import Encoder
from models import (
    Match,
    MatchEvent,
    MatchStatus,
    Notification,
    NotificationPreference,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    Role,
    User,
    utcnow,
)
from tests.app.pages import FULL
from tests.conftest import AuthActions
from tests.smtp import SmtpServer

WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _mails(app: Flask) -> list[EmailMessage]:
    folder = Path(app.config["TANDEM_MAIL_DIR"])
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]  # type: ignore[misc]


def _text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def _to(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec


def _set(session: Session, user: User, **values: Any) -> None:
    fresh = session.get(User, user.id)
    for name, value in values.items():
        setattr(fresh, name, value)
    session.add(fresh)
    session.commit()


def _rows(session: Session, user: User) -> list[Notification]:
    session.expire_all()
    return list(
        session.exec(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def _interested(session: Session, match: Match, side: str, now: datetime | None = None) -> int:
    """The side says it is interested (the timestamp `matches.express_interest` sets), and the
    other side's interest events are recorded."""
    now = now or utcnow()
    setattr(match, f"{side}_interested_at", now)
    session.add(match)
    return notices.record_interest(session=session, match=match, interested_side=side, now=now)


def _dispatch(app: Flask, now: datetime) -> int:
    with app.app_context():
        return notify.dispatch(now=now)


@pytest.fixture
def company(make_organisation: Callable[..., Any], make_user: Callable[..., Any]) -> dict[str, Any]:
    organisation = make_organisation(
        name="Helios Compute", kind=OrganisationKind.company, email_domains=["helios.example.com"]
    )
    return {
        "organisation": organisation,
        "sam": make_user(
            email="sam@helios.example.com",
            name="Sam Reyes",
            role=Role.company,
            organisation_id=organisation.id,
        ),
        "kim": make_user(
            email="kim@helios.example.com",
            name="Kim Lee",
            role=Role.company,
            organisation_id=organisation.id,
        ),
    }


def test_a_new_proposal_that_fits_an_offer_mails_each_party_once(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    company: dict[str, Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    offer = make_offer(
        organisation_id=company["organisation"].id,
        title="H100 hours for energy research",
        description="H100 hours for reinforcement learning on grid and battery data.",
    )
    _set(session, company["kim"], notification_preference=NotificationPreference.off)
    ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
    auth.login(ada.email)

    assert client.post("/proposals/new", data={**FULL, "publish": "Publish"}).status_code == 302

    match = session.exec(select(Match)).one()
    assert match.offer_id == offer.id and match.score >= 0.3
    by_recipient = {_to(m): m for m in _mails(app)}
    assert set(by_recipient) == {"ada@nb.example.org", "sam@helios.example.com"}, "kim: off"
    to_ada, to_sam = by_recipient["ada@nb.example.org"], by_recipient["sam@helios.example.com"]
    assert to_ada["Subject"] == (
        "New match for “Offline reinforcement learning for grid batteries”: "
        "H100 hours for energy research"
    )
    assert "Helios Compute" in _text(to_ada) and f"/offers/{offer.id}" in _text(to_ada)
    assert to_sam["Subject"] == "New match for your offer “H100 hours for energy research”"
    for part in (_text(to_sam), to_sam.get_body(("html",)).get_content()):  # type: ignore[union-attr]
        assert "Ada" not in part and "ada@" not in part and "Okafor" not in part
        assert "A researcher" in part
    assert to_sam["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Later runs, and the same pair re-entering the lists, mail no one again.
    assert app.test_cli_runner().invoke(args=["mail", "send-pending"]).exit_code == 0
    client.post(f"/proposals/{match.proposal_id}/close")
    client.post(f"/proposals/{match.proposal_id}/open")
    assert len(_mails(app)) == 2


def test_a_match_below_someones_threshold_mails_only_the_others(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    _set(session, pair["academic"], notify_min_score=min(1.0, match.score + 0.01))
    _set(session, pair["member"], notify_min_score=max(0.0, match.score - 0.01))
    _set(session, pair["colleague"], notify_min_score=0.0)
    arrival = notices.Arrival(match, academic=True, company=True)
    assert notices.record_arrivals(session=session, arrivals=[arrival]) == 2  # sam and kim
    session.commit()
    assert notices.record_arrivals(session=session, arrivals=[arrival]) == 0
    recipients = {e.user_id for e in session.exec(select(MatchEvent))}
    assert recipients == {pair["member"].id, pair["colleague"].id}


def test_a_daily_digest_groups_the_days_events_best_first(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    ada = pair["academic"]
    _set(session, ada, notification_preference=NotificationPreference.daily, notify_min_score=0.0)
    matches = sorted(
        session.exec(select(Match).where(Match.proposal_id == pair["proposal"].id)),
        key=lambda m: m.score,
    )
    assert len(matches) == 2 and matches[0].score < matches[1].score
    notices.record_arrivals(
        session=session,
        arrivals=[notices.Arrival(m, academic=True, company=False) for m in matches],
        now=WEDNESDAY,
    )
    _interested(session, matches[0], "company", WEDNESDAY)
    session.commit()

    assert _dispatch(app, WEDNESDAY + timedelta(hours=8)) == 0, "the day is not over"
    assert _dispatch(app, WEDNESDAY + timedelta(hours=20)) == 1
    assert _dispatch(app, WEDNESDAY + timedelta(hours=21)) == 0, "one digest per day"
    (digest,) = _rows(session, ada)
    assert digest.kind == "digest"
    assert digest.subject == (
        "Your daily Tandem digest: 2 new matches and 1 expression of interest"
    )
    assert "on 2026-11-25" in digest.text_body
    # The mail names a match's strength in the words and the scale the pages use.
    assert re.search(r"\((Strong|Good|Fair|Weak) match, score \d+/100\)", digest.text_body)
    assert "% fit" not in digest.text_body
    best, worst = matches[1].offer.title, matches[0].offer.title
    assert digest.text_body.index(best) < digest.text_body.index(worst), "best first"
    events = session.exec(select(MatchEvent).where(MatchEvent.user_id == ada.id)).all()
    assert {e.mail_key for e in events} == {digest.idempotency_key}


def test_a_weekly_digest_waits_for_the_week_to_end(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    kim = pair["colleague"]
    _set(session, kim, notification_preference=NotificationPreference.weekly)
    _interested(session, pair["match"], "academic", WEDNESDAY)
    session.commit()
    sunday_night = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    monday = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    _dispatch(app, sunday_night)
    assert [r.kind for r in _rows(session, kim)] == []
    _dispatch(app, monday)
    (digest,) = _rows(session, kim)
    assert digest.subject == "Your weekly Tandem digest: 1 expression of interest"
    assert "week 2026-W48" in digest.text_body
    assert "Ada" not in digest.text_body and "A researcher" in digest.text_body
    sam = pair["member"]
    assert [r.kind for r in _rows(session, sam)] == ["match-updates"], "sam chose instant"


def test_a_burst_of_events_is_held_to_the_hourly_limit_and_then_grouped(
    app: Flask,
    session: Session,
    encoder: Encoder,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    ada = make_user(email="ada@nb.example.org", notify_min_score=0.0)
    proposal = make_proposal(author_id=ada.id)
    for number in range(6):
        make_offer(title=f"H100 hours, batch {number}")
    recommendations.recompute_all(session=session, encoder=encoder, k=10)
    session.commit()
    matches = session.exec(select(Match).where(Match.proposal_id == proposal.id)).all()
    assert len(matches) == 6
    limit = app.config["TANDEM_MAILS_PER_HOUR"]
    assert limit == 4
    for minute, match in enumerate(matches):
        now = WEDNESDAY + timedelta(minutes=minute)
        arrival = notices.Arrival(match, academic=True, company=False)
        notices.record_arrivals(session=session, arrivals=[arrival], now=now)
        session.commit()
        _dispatch(app, now)
    assert len(_rows(session, ada)) == limit, "the 5th and 6th wait"
    _dispatch(app, WEDNESDAY + timedelta(minutes=61))
    rows = _rows(session, ada)
    assert len(rows) == limit + 1
    assert rows[-1].subject == "Tandem: 2 new matches"
    assert all(r.kind == "match-updates" for r in rows)


def test_two_dispatchers_never_mail_the_same_events(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    _interested(session, pair["match"], "company")
    session.commit()
    first = notices.due_batches(session=session)
    second = notices.due_batches(session=session)
    assert [b.key for b in first] == [b.key for b in second] and len(first) == 1
    assert notices.claim(session=session, batch=first[0])
    session.commit()
    assert not notices.claim(session=session, batch=second[0])
    session.rollback()


def test_events_about_closed_proposals_or_for_people_who_turned_mail_off_are_dropped(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    ada, sam = pair["academic"], pair["member"]
    _set(session, ada, notification_preference=NotificationPreference.daily)
    _interested(session, pair["match"], "company", WEDNESDAY)
    _interested(session, pair["match"], "academic", WEDNESDAY)
    session.commit()
    _set(session, sam, notification_preference=NotificationPreference.off)
    proposal = session.get(Proposal, pair["proposal"].id)
    proposal.status = ProposalStatus.closed
    session.add(proposal)
    session.commit()
    assert _dispatch(app, WEDNESDAY + timedelta(days=1)) == 0
    assert session.exec(select(Notification)).all() == []
    session.expire_all()
    keys = {e.user_id: e.mail_key for e in session.exec(select(MatchEvent))}
    assert keys == {
        ada.id: notices.DROPPED,  # the proposal closed before the digest
        sam.id: notices.DROPPED,  # turned mail off
        pair["colleague"].id: notices.DROPPED,  # the proposal closed
    }


def test_interest_withdrawn_before_the_digest_is_not_mailed_and_said_again_is(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    """The researcher says interested and takes it back the same day: the company's daily
    digest does not announce an interest that no longer stands. Said again later, it is
    announced in the next digest."""
    sam = pair["member"]
    _set(session, sam, notification_preference=NotificationPreference.daily)
    _set(session, pair["colleague"], notification_preference=NotificationPreference.daily)
    auth.login(pair["academic"].email)
    match_id = pair["match"].id
    assert client.post(f"/matches/{match_id}/interest").status_code == 302
    assert client.post(f"/matches/{match_id}/withdraw").status_code == 302
    session.expire_all()
    assert session.get(Match, match_id).status == MatchStatus.suggested
    assert session.exec(select(MatchEvent).where(MatchEvent.kind == "interest")).all() == []
    assert _dispatch(app, utcnow() + timedelta(days=1)) == 0
    assert _rows(session, sam) == []

    assert client.post(f"/matches/{match_id}/interest").status_code == 302
    assert _dispatch(app, utcnow() + timedelta(days=2)) == 2, "sam and kim get their digest"
    (digest,) = _rows(session, sam)
    assert "expression of interest" in digest.subject


def test_account_mails_go_through_the_outbox_and_wait_while_the_server_is_down(
    app: Flask, client: FlaskClient, session: Session, smtp: SmtpServer
) -> None:
    smtp.stop()
    response = client.post(
        "/register",
        data={
            "email": "newcomer@nb.example.org",
            "name": "New Comer",
            "role": "academic",
            "organisation": "Northbridge University",
            "password": "violet-harbour-lantern-42",
            "password_confirm": "violet-harbour-lantern-42",
        },
    )
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:500]
    (row,) = session.exec(select(Notification)).all()
    assert row.kind == "account" and row.status.value == "pending" and row.attempts == 1
    smtp.start()
    row.next_attempt_at = row.created_at
    session.add(row)
    session.commit()
    assert app.test_cli_runner().invoke(args=["mail", "send-pending"]).exit_code == 0
    (received,) = smtp.handler.received
    assert _to(received) == "newcomer@nb.example.org"
    assert received["List-Unsubscribe"] is None, "account mails are not match mails"
    assert "http://127.0.0.1:5000/confirm/" in _text(received), "links use TANDEM_BASE_URL"
    session.expire_all()
    assert session.exec(select(Notification.status)).one().value == "sent"
    assert session.exec(select(col(User.email))).all() == ["newcomer@nb.example.org"]


def test_new_match_mails_reach_the_smtp_server_once_each_through_failures(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    smtp: SmtpServer,
    company: dict[str, Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    make_offer(
        organisation_id=company["organisation"].id,
        title="H100 hours for energy research",
        description="H100 hours for reinforcement learning on grid and battery data.",
    )
    ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
    auth.login(ada.email)
    # The first message gets a 451 (retried later); then the server goes down entirely.
    smtp.handler.replies.append("451 4.3.0 Try again later")
    assert client.post("/proposals/new", data={**FULL, "publish": "Publish"}).status_code == 302
    delivered = {_to(m) for m in smtp.handler.received}
    rows = session.exec(select(Notification)).all()
    assert len(rows) == 3 and len(delivered) == 2, "one of three waits after the 451"
    smtp.stop()
    for row in rows:
        row.next_attempt_at = row.created_at
        session.add(row)
    session.commit()
    assert app.test_cli_runner().invoke(args=["mail", "send-pending"]).exit_code == 0
    assert len(smtp.handler.received) == 2, "the server is down: nothing more arrived"
    smtp.start()
    session.expire_all()
    for row in session.exec(select(Notification)).all():
        row.next_attempt_at = row.created_at
        session.add(row)
    session.commit()
    for _ in range(2):  # a second run sends nothing again
        assert app.test_cli_runner().invoke(args=["mail", "send-pending"]).exit_code == 0
    received = sorted(_to(m) for m in smtp.handler.received)
    assert received == ["ada@nb.example.org", "kim@helios.example.com", "sam@helios.example.com"]
    session.expire_all()
    assert {r.status.value for r in session.exec(select(Notification))} == {"sent"}


def _unverified(session: Session, organisation_id: int) -> None:
    organisation = session.get(Organisation, organisation_id)
    organisation.verified = False
    session.add(organisation)
    session.commit()


def test_match_mails_mark_an_unverified_company_as_the_pages_do(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    """New-match and interest mails, as a digest and one at a time, say "(unverified)" after
    a company no administrator has verified, as its offer's page does."""
    ada, offer = pair["academic"], pair["offer"]
    _unverified(session, offer.organisation_id)
    _set(session, ada, notification_preference=NotificationPreference.daily, notify_min_score=0.0)
    first, second = session.exec(select(Match).where(Match.proposal_id == pair["proposal"].id))
    notices.record_arrivals(
        session=session,
        arrivals=[notices.Arrival(m, academic=True, company=False) for m in (first, second)],
        now=WEDNESDAY,
    )
    _interested(session, first, "company", WEDNESDAY)
    session.commit()
    assert _dispatch(app, WEDNESDAY + timedelta(hours=20)) == 1
    (digest,) = _rows(session, ada)
    for body in (digest.text_body, re.sub(r"<[^>]+>", "", digest.html_body)):
        assert body.count("from Helios Compute (unverified) (") == 2, body
        assert "Helios Compute (unverified) is interested in your proposal" in body
    assert "(unverified)" not in digest.subject

    _set(session, ada, notification_preference=NotificationPreference.instant)
    _interested(session, second, "company", WEDNESDAY + timedelta(hours=21))
    session.commit()
    assert _dispatch(app, WEDNESDAY + timedelta(hours=21)) == 1
    instant = _rows(session, ada)[-1]
    assert instant.subject == (
        "Helios Compute (unverified) is interested in your proposal "
        "“Offline reinforcement learning for grid batteries”"
    )
    assert "Helios Compute (unverified) is interested" in instant.text_body


def test_introduction_and_round_mails_mark_an_unverified_company(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    make_admin: Callable[..., Any],
) -> None:
    ada, sam, match = pair["academic"], pair["member"], pair["match"]
    _unverified(session, pair["offer"].organisation_id)
    _unverified(session, ada.organisation_id)
    # An allocation round that includes unverified organisations' offers says so.
    auth.login(make_admin().email)
    response = client.post(
        "/admin/rounds/new", data={"equity": "none", "min_fit": "0", "include_unverified": "y"}
    )
    assert response.status_code == 303
    round_page = response.headers["Location"]
    assert client.post(f"{round_page}/publish").status_code in (302, 303)
    session.expire_all()
    allocated = session.exec(
        select(Notification).where(
            Notification.kind == "round_published", Notification.recipient_email == ada.email
        )
    ).one()
    for body in (allocated.text_body, allocated.html_body):
        assert "by Helios Compute (unverified)" in body
    auth.logout()

    # The introduction names the company so to the academic (never the university to the
    # company: pages mark only companies).
    auth.login(ada.email)
    assert client.post(f"/matches/{match.id}/interest").status_code == 302
    auth.logout()
    auth.login(sam.email)
    assert client.post(f"/matches/{match.id}/interest").status_code == 302
    auth.logout()
    introductions = {
        row.recipient_email: row
        for row in session.exec(select(Notification).where(Notification.kind == "introduction"))
    }
    to_ada, to_sam = introductions[ada.email], introductions[sam.email]
    for body in (to_ada.text_body, to_ada.html_body):
        assert "(Helios Compute (unverified))" in body
    for body in (to_sam.text_body, to_sam.html_body):
        assert "(Northbridge University)" in body and "(unverified)" not in body
