"""The mail outbox: one row per email to send, written in the transaction of its event; and
the events themselves (match events per recipient, domain events per happening)."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import TimestampMixin, enum_type, utcnow
from models.enums import NotificationStatus


class Notification(TimestampMixin, table=True):
    """One email. `idempotency_key` (event kind + ids + recipient) is unique, so one event
    can never produce two rows; the rendered message is frozen when the event happens."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=300, unique=True)
    kind: str = Field(max_length=50, index=True, description="e.g. introduction, round")
    user_id: int | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL", index=True
    )
    recipient_name: str = Field(default="", max_length=200)
    recipient_email: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    text_body: str = Field(sa_type=sa.Text)
    html_body: str = Field(default="", sa_type=sa.Text)
    status: NotificationStatus = Field(
        default=NotificationStatus.pending,
        sa_type=enum_type(NotificationStatus, "notification_status"),
        index=True,
    )
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_at: datetime | None = Field(default=None, description="When a sender took it")
    sent_at: datetime | None = Field(default=None)
    last_error: str = Field(default="", max_length=2_000, sa_type=sa.Text)


class MatchEvent(SQLModel, table=True):
    """Something about a match one user should hear of: a new match above their threshold,
    or interest from the other side. Written in the event's transaction; the dispatcher
    mails it (at once, or in the user's daily or weekly digest) and records which mail
    carried it in `mail_key`, so each event reaches each person once."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True, description="kind + ids + recipient")
    kind: str = Field(max_length=20, description="new_match or interest")
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", index=True)
    offer_id: int = Field(foreign_key="offer.id", ondelete="CASCADE", index=True)
    side: str = Field(max_length=20, description="the recipient's side: academic or company")
    score: float = Field(description="The match's score when the event happened")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    mail_key: str | None = Field(
        default=None,
        max_length=300,
        index=True,
        description="The outbox key of the mail that carried it; null while pending",
    )


class DomainEvent(SQLModel, table=True):
    """Something that happened which people and partners are told of: a match introduced, a
    round published. A service writes it in the transaction of the change, whatever entry
    point called the service; the delivery layer (`app.notify`) later turns it into mails
    and webhook deliveries, in one transaction with setting `handled_at`, so each event is
    announced once. `key` (kind + subject) is unique: an event happens once."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True, description="e.g. match.introduced:match-12")
    kind: str = Field(max_length=50, description="match.introduced or round.published")
    subject_id: int = Field(description="The match's or the round's id")
    created_at: datetime = Field(default_factory=utcnow)
    handled_at: datetime | None = Field(
        default=None, index=True, description="When its messages were written; null until then"
    )
