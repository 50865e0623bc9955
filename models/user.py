"""Users: academics, company members and administrators."""

from datetime import datetime
from typing import TYPE_CHECKING, Optional
from uuid import uuid4

import sqlalchemy as sa
from pydantic import field_validator
from sqlmodel import Field, Relationship, SQLModel

from models._base import TimestampMixin, enum_type
from models.enums import NotificationPreference, Role

if TYPE_CHECKING:
    from models.organisation import Organisation
    from models.proposal import Proposal
    from models.publication import Publication


class UserBase(SQLModel):
    email: str = Field(min_length=3, max_length=320, unique=True)
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(sa_type=enum_type(Role, "user_role"))
    notification_preference: NotificationPreference = Field(
        default=NotificationPreference.instant,
        sa_type=enum_type(NotificationPreference, "notification_preference"),
    )
    notify_min_score: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Mail about a new match only when its score reaches this (0-1)",
    )
    collaboration_reminders: bool = Field(
        default=True,
        description="A digest of collaborations that have not moved for a while (opt-out)",
    )

    @field_validator("email")
    @classmethod
    def _lowercase_email(cls, value: str) -> str:
        return value.strip().lower()


class User(UserBase, TimestampMixin, table=True):
    # Emails are unique case-insensitively: they are stored lowercased (checked by the
    # database) and the unique index then covers every spelling.
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=255)
    # Sign-in state, in the shape Flask-Security expects (the app maps it as its Account).
    fs_uniquifier: str = Field(default_factory=lambda: uuid4().hex, max_length=64, unique=True)
    active: bool = Field(default=True, description="False once an administrator suspends them")
    confirmed_at: datetime | None = Field(default=None, description="When the email was verified")
    tf_primary_method: str | None = Field(default=None, max_length=64)
    tf_totp_secret: str | None = Field(default=None, max_length=255)
    # The time step of the last authenticator code accepted: a code is good once.
    tf_totp_last_counter: int | None = Field(default=None)
    tf_phone_number: str | None = Field(default=None, max_length=128)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)

    organisation: Optional["Organisation"] = Relationship(back_populates="members")
    publications: list["Publication"] = Relationship(back_populates="author")
    proposals: list["Proposal"] = Relationship(back_populates="author")

    @property
    def email_verified(self) -> bool:
        return self.confirmed_at is not None


class UserCreate(UserBase):
    password: str = Field(min_length=12, max_length=200)
    organisation_id: int | None = None


class UserUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    notification_preference: NotificationPreference | None = None
    notify_min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    collaboration_reminders: bool | None = None
    organisation_id: int | None = None


class UserPublic(SQLModel):
    """What may leave the system about a user before any introduction: no email."""

    id: int
    name: str
    role: Role
    organisation_id: int | None
