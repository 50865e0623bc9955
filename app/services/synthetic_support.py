"""Small pieces the synthetic catalogue is built from: names, web domains, unusable
passwords, bulk inserts and row counts (see `app.services.synthetic`)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, func, select

from app.services.synthetic_vocabulary import (
    Area,
)
from models import (
    Embedding,
    Match,
    Offer,
    Organisation,
    Proposal,
    Publication,
    User,
)

PROPOSALS_PER_ACADEMIC = 2  # on average; every academic writes at least one
ACADEMICS_PER_UNIVERSITY = 100
OFFERS_PER_COMPANY = 8
REPORTED_TABLES: tuple[type[Any], ...] = (
    Organisation,
    User,
    Publication,
    Proposal,
    Offer,
    Match,
    Embedding,
)


def unusable_password_hash() -> str:
    """An argon2id hash in the app's format whose digest is random bytes: it parses, so
    signing in fails the ordinary way, and no password (known to anyone) verifies."""

    def b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")

    return f"$argon2id$v=19$m=65536,t=3,p=4${b64(16)}${b64(32)}"


def table_counts(*, session: Session) -> dict[str, int]:
    """Rows per table of the catalogue."""
    return {
        model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
        for model in REPORTED_TABLES
    }


def _count_by(session: Session, column: Any) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).group_by(column)).all()
    return {getattr(value, "value", value): count for value, count in sorted(rows)}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base 2`, `base 3`... whichever is not taken yet (and take it)."""
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base} {number}"
    taken.add(candidate.lower())
    return candidate


def _unique_domain(slug: str, taken: set[str]) -> str:
    """`slug.example`, or `slug-2.example`... whichever no organisation has yet."""
    domain, number = f"{slug}.example", 1
    while domain in taken:
        number += 1
        domain = f"{slug}-{number}.example"
    taken.add(domain)
    return domain


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in bulk (batched by the driver) and return their ids, in order."""
    if not rows:
        return []
    table = model.__table__
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())


@dataclass
class _Person:
    id: int
    organisation: int
    areas: tuple[Area, ...] = ()
