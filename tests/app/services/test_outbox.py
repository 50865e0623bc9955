"""The outbox against a real SMTP server (aiosmtpd on 127.0.0.1): every mail delivered once,
temporary failures retried, permanent ones recorded, nothing lost while the server is down."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import mail
from app.services import outbox
from models import Notification, NotificationPreference, NotificationStatus, User, utcnow
from tests.conftest import AuthActions
from tests.smtp import ScriptedHandler, SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[3]


def _queue(session: Session, *keys: str, to: str = "ada@example.org") -> None:
    outbox.enqueue(
        session=session,
        emails=[
            outbox.Email(
                key=key,
                kind="test",
                to_email=to,
                to_name="Ada Okafor",
                subject=f"Mail {key}",
                text=f"Plain text of {key}: {'http://127.0.0.1:5000/dashboard'}",
                html=f"<p>HTML of {key}</p>",
            )
            for key in keys
        ],
    )
    session.commit()


def _send(app: Flask) -> mail.SendReport:
    with app.app_context():
        return mail.send_pending()


def _rows(session: Session) -> list[Notification]:
    session.expire_all()
    return list(session.exec(select(Notification).order_by(Notification.id)))


def _make_due(session: Session) -> None:
    for row in _rows(session):
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    session.commit()


def test_the_same_event_never_makes_two_rows(session: Session) -> None:
    _queue(session, "introduction:proposal-1:offer-2:ada@example.org")
    _queue(session, "introduction:proposal-1:offer-2:ada@example.org", "other")
    assert [row.idempotency_key for row in _rows(session)] == [
        "introduction:proposal-1:offer-2:ada@example.org",
        "other",
    ]


def test_every_row_is_delivered_once_with_proper_headers_and_parts(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    _queue(session, "a", "b")
    assert _send(app) == mail.SendReport(sent=2)
    assert _send(app) == mail.SendReport()
    assert [m["Subject"] for m in smtp.handler.received] == ["Mail a", "Mail b"]
    message = smtp.handler.received[0]
    assert message["To"] == "Ada Okafor <ada@example.org>"
    assert message["From"] == app.config["MAIL_DEFAULT_SENDER"]
    assert message["Date"] and message["Message-ID"].startswith("<tandem.")
    assert "Plain text of a" in message.get_body(("plain",)).get_content()
    assert "<p>HTML of a</p>" in message.get_body(("html",)).get_content()
    assert all(row.status == NotificationStatus.sent for row in _rows(session))


def test_a_temporary_refusal_is_retried_later_and_delivered_once(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    smtp.handler.replies = ["451 4.3.0 Mailbox busy, try again later"]
    _queue(session, "a")
    assert _send(app) == mail.SendReport(retried=1)
    (row,) = _rows(session)
    assert row.status == NotificationStatus.pending and row.attempts == 1
    assert "451" in row.last_error and row.next_attempt_at > utcnow()
    assert _send(app) == mail.SendReport()  # not due yet: backoff
    _make_due(session)
    assert _send(app) == mail.SendReport(sent=1)
    assert _send(app) == mail.SendReport()
    assert len(smtp.handler.received) == 1
    assert _rows(session)[0].status == NotificationStatus.sent


def test_a_permanent_refusal_is_recorded_and_never_retried(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    smtp.handler.refuse_recipients = {"ghost@example.org"}
    _queue(session, "a", to="ghost@example.org")
    smtp.handler.replies = []
    assert _send(app) == mail.SendReport(failed=1)
    _make_due(session)
    assert _send(app) == mail.SendReport()
    (row,) = _rows(session)
    assert row.status == NotificationStatus.failed and "550" in row.last_error
    assert smtp.handler.received == []

    smtp.handler.replies = ["554 5.6.0 Message rejected"]
    _queue(session, "b")
    assert _send(app) == mail.SendReport(failed=1)
    assert "554" in _rows(session)[1].last_error


def test_mail_waits_while_the_server_is_down_and_goes_out_when_it_is_back(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    smtp.stop()
    _queue(session, "a", "b", "c")
    assert _send(app) == mail.SendReport(retried=3)
    rows = _rows(session)
    assert all(row.status == NotificationStatus.pending for row in rows)
    assert all("Connection" in row.last_error and row.attempts == 1 for row in rows)
    smtp.start()
    _make_due(session)
    assert _send(app) == mail.SendReport(sent=3)
    assert len(smtp.handler.received) == 3


def test_retries_back_off_and_stop_after_the_cap(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert outbox.backoff(30) == outbox.BACKOFF_CAP
    smtp.handler.replies = ["421 4.7.0 Try later"] * outbox.MAX_ATTEMPTS
    _queue(session, "a")
    for _ in range(outbox.MAX_ATTEMPTS):
        _make_due(session)
        _send(app)
    (row,) = _rows(session)
    assert row.status == NotificationStatus.failed
    assert row.attempts == outbox.MAX_ATTEMPTS and "gave up" in row.last_error


def test_a_sender_that_dies_after_the_smtp_reply_leads_to_one_resend_with_the_same_id(
    app: Flask, session: Session, smtp: SmtpServer
) -> None:
    """The documented window: the server accepted the mail, the sender died before marking
    the row. After the lease the row is sent again, with the same Message-ID."""
    _queue(session, "a")
    with app.app_context():
        claimed = outbox.claim_next(session=session, lease=mail.LEASE)
        session.commit()
        mail.deliver(mail.message_for(claimed))  # ... and the process dies here.
    assert _send(app) == mail.SendReport()  # still leased to the dead sender
    row = _rows(session)[0]
    row.claimed_at = utcnow() - mail.LEASE - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert _send(app) == mail.SendReport(sent=1)
    first, second = smtp.handler.received
    assert first["Message-ID"] == second["Message-ID"]
    assert _rows(session)[0].status == NotificationStatus.sent


def test_two_senders_never_take_the_same_row(app: Flask, session: Session) -> None:
    _queue(session, "a", "b", "c")
    with app.app_context():
        first = outbox.claim_due(session=session, limit=2)
        session.commit()
        second = outbox.claim_due(session=session, limit=10)
        session.commit()
    assert {n.idempotency_key for n in first} == {"a", "b"}
    assert [n.idempotency_key for n in second] == ["c"]

    _queue(session, "d", "e")
    with app.app_context():
        taken = [outbox.claim_next(session=session) for _ in range(3)]
        session.commit()
    assert [n and n.idempotency_key for n in taken] == ["d", "e", None]


@dataclass
class StallingHandler(ScriptedHandler):
    """Holds the first message without answering until `release` is set (a server that has
    stopped responding), then turns it away with a temporary error."""

    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if not self.stalled.is_set():
            self.stalled.set()
            await asyncio.to_thread(self.release.wait, 300)
            return "421 4.3.0 Service not available, closing channel"
        return await super().handle_DATA(server, session, envelope)


def test_a_killed_sender_holds_only_the_mail_it_was_sending(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    """A `mail send-pending` process killed (SIGKILL) while the SMTP server sits on its first
    message: the next sender delivers every other mail at once, and the one it was sending
    goes out once its lease has run out."""
    handler = StallingHandler()
    server = SmtpServer(port=free_port(), handler=handler)
    server.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    _queue(session, "a", "b", "c", "d")
    env = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "TANDEM_ENV": "test",
        "TANDEM_INSTANCE_PATH": str(tmp_path / "sender-instance"),
        "TANDEM_QUEUE": "immediate",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(server.port),
        "HF_HUB_OFFLINE": "1",
    }
    log_path = tmp_path / "sender.log"
    try:
        with log_path.open("w") as log:
            sender = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "mail", "send-pending"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                stalled = handler.stalled.wait(120)
            finally:
                sender.kill()  # SIGKILL: no clean-up runs
                sender.wait(timeout=60)
        assert stalled, f"the sender never sent a message: {log_path.read_text()}"
        assert [row.status for row in _rows(session)] == [NotificationStatus.sending] + [
            NotificationStatus.pending
        ] * 3, "the killed sender held more than the mail it was sending"

        assert _send(app) == mail.SendReport(sent=3)
        assert [m["Subject"] for m in handler.received] == ["Mail b", "Mail c", "Mail d"]
        held = _rows(session)[0]
        assert held.idempotency_key == "a" and held.status == NotificationStatus.sending

        held.claimed_at = utcnow() - mail.LEASE - timedelta(seconds=1)
        session.add(held)
        session.commit()
        assert _send(app) == mail.SendReport(sent=1)
        assert [m["Subject"] for m in handler.received][-1] == "Mail a"
        assert {row.status for row in _rows(session)} == {NotificationStatus.sent}
    finally:
        handler.release.set()
        server.stop()


def test_the_send_pending_command(app: Flask, session: Session, smtp: SmtpServer) -> None:
    _queue(session, "a", "b")
    result = app.test_cli_runner().invoke(args=["mail", "send-pending"])
    assert result.exit_code == 0 and "2 sent, 0 to retry later, 0 failed." in result.output
    assert len(smtp.handler.received) == 2


def test_an_introduction_reaches_the_smtp_server_once_per_person_with_working_links(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    smtp: SmtpServer,
    pair: dict[str, Any],
) -> None:
    app.config["TANDEM_BASE_URL"] = "http://127.0.0.1:5000"
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    client.post(f"/matches/{match.id}/interest")  # a double click changes nothing
    received = [m for m in smtp.handler.received if str(m["Subject"]).startswith("Intro")]
    assert sorted(m["To"].addresses[0].addr_spec for m in received) == [
        "ada@nb.example.org",
        "kim@helios.example.com",
        "sam@helios.example.com",
    ]
    body = next(m for m in received if "sam@" in str(m["To"])).get_body(("plain",)).get_content()
    link = next(word for word in body.split() if word.startswith("http://127.0.0.1:5000/"))
    assert client.get(link.removeprefix("http://127.0.0.1:5000")).status_code in (200, 302)
    kinds = sorted(row.kind for row in _rows(session))
    assert kinds == ["introduction"] * 3 + ["match-updates"] * 2


def test_every_mail_to_a_member_carries_a_one_click_unsubscribe_that_needs_no_login(
    app: Flask, session: Session, smtp: SmtpServer, make_user: Callable[..., Any]
) -> None:
    from app import create_app

    user = make_user(email="ada@example.org")
    _queue(session, "a")
    _send(app)
    (message,) = smtp.handler.received
    link = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in message.get_body(("plain",)).get_content()
    assert link in message.get_body(("html",)).get_content()
    path = "/" + link.split("/", 3)[3]

    # As a mail client would: a POST with no session and no CSRF token, CSRF enforced.
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    visitor = protected.test_client()
    assert "Unsubscribe from match emails" in visitor.get(path).get_data(as_text=True)
    response = visitor.post(path)
    assert response.status_code == 200 and "Done" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, user.id).notification_preference == NotificationPreference.off

    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert visitor.post(forged).status_code == 404
    protected.extensions["tandem.engine"].dispose()


def test_the_account_page_sets_how_often_we_email(
    client: FlaskClient, auth: AuthActions, session: Session, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    assert "/login" in client.post("/account", data={"notification_preference": "off"}).location
    auth.login(user.email)
    page = client.get("/account").get_data(as_text=True)
    assert "A weekly digest" in page and "Match emails" in page
    response = client.post("/account", data={"notification_preference": "weekly", "min_fit": "45"})
    assert response.status_code == 302
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored.notification_preference == NotificationPreference.weekly
    assert stored.notify_min_score == pytest.approx(0.45)
    response = client.post("/account", data={"notification_preference": "hourly", "min_fit": "45"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
    for typed in ("150", "-1", "lots"):
        response = client.post(
            "/account", data={"notification_preference": "daily", "min_fit": typed}
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 422, typed
        assert f'value="{typed}"' in page  # what the user typed is kept
        assert "between 0 and 100" in page or "valid integer" in page
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored.notification_preference == NotificationPreference.weekly
    assert stored.notify_min_score == pytest.approx(0.45)
