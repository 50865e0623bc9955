"""Bulk export: everything a token may see, streamed record by record in constant memory, as
NDJSON (one JSON object per line) or one JSON document. Used by `GET /api/v1/export.ndjson`
and `flask --app app export`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from sqlmodel import Session

from app.api.serialise import SERIALISERS
from app.services import feed


def lines(
    *,
    session: Session,
    scopes: frozenset[str],
    since: datetime | None = None,
    settle: timedelta = timedelta(0),
    now: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per record (`{"resource", "record"}`), per tombstone when `since` is given
    (`{"resource", "deleted"}`), and last `{"cursors": {...}}`: where each list endpoint
    takes over to keep the copy in sync."""
    cursors: dict[str, str | None] = {}
    for name, resource in feed.RESOURCES.items():
        if resource.scope not in scopes:
            continue
        serialise = SERIALISERS[name]
        last: feed.Cursor | None = None
        for item, public in feed.everything(
            session=session, resource=resource, since=since, settle=settle, now=now
        ):
            if public:
                last = feed.Cursor(feed.as_utc(item.updated_at), item.id)
                record = serialise(session, item, scopes).model_dump(mode="json")
                yield {"resource": name, "record": record}
            else:
                record_id, updated_at = item
                last = feed.Cursor(updated_at, record_id)
                yield {
                    "resource": name,
                    "deleted": {"id": record_id, "updated_at": updated_at.isoformat()},
                }
        cursors[name] = last.encode() if last is not None else None
    yield {"cursors": cursors}


def ndjson(items: Iterable[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_json(items: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One JSON document, `{"proposals": [...], ..., "deleted": {...}, "cursors": {...}}`,
    written as it goes. Returns the number of records written."""
    count = 0
    current: str | None = None
    deleted: dict[str, list[Any]] = {}
    out.write("{")
    for item in items:
        if "cursors" in item:
            if current is not None:
                out.write("]")
            separator = "," if current is not None else ""
            out.write(f'{separator}"deleted":{json.dumps(deleted)}')
            out.write(f',"cursors":{json.dumps(item["cursors"])}')
            continue
        name = item["resource"]
        if "deleted" in item:
            deleted.setdefault(name, []).append(item["deleted"])
            continue
        if name != current:
            if current is not None:
                out.write("],")
            out.write(f"{json.dumps(name)}:[")
            current = name
        else:
            out.write(",")
        out.write(json.dumps(item["record"], ensure_ascii=False, separators=(",", ":")))
        count += 1
    out.write("}\n")
    return count
