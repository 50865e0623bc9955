"""The partner feed: every record a partner may see, in change order, for incremental sync.

Each resource is read in `(updated_at, id)` order with a keyset cursor, so a partner that
pages on from its last cursor sees every change exactly once per version: no offset that
shifts when rows are inserted, no record skipped or repeated. A record that stops being
public (a proposal hidden by an administrator, an author suspended, an offer back to draft)
moves to the end of the order like any change, and comes out as a *tombstone* (its id in
`deleted`): the partner removes its copy.

Records changed in the last `settle` seconds are held back, so that a transaction that
stamped `updated_at` a moment before committing cannot commit behind a cursor already
handed out.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services.errors import InvalidInput
from models import (
    AllocationRound,
    AllocationRoundStatus,
    Collaboration,
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    User,
    utcnow,
)

MAX_LIMIT = 500
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Resource:
    """One exported kind of record: its table, the scope that reads it, and which rows are
    public (the others are tombstones)."""

    name: str
    model: Any
    scope: str
    public: Callable[[], sa.ColumnElement[bool]]


def _public_proposal() -> sa.ColumnElement[bool]:
    return sa.and_(
        Proposal.status != ProposalStatus.draft,
        col(Proposal.hidden).is_(False),
        col(Proposal.author_id).in_(select(User.id).where(col(User.active).is_(True))),
    )


def _public_offer() -> sa.ColumnElement[bool]:
    return sa.and_(Offer.status != OfferStatus.draft, col(Offer.hidden).is_(False))


def _public_match() -> sa.ColumnElement[bool]:
    return sa.and_(
        Match.status == MatchStatus.introduced,
        col(Match.proposal_id).in_(select(Proposal.id).where(_public_proposal())),
        col(Match.offer_id).in_(select(Offer.id).where(_public_offer())),
    )


def _public_collaboration() -> sa.ColumnElement[bool]:
    return col(Collaboration.match_id).in_(select(Match.id).where(_public_match()))


RESOURCES = {
    "proposals": Resource("proposals", Proposal, "proposals", _public_proposal),
    "offers": Resource("offers", Offer, "offers", _public_offer),
    "organisations": Resource("organisations", Organisation, "organisations", sa.true),
    # Only introduced matches (suggestions and one-sided interest are private to the sides),
    # and only while both their proposal and their offer are public.
    "matches": Resource("matches", Match, "matches", lambda: _public_match()),
    "allocation-rounds": Resource(
        "allocation-rounds",
        AllocationRound,
        "allocations",
        lambda: AllocationRound.status == AllocationRoundStatus.published,
    ),
    # What followed an introduction: shown under the same consent rule as the match itself.
    "collaborations": Resource(
        "collaborations", Collaboration, "outcomes", lambda: _public_collaboration()
    ),
}


def as_utc(value: datetime, field: str = "updated_since") -> datetime:
    """In UTC (a time without a zone is taken as UTC); InvalidInput when out of range."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput({field: ["That time is out of range."]}) from exc


# Every text that matches this is a cursor (the OpenAPI document says so): the microseconds
# since 1970 of the last change handed out, and its record's id.
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9]{1,10}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    updated_at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.updated_at - _EPOCH) // _MICROSECOND}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """A cursor of the documented form, or one given out before it (base64 JSON)."""
        if re.fullmatch(CURSOR_PATTERN, text):
            stamp, record_id = text.split(".")
            # No id is above MAX_ID (the column's range), so a larger one means the same place.
            return cls(_EPOCH + int(stamp) * _MICROSECOND, min(int(record_id), MAX_ID))
        return cls._decode_base64(text)

    @classmethod
    def _decode_base64(cls, text: str) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            stamp, record_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
            when = datetime.fromisoformat(stamp)
            if when.tzinfo is None or not isinstance(record_id, int):
                raise ValueError
            if not 0 <= record_id <= MAX_ID:
                raise ValueError
            return cls(when.astimezone(UTC), record_id)
        except (
            ValueError,
            TypeError,
            OverflowError,
            binascii.Error,
            json.JSONDecodeError,
        ) as exc:
            raise InvalidInput(
                {"cursor": ["Not a cursor this API gave out: pass next_cursor unchanged."]}
            ) from exc


@dataclass(frozen=True)
class Page:
    public: list[Any]
    deleted: list[tuple[int, datetime]]
    next_cursor: Cursor | None
    has_more: bool


def _ordered(
    resource: Resource,
    *,
    after: Cursor | None,
    since: datetime | None,
    settled_before: datetime,
) -> sa.Select:
    model = resource.model
    statement = select(model, resource.public().label("public")).where(
        col(model.updated_at) <= settled_before
    )
    if after is not None:
        statement = statement.where(
            sa.tuple_(col(model.updated_at), col(model.id)) > (after.updated_at, after.id)
        )
    elif since is not None:
        statement = statement.where(col(model.updated_at) >= since)
    return statement.order_by(col(model.updated_at), col(model.id))


def page(
    *,
    session: Session,
    resource: Resource,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    limit: int = 100,
    settle: timedelta = timedelta(seconds=2),
    now: datetime | None = None,
) -> Page:
    """One page of the resource's changes after `cursor` (or since `updated_since`, or from
    the beginning)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput({"limit": [f"Give a limit from 1 to {MAX_LIMIT}."]})
    after = Cursor.decode(cursor) if cursor else None
    since = as_utc(updated_since) if updated_since is not None else None
    settled_before = (now or utcnow()) - settle
    rows = session.exec(
        _ordered(resource, after=after, since=since, settled_before=settled_before).limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    public = [record for record, visible in rows if visible]
    deleted = [(record.id, as_utc(record.updated_at)) for record, visible in rows if not visible]
    last = rows[-1][0] if rows else None
    next_cursor = Cursor(as_utc(last.updated_at), last.id) if last is not None else after
    return Page(public=public, deleted=deleted, next_cursor=next_cursor, has_more=has_more)


def one(*, session: Session, resource: Resource, record_id: int) -> Any | None:
    """The public record with this id, or None (missing and private look the same)."""
    model = resource.model
    return session.exec(select(model).where(col(model.id) == record_id, resource.public())).first()


def everything(
    *,
    session: Session,
    resource: Resource,
    since: datetime | None = None,
    batch: int = 500,
    settle: timedelta = timedelta(0),
    now: datetime | None = None,
) -> Iterator[tuple[Any, bool]]:
    """Every record (public, or a tombstone when `since` is given) in change order, read in
    keyset batches so memory stays flat however many there are."""
    cursor: str | None = None
    while True:
        chunk = page(
            session=session,
            resource=resource,
            cursor=cursor,
            updated_since=since,
            limit=batch,
            settle=settle,
            now=now,
        )
        for record in chunk.public:
            yield record, True
        if since is not None:
            for record_id, updated_at in chunk.deleted:
                yield (record_id, updated_at), False
        session.expunge_all()
        if not chunk.has_more or chunk.next_cursor is None:
            return
        cursor = chunk.next_cursor.encode()
