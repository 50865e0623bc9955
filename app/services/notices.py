"""Match events and how they become mails: at once, or grouped in a daily or weekly digest.

An event (a new match above someone's threshold, or interest from the other side) is a
`MatchEvent` row per recipient, written in the transaction that caused it; its unique key
(kind + ids + recipient) means it can happen to someone only once. The dispatcher
(`due_batches` + `claim`) later groups each person's pending events by their preference:

- `instant`: everything pending, now, in one mail (one event makes a one-item mail). At most
  `per_hour` such mails per person per hour: a burst beyond that waits and then arrives as
  one grouped mail, so no one is flooded.
- `daily` / `weekly`: the events from before the start of the current UTC day / ISO week,
  in one digest, best first.
- `off`: dropped.

Events whose proposal or offer has since closed, been hidden, or whose match was dismissed
are dropped at dispatch: a mail should not point at something that is gone. Interest taken
back removes its unannounced events at once (`forget_interest`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.services import outbox
from models import (
    CollaborationEvent,
    Match,
    MatchEvent,
    MatchStatus,
    Notification,
    NotificationPreference,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    Role,
    User,
    utcnow,
)

Side = Literal["academic", "company"]
# Outbox kinds of the mails the dispatcher writes (what the per-hour limit counts).
UPDATE_KIND = "match-updates"
# A collaboration moved on by the other side (key: collaboration:event-N:user-M).
COLLABORATION = "collaboration"
DIGEST_KIND = "digest"
DROPPED = "dropped"
INSTANT_PER_HOUR = 4
STILL_OPEN = {
    MatchStatus.suggested,
    MatchStatus.interested_academic,
    MatchStatus.interested_company,
}


@dataclass(frozen=True)
class Arrival:
    """A match that just entered the academic's list and/or the offer's list."""

    match: Match
    academic: bool
    company: bool


def _insert_events(session: Session, rows: list[dict]) -> int:
    added = outbox.insert_new(session=session, table=MatchEvent.__table__, rows=rows, key="key")
    if added:
        session.info[outbox.MAIL_WRITTEN] = True
    return added


def _company_members(session: Session, organisation_id: int) -> list[User]:
    return list(
        session.exec(
            select(User)
            .where(
                User.organisation_id == organisation_id,
                User.role == Role.company,
                col(User.active).is_(True),
            )
            .order_by(col(User.id))
        ).all()
    )


def _wants(user: User | None) -> bool:
    return (
        user is not None
        and user.active
        and user.notification_preference != NotificationPreference.off
    )


def _event(kind: str, user: User, match: Match, side: Side, now: datetime) -> dict:
    return {
        "key": f"{kind}:proposal-{match.proposal_id}:offer-{match.offer_id}:user-{user.id}",
        "kind": kind,
        "user_id": user.id,
        "proposal_id": match.proposal_id,
        "offer_id": match.offer_id,
        "side": side,
        "score": float(match.score),
        "created_at": now,
        "mail_key": None,
    }


def record_arrivals(
    *, session: Session, arrivals: Iterable[Arrival], now: datetime | None = None
) -> int:
    """New-match events for the people on each side the match just reached, when its score
    reaches their threshold. Returns how many events were added (an event already recorded
    for that pair and person is not recorded again). Flushes, never commits."""
    now = now or utcnow()
    rows = []
    members: dict[int, list[User]] = {}
    for arrival in arrivals:
        match = arrival.match
        if match.status != MatchStatus.suggested:
            continue
        recipients: list[tuple[User, Side]] = []
        if arrival.academic:
            proposal = session.get(Proposal, match.proposal_id)
            author = session.get(User, proposal.author_id) if proposal else None
            if author is not None:
                recipients.append((author, "academic"))
        if arrival.company:
            offer = session.get(Offer, match.offer_id)
            if offer is not None:
                if offer.organisation_id not in members:
                    members[offer.organisation_id] = _company_members(
                        session, offer.organisation_id
                    )
                recipients.extend((m, "company") for m in members[offer.organisation_id])
        for user, side in recipients:
            if _wants(user) and match.score >= user.notify_min_score:
                rows.append(_event("new_match", user, match, side, now))
    return _insert_events(session, rows)


def record_interest(
    *, session: Session, match: Match, interested_side: Side, now: datetime | None = None
) -> int:
    """Interest events for everyone on the other side of the match (their preference
    decides when they hear of it). Saying "interested" twice records nothing new."""
    now = now or utcnow()
    proposal = session.get(Proposal, match.proposal_id)
    offer = session.get(Offer, match.offer_id)
    if proposal is None or offer is None:
        return 0
    if interested_side == "academic":
        recipients = _company_members(session, offer.organisation_id)
        side: Side = "company"
    else:
        author = session.get(User, proposal.author_id)
        recipients = [author] if author is not None else []
        side = "academic"
    rows = [_event("interest", user, match, side, now) for user in recipients if _wants(user)]
    return _insert_events(session, rows)


def record_collaboration(
    *,
    session: Session,
    match: Match,
    recipients: Iterable[tuple[User, Side]],
    event_id: int,
    now: datetime | None = None,
) -> int:
    """A collaboration change (history row `event_id`) for each recipient on the other side,
    mailed as their preference says, once each."""
    now = now or utcnow()
    rows = []
    for user, side in recipients:
        if _wants(user):
            row = _event(COLLABORATION, user, match, side, now)
            row["key"] = f"{COLLABORATION}:event-{event_id}:user-{user.id}"
            rows.append(row)
    return _insert_events(session, rows)


def forget_interest(*, session: Session, match: Match, withdrawn_side: Side) -> int:
    """Interest taken back: its events that no mail has announced yet are removed, so the
    other side is not told of an interest that no longer stands, and hears of it if it is
    said again. Events already mailed stay (they are the record of what was sent)."""
    recipient_side = "company" if withdrawn_side == "academic" else "academic"
    result = session.execute(
        sa.delete(MatchEvent).where(
            col(MatchEvent.kind) == "interest",
            col(MatchEvent.proposal_id) == match.proposal_id,
            col(MatchEvent.offer_id) == match.offer_id,
            col(MatchEvent.side) == recipient_side,
            sa.or_(col(MatchEvent.mail_key).is_(None), col(MatchEvent.mail_key) == DROPPED),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Update:
    """One event as a mail shows it. The academic is never named to the company; the offer's
    organisation is, marked "(unverified)" (as on the pages) until an administrator
    verifies it."""

    kind: str
    side: Side
    score: float
    proposal_id: int
    proposal_title: str
    proposal_label: str
    offer_id: int
    offer_title: str
    organisation: str
    organisation_verified: bool = True
    # For a collaboration change: the record's id and the history row (stages, details).
    collaboration_id: int | None = None
    change: CollaborationEvent | None = None


@dataclass(frozen=True)
class Batch:
    """The pending events one person gets in one mail."""

    key: str
    cadence: Literal["instant", "daily", "weekly"]
    user: User
    period: str
    event_ids: tuple[int, ...]
    updates: tuple[Update, ...]


def period_start(cadence: str, now: datetime) -> datetime:
    """Start of the current UTC day (daily) or ISO week (weekly)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if cadence == "weekly" else day


