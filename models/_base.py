"""Shared column helpers: naming convention, timestamps and enums stored as checked strings."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

# Deterministic constraint names: Alembic needs them to alter or drop constraints, and SQLite's
# batch mode rebuilds tables by name.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Aware UTC now; SQLModel's UTCDateTime stores it as UTC on SQLite and PostgreSQL alike."""
    return datetime.now(UTC)


def enum_type(enum_class: type[enum.Enum], name: str) -> sa.Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint, storing the member *values*.

    Native PostgreSQL enums make every new member a migration with locking; a CHECK constraint
    rejects invalid values on both databases just as well.
    """
    return sa.Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_class),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


# One research area, data domain or similar label; a list holds at most MAX_TAGS of them.
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_TAGS = 20

# The dates a proposal or an offer may name (a start, a deadline, an end of availability):
# anything outside is a typing slip such as year 0001 or 20300, not a plan.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def json_list() -> sa.JSON:
    """A JSON list column (lists of short strings: research areas, domains, email domains)."""
    return sa.JSON()


class TimestampMixin(SQLModel):
    """Creation and last-change times (UTC); `updated_at` moves on every ORM update."""

    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(
        default_factory=utcnow,
        nullable=False,
        index=True,
        sa_column_kwargs={"onupdate": utcnow},
    )
