"""Domain events: what a service records, in the transaction of its change, so that the
delivery layer (`app.notify`) announces it after the commit, whatever entry point (a page,
an API call, a CLI command, a job) called the service.

An event is a kind and the id of what it is about; delivery reads the rows it needs when
it runs. Each event is announced once: `record` adds nothing when the event is already
there, and `claim` lets one deliverer take it (a conditional UPDATE), in the transaction
that writes its messages.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import outbox
from models import DomainEvent, utcnow

MATCH_INTRODUCED = "match.introduced"
ROUND_PUBLISHED = "round.published"
KINDS = (MATCH_INTRODUCED, ROUND_PUBLISHED)
# The key of an event names its kind and its subject, as webhook delivery keys do.
SUBJECT = {MATCH_INTRODUCED: "match", ROUND_PUBLISHED: "round"}


def key_for(kind: str, subject_id: int) -> str:
    """`match.introduced:match-12`: unique, so an event is recorded once."""
    return f"{kind}:{SUBJECT[kind]}-{subject_id}"


def record(*, session: Session, kind: str, subject_id: int, now: datetime | None = None) -> bool:
    """Record that the event happened, in the caller's transaction, and ask for delivery after
    the commit. Returns False when it was already recorded. Flushes, never commits."""
    if kind not in SUBJECT:
        raise ValueError(f"unknown event kind {kind!r}")
    row = {
        "key": key_for(kind, subject_id),
        "kind": kind,
        "subject_id": subject_id,
        "created_at": now or utcnow(),
        "handled_at": None,
    }
    added = outbox.insert_new(session=session, table=DomainEvent.__table__, rows=[row], key="key")
    if added:
        # The queue runs delivery after the commit of a transaction that set this flag.
        session.info[outbox.MAIL_WRITTEN] = True
    return bool(added)


def pending(*, session: Session, after_id: int = 0, limit: int = 100) -> list[DomainEvent]:
    """Events not yet announced, oldest first, from after `after_id` (to page through them)."""
    return list(
        session.exec(
            select(DomainEvent)
            .where(col(DomainEvent.handled_at).is_(None), col(DomainEvent.id) > after_id)
            .order_by(col(DomainEvent.id))
            .limit(limit)
        )
    )


def claim(*, session: Session, event_id: int, now: datetime | None = None) -> bool:
    """Mark the event handled, if no other deliverer has (conditional UPDATE: the second of
    two waits for the first's commit and then finds nothing to update). The caller writes
    the event's messages in the same transaction and commits; on False it rolls back."""
    table = DomainEvent.__table__
    result = session.execute(
        sa.update(table)
        .where(table.c.id == event_id, table.c.handled_at.is_(None))
        .values(handled_at=now or utcnow())
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
