"""Re-rankings that were asked for and never finished (a worker killed mid-task, a queue
emptied): found from the items themselves, so that a sweep can queue them again."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Offer, Proposal


def unfinished_rematches(*, session: Session, requested_before: datetime) -> list[tuple[str, int]]:
    """Every proposal and offer whose last re-ranking request (before `requested_before`) has
    not been followed by a finished re-ranking: ("proposal" | "offer", id), oldest first."""
    found: list[tuple[datetime, str, int]] = []
    for kind, model in (("proposal", Proposal), ("offer", Offer)):
        requested, done = col(model.rematch_requested_at), col(model.rematched_at)
        rows = session.exec(
            select(model.id, model.rematch_requested_at).where(
                requested.is_not(None),
                requested < requested_before,
                sa.or_(done.is_(None), done < requested),
            )
        ).all()
        found += [(at, kind, item_id) for item_id, at in rows]
    return [(kind, item_id) for _, kind, item_id in sorted(found)]