def _period_label(cadence: str, start: datetime) -> str:
    previous = start - timedelta(days=7 if cadence == "weekly" else 1)
    if cadence == "weekly":
        year, week, _ = previous.isocalendar()
        return f"{year}-W{week:02d}"
    return previous.date().isoformat()


def _update(session: Session, event: MatchEvent) -> Update | None:
    """The event as it reads now, or None when what it points at is no longer there."""
    # Imported here: catalogue builds on recommendations, which records events through us.
    from app.services import catalogue

    proposal = session.get(Proposal, event.proposal_id)
    offer = session.get(Offer, event.offer_id)
    match = session.exec(
        select(Match).where(
            Match.proposal_id == event.proposal_id, Match.offer_id == event.offer_id
        )
    ).first()
    if event.kind == COLLABORATION:
        return _collaboration_update(session, event, proposal, offer, match)
    if (
        proposal is None
        or offer is None
        or proposal.status != ProposalStatus.open
        or offer.status != OfferStatus.open
        or proposal.hidden
        or offer.hidden
        or match is None
        or match.status not in STILL_OPEN
    ):
        return None
    label = catalogue.author_label(session=session, proposal=proposal)
    return _pair_update(session, event, proposal, offer, proposal_label=label)


def _pair_update(
    session: Session, event: MatchEvent, proposal: Proposal, offer: Offer, **details: Any
) -> Update:
    """The event's pair as a mail names it; `details` are the kind's own fields."""
    organisation = session.get(Organisation, offer.organisation_id)
    return Update(
        kind=event.kind,
        side=event.side,  # type: ignore[arg-type]
        score=event.score,
        proposal_id=proposal.id,  # type: ignore[arg-type]
        proposal_title=proposal.title,
        offer_id=offer.id,  # type: ignore[arg-type]
        offer_title=offer.title,
        organisation=organisation.name if organisation else "",
        organisation_verified=organisation.verified if organisation else True,
        **details,
    )


