"""The transactional outbox: emails are rows written in the same transaction as the event
that causes them, and a sender delivers them afterwards.

Delivery is at-least-once with one narrow window: a sender that dies after the SMTP server
accepted a message but before it marked the row sent leaves the row `sending`. Once its lease
expires, the next sender puts it back to pending and sends it again, with the same
Message-ID, so mail clients that de-duplicate by Message-ID show it once. In normal operation
(no crash) every row is sent exactly once: a row is claimed by one sender with a conditional
UPDATE before anything is sent.

A sender takes one row at a time (`claim_next`), in its own short transaction, right before
sending it: a sender that dies holds only the row it was sending, and every other row stays
pending for the next sender. The lease must outlast the longest time one row can take to
send (so no row is claimed again while its first sender is still at it); each sender says
how long that is (`app/mail.py` explains its own). `claim_due` takes a batch at once, for
senders whose batch ends well within `LEASE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models import Notification, NotificationStatus, utcnow

LEASE = timedelta(minutes=10)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 8
SUBJECT_LIMIT = 300
# Sign-up confirmation, password reset and the like: they carry no unsubscribe link.
ACCOUNT_KIND = "account"
# Set in `session.info` when a transaction wrote mail, or an event to announce; the app runs
# delivery after the commit.
MAIL_WRITTEN = "tandem.mail_written"


@dataclass(frozen=True)
class Email:
    """One email an event causes; `key` names the event and the recipient, e.g.
    `introduction:match-12:user-7`, and is what makes the row unique."""

    key: str
    kind: str
    to_email: str
    subject: str
    text: str
    html: str = ""
    to_name: str = ""
    user_id: int | None = None


def enqueue(*, session: Session, emails: Iterable[Email], now: datetime | None = None) -> int:
    """Add the emails to the outbox in the caller's transaction; an email whose key is
    already there is left alone. Returns how many rows were added. Flushes, never commits."""
    now = now or utcnow()
    rows = [
        {
            "idempotency_key": email.key,
            "kind": email.kind,
            "user_id": email.user_id,
            "recipient_name": email.to_name[:200],
            "recipient_email": email.to_email,
            "subject": email.subject[:SUBJECT_LIMIT],
            "text_body": email.text,
            "html_body": email.html,
            "status": NotificationStatus.pending,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }
        for email in emails
    ]
    added = insert_new(
        session=session, table=Notification.__table__, rows=rows, key="idempotency_key"
    )
    if added:
        session.info[MAIL_WRITTEN] = True
    return added


def insert_new(*, session: Session, table: sa.Table, rows: list[dict], key: str) -> int:
    """Insert the rows whose unique `key` column is not there yet (ON CONFLICT DO NOTHING, on
    SQLite and PostgreSQL alike); returns how many were added. Flushes, never commits."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(table).values(rows).on_conflict_do_nothing(index_elements=[key])
    # RETURNING counts the rows really added (rowcount is -1 for multi-row inserts on psycopg).
    added = len(session.execute(statement.returning(table.c.id)).all())
    session.flush()
    return added


def release_expired(
    *, session: Session, now: datetime | None = None, lease: timedelta = LEASE, model: Any
) -> None:
    """Put back to pending the rows left `sending` longer than `lease` (their sender died)."""
    now = now or utcnow()
    table = model.__table__
    session.execute(
        sa.update(table)
        .where(
            table.c.status == NotificationStatus.sending,
            table.c.claimed_at < now - lease,
        )
        .values(status=NotificationStatus.pending, last_error="sender stopped before confirming")
    )


def has_due(
    *,
    session: Session,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    model: Any = Notification,
) -> bool:
    """Whether `claim_next` would find a row now (a due one, or one whose lease ran out): a
    sender asks before it opens a connection, so an idle run opens none."""
    now = now or utcnow()
    due = sa.or_(
        sa.and_(model.status == NotificationStatus.pending, col(model.next_attempt_at) <= now),
        sa.and_(model.status == NotificationStatus.sending, col(model.claimed_at) < now - lease),
    )
    return session.exec(select(model.id).where(due).limit(1)).first() is not None


