"""Partner notifications for events: written to the webhook outbox in the event's own
transaction (the same records the API shows, without contact details)."""

from __future__ import annotations

from sqlmodel import Session

from app.api import serialise
from app.services import webhooks
from models import AllocationRound, Match


def match_introduced(session: Session, match: Match) -> int:
    payload = serialise.match(session, match, frozenset()).model_dump(mode="json")
    return webhooks.enqueue(
        session=session, event="match.introduced", key=f"match-{match.id}", payload=payload
    )


def round_published(session: Session, round_id: int) -> int:
    allocation_round = session.get(AllocationRound, round_id)
    if allocation_round is None:
        return 0
    payload = serialise.allocation_round(session, allocation_round, frozenset()).model_dump(
        mode="json"
    )
    return webhooks.enqueue(
        session=session, event="round.published", key=f"round-{round_id}", payload=payload
    )
