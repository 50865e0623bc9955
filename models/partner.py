"""Partner API tokens: a partner organisation's key to the JSON export. Only a hash is kept."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import TimestampMixin, enum_type, json_list, utcnow
from models.enums import NotificationStatus


class PartnerToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(min_length=1, max_length=200, description="Who holds it, e.g. a funder")
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the token")
    prefix: str = Field(max_length=16, description="The token's first characters, to recognise it")
    scopes: list[str] = Field(default_factory=list, sa_type=json_list())
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    last_used_at: datetime | None = Field(default=None)
    revoked_at: datetime | None = Field(default=None, index=True)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Webhook(SQLModel, table=True):
    """A partner's URL for signed notifications. Its random signing secret is shown once, at
    registration; it is kept (we sign with it), unlike tokens, which are only hashed."""

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="partnertoken.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2_000)
    events: list[str] = Field(default_factory=list, sa_type=json_list())
    secret: str = Field(max_length=64, description="HMAC-SHA256 key for the signatures")
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = Field(default=None)


class WebhookDelivery(TimestampMixin, table=True):
    """One notification to one webhook: the outbox row of a webhook, written in the event's
    transaction and delivered (with retries) by the same queue as email."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=300, unique=True)
    webhook_id: int = Field(foreign_key="webhook.id", ondelete="CASCADE", index=True)
    event: str = Field(max_length=50)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: NotificationStatus = Field(
        default=NotificationStatus.pending,
        sa_type=enum_type(NotificationStatus, "webhook_delivery_status"),
        index=True,
    )
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_at: datetime | None = Field(default=None)
    sent_at: datetime | None = Field(default=None, description="When the partner answered 2xx")
    last_error: str = Field(default="", max_length=2_000, sa_type=sa.Text)