def claim_next(
    *,
    session: Session,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    model: Any = Notification,
) -> Any | None:
    """Take the oldest due row for this sender (pending to sending by a conditional UPDATE, so
    two senders never take the same row), or None when nothing is due. Rows left `sending`
    longer than `lease` are put back first. The caller commits at once and sends the row
    next, so that a sender that dies holds no row but the one it was sending."""
    now = now or utcnow()
    release_expired(session=session, now=now, lease=lease, model=model)
    table = model.__table__
    while True:
        due = session.exec(
            select(model.id)
            .where(model.status == NotificationStatus.pending, col(model.next_attempt_at) <= now)
            .order_by(col(model.next_attempt_at), col(model.id))
            .limit(1)
        ).first()
        if due is None:
            return None
        result = session.execute(
            sa.update(table)
            .where(table.c.id == due, table.c.status == NotificationStatus.pending)
            .values(status=NotificationStatus.sending, claimed_at=now, updated_at=now)
        )
        if result.rowcount == 1:
            return session.exec(
                select(model).where(model.id == due).execution_options(populate_existing=True)
            ).one()
        # Another sender took it between the SELECT and the UPDATE: take the next one.


def claim_due(
    *,
    session: Session,
    now: datetime | None = None,
    limit: int = 100,
    lease: timedelta = LEASE,
    model: Any = Notification,
) -> list[Any]:
    """Take up to `limit` due rows for this sender: each is moved from pending to sending by
    a conditional UPDATE, so two senders never take the same row. Rows left `sending` longer
    than `lease` (their sender died) are put back first. The caller commits.

    A sender that dies after this holds every row it took until the lease ends; senders that
    send one row at a time use `claim_next` instead."""
    now = now or utcnow()
    table = model.__table__
    release_expired(session=session, now=now, lease=lease, model=model)
    due = session.exec(
        select(model.id)
        .where(model.status == NotificationStatus.pending, col(model.next_attempt_at) <= now)
        .order_by(col(model.next_attempt_at), col(model.id))
        .limit(limit)
    ).all()
    claimed: list[int] = []
    for notification_id in due:
        result = session.execute(
            sa.update(table)
            .where(table.c.id == notification_id, table.c.status == NotificationStatus.pending)
            .values(status=NotificationStatus.sending, claimed_at=now, updated_at=now)
        )
        if result.rowcount == 1:
            claimed.append(notification_id)
    if not claimed:
        return []
    rows = session.exec(select(model).where(col(model.id).in_(claimed))).all()
    return sorted(rows, key=lambda n: claimed.index(n.id))


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 1, 2, 4, ... minutes, at most BACKOFF_CAP."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def mark_sent(
    *,
    session: Session,
    notification_id: int,
    now: datetime | None = None,
    model: Any = Notification,
) -> None:
    notification = _get(session, notification_id, model)
    notification.status = NotificationStatus.sent
    notification.sent_at = now or utcnow()
    notification.attempts += 1
    notification.last_error = ""
    session.add(notification)
    session.flush()


def mark_temporary_failure(
    *,
    session: Session,
    notification_id: int,
    error: str,
    now: datetime | None = None,
    model: Any = Notification,
) -> NotificationStatus:
    """Try again later, with exponential backoff; after MAX_ATTEMPTS give up (failed)."""
    now = now or utcnow()
    notification = _get(session, notification_id, model)
    notification.attempts += 1
    notification.last_error = error[:2_000]
    if notification.attempts >= MAX_ATTEMPTS:
        notification.status = NotificationStatus.failed
        notification.last_error = f"gave up after {notification.attempts} attempts: {error}"[:2_000]
    else:
        notification.status = NotificationStatus.pending
        notification.next_attempt_at = now + backoff(notification.attempts)
    session.add(notification)
    session.flush()
    return notification.status


def mark_failed(
    *, session: Session, notification_id: int, error: str, model: Any = Notification
) -> None:
    """A permanent failure (the server refused the message or the address): never retried."""
    notification = _get(session, notification_id, model)
    notification.attempts += 1
    notification.status = NotificationStatus.failed
    notification.last_error = error[:2_000]
    session.add(notification)
    session.flush()


def _get(session: Session, row_id: int, model: Any) -> Any:
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(f"no {model.__name__} {row_id}")
    return row
