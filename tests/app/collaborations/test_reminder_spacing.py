"""The reminder mail promises "at most one reminder every N days": two runs a couple of hours
apart, on either side of the boundary between two N-day windows, must not both send one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app import notify
from models import Collaboration, Notification
from tests.conftest import AuthActions

DAYS = 7


def test_no_second_reminder_within_the_period_across_a_window_boundary(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    for side in ("academic", "member"):
        auth.login(pair[side].email)
        client.post(f"/matches/{match.id}/interest")
        auth.logout()
    record = session.exec(select(Collaboration).where(Collaboration.match_id == match.id)).one()
    window = int(datetime.now(UTC).timestamp() // 86_400) // DAYS + 1
    boundary = datetime.fromtimestamp(window * DAYS * 86_400, UTC)
    record.stage_changed_at = boundary - timedelta(days=3 * DAYS)
    session.add(record)
    session.commit()

    with app.app_context():
        before = notify.send_reminders(days=DAYS, now=boundary - timedelta(hours=1))
        after = notify.send_reminders(days=DAYS, now=boundary + timedelta(hours=1))
        # A full period after the first, the next one is due.
        next_one = notify.send_reminders(days=DAYS, now=boundary + timedelta(days=DAYS))
    assert before == 3  # Ada, Sam and Kim
    assert after == 0
    assert next_one == 3
    session.expire_all()
    sent = session.exec(
        select(Notification.user_id, Notification.created_at)
        .where(Notification.kind == notify.REMINDER_KIND)
        .order_by(col(Notification.created_at))
    ).all()
    assert len(sent) == 6
