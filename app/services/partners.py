"""Partner tokens: created and revoked by administrators, shown once, stored as a hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.services.errors import InvalidInput, NotFound
from models import PartnerToken, utcnow

# What a token may read. `contacts` adds the names and emails of introduced people to matches.
SCOPES = {
    "proposals": "Published proposals (researchers shown by field and institution type)",
    "offers": "Published offers and their terms",
    "organisations": "Organisations: name, kind, email domains, verified",
    "matches": "Introduced matches, with score components and explanation",
    "allocations": "Published allocation rounds and their assignments",
    "outcomes": "What followed introductions of public pairs (stage, agreement, GPU hours, "
    "outcome) and the programme report",
    "contacts": "With matches: the names and emails of the people introduced",
    "webhooks": "Register URLs for signed notifications of introductions and published rounds",
}
TOKEN_PREFIX = "tdm_"
# last_used_at is written at most this often per token (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: PartnerToken
    secret: str
    """The token itself: shown once, never stored."""


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise InvalidInput(
            {"scopes": [f"Unknown scope {', '.join(unknown)}; choose from {', '.join(SCOPES)}."]}
        )
    if not chosen:
        raise InvalidInput({"scopes": ["Choose at least one scope."]})
    return chosen


def create_token(
    *, session: Session, name: str, scopes: Iterable[str], created_by_id: int | None = None
) -> NewToken:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise InvalidInput({"name": ["Give the partner's name (at most 200 characters)."]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PartnerToken(
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:12],
        scopes=check_scopes(scopes),
        created_by_id=created_by_id,
    )
    session.add(token)
    session.flush()
    return NewToken(token=token, secret=secret)


def revoke_token(*, session: Session, token_id: int, now: datetime | None = None) -> PartnerToken:
    token = session.get(PartnerToken, token_id)
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        session.add(token)
        session.flush()
    return token


def list_tokens(*, session: Session) -> list[PartnerToken]:
    return list(
        session.exec(
            select(PartnerToken).order_by(
                col(PartnerToken.revoked_at).is_not(None), col(PartnerToken.id).desc()
            )
        )
    )


def get_token(*, session: Session, token_id: int) -> PartnerToken:
    token = session.get(PartnerToken, token_id)
    if token is None:
        raise NotFound("No such token.")
    return token


def find_token(*, session: Session, secret: str) -> PartnerToken | None:
    """The token with this secret, revoked or not (the caller tells the two apart)."""
    return session.exec(
        select(PartnerToken).where(PartnerToken.token_hash == hash_token(secret))
    ).first()


def mark_used(*, session: Session, token: PartnerToken, now: datetime | None = None) -> bool:
    """Record a use that was answered (the API keeps it with the answer, not with an error);
    returns whether anything was written (at most once a minute)."""
    now = now or utcnow()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return False
    token.last_used_at = now
    session.add(token)
    session.flush()
    return True