def _collaboration_update(
    session: Session,
    event: MatchEvent,
    proposal: Proposal | None,
    offer: Offer | None,
    match: Match | None,
) -> Update | None:
    """A collaboration change as a mail shows it; None when its record is gone. Told even
    after the pair has closed: a collaboration outlives the proposal's "open" status."""
    change_id = int(event.key.split(":")[1].removeprefix("event-"))
    change = session.get(CollaborationEvent, change_id)
    if change is None or proposal is None or offer is None or match is None:
        return None
    return _pair_update(
        session,
        event,
        proposal,
        offer,
        proposal_label="",
        collaboration_id=change.collaboration_id,
        change=change,
    )


def _recent_mails(session: Session, user_id: int, since: datetime) -> int:
    return session.exec(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.kind == UPDATE_KIND,
            col(Notification.created_at) >= since,
        )
    ).one()


def due_batches(
    *, session: Session, now: datetime | None = None, per_hour: int = INSTANT_PER_HOUR
) -> list[Batch]:
    """The mails due now, one per person at most, best update first. Events that can no
    longer be shown, or whose recipient turned mails off, are marked dropped (the caller
    commits)."""
    now = now or utcnow()
    pending = session.exec(
        select(MatchEvent)
        .where(col(MatchEvent.mail_key).is_(None))
        .order_by(col(MatchEvent.user_id), col(MatchEvent.id))
    ).all()
    by_user: dict[int, list[MatchEvent]] = defaultdict(list)
    for event in pending:
        by_user[event.user_id].append(event)
    batches: list[Batch] = []
    dropped: list[int] = []
    for user_id, events in by_user.items():
        user = session.get(User, user_id)
        if not _wants(user):
            dropped.extend(e.id for e in events)  # type: ignore[misc]
            continue
        assert user is not None
        cadence = user.notification_preference.value
        if cadence == "instant":
            if _recent_mails(session, user_id, now - timedelta(hours=1)) >= per_hour:
                continue
            label = now.strftime("%Y-%m-%dT%H:%M")
        else:
            start = period_start(cadence, now)
            events = [e for e in events if e.created_at < start]
            label = _period_label(cadence, start)
        shown: list[tuple[MatchEvent, Update]] = []
        for event in events:
            update = _update(session, event)
            if update is None:
                dropped.append(event.id)  # type: ignore[arg-type]
            else:
                shown.append((event, update))
        if not shown:
            continue
        shown.sort(key=lambda pair: (-pair[1].score, pair[0].id))
        ids = tuple(sorted(e.id for e, _ in shown))  # type: ignore[misc]
        key = (
            shown[0][0].key
            if cadence == "instant" and len(shown) == 1
            else f"{cadence}:user-{user_id}:{label}:events-{ids[0]}-{ids[-1]}"
        )
        batches.append(
            Batch(
                key=key,
                cadence=cadence,  # type: ignore[arg-type]
                user=user,
                period=label,
                event_ids=ids,
                updates=tuple(u for _, u in shown),
            )
        )
    if dropped:
        table = MatchEvent.__table__
        session.execute(
            sa.update(table)
            .where(table.c.id.in_(dropped), table.c.mail_key.is_(None))
            .values(mail_key=DROPPED)
        )
        session.flush()
    return batches


def claim(*, session: Session, batch: Batch) -> bool:
    """Mark the batch's events as carried by the batch's mail, if no other dispatcher got
    there first (conditional UPDATE). The caller enqueues the mail in the same transaction
    and commits; on False it rolls back."""
    table = MatchEvent.__table__
    result = session.execute(
        sa.update(table)
        .where(table.c.id.in_(batch.event_ids), table.c.mail_key.is_(None))
        .values(mail_key=batch.key)
    )
    session.flush()
    return result.rowcount == len(batch.event_ids)
