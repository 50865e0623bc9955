"""The delivery layer: turn recorded events into messages, then send what is due (mails and
partner webhooks), whatever entry point recorded the events.

`deliver()` is what the queue runs after every change that may mail someone, and once a
minute: announce (domain events -> introduction and round mails and webhook deliveries,
each event in its own transaction with marking it handled), dispatch (match events ->
outbox rows, at once or as digests, each batch in its own transaction with the events it
carries), then `mail.send_pending()` until nothing is due, then the webhooks.

It runs in jobs as well as after requests, so links come from `TANDEM_BASE_URL`, never from
a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template
from sqlmodel import Session

from app import db, mail, webhooks
from app.api import events as partner_events
from app.services import collaborations, events, matches, notices, outbox, round_publishing
from models import Match

log = logging.getLogger(__name__)

SUBJECT_TITLE = 60


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= SUBJECT_TITLE else title[: SUBJECT_TITLE - 1] + "…"


def subject_for(batch: notices.Batch) -> str:
    """Say what happened: the one event, or what the digest holds."""
    updates = batch.updates
    if len(updates) == 1 and batch.cadence == "instant":
        update = updates[0]
        if update.kind == "interest":
            if update.side == "company":
                return f"A researcher is interested in your offer “{_short(update.offer_title)}”"
            unverified = "" if update.organisation_verified else " (unverified)"
            return (
                f"{update.organisation}{unverified} is interested in your proposal "
                f"“{_short(update.proposal_title)}”"
            )
        if update.kind == notices.COLLABORATION and update.change is not None:
            stage = collaborations.STAGE_LABELS.get(update.change.to_stage, "")  # type: ignore[call-overload]
            return f"Collaboration “{_short(update.proposal_title)}”: {stage}"
        if update.side == "company":
            return f"New match for your offer “{_short(update.offer_title)}”"
        return f"New match for “{_short(update.proposal_title)}”: {_short(update.offer_title)}"
    matches = sum(u.kind == "new_match" for u in updates)
    changes = sum(u.kind == notices.COLLABORATION for u in updates)
    interest = len(updates) - matches - changes
    parts = []
    if matches:
        parts.append(f"{matches} new match{'es' if matches > 1 else ''}")
    if interest:
        parts.append(f"{interest} expression{'s' if interest > 1 else ''} of interest")
    if changes:
        parts.append(f"{changes} collaboration update{'s' if changes > 1 else ''}")
    what = " and ".join(parts)
    if batch.cadence == "daily":
        return f"Your daily Tandem digest: {what}"
    if batch.cadence == "weekly":
        return f"Your weekly Tandem digest: {what}"
    return f"Tandem: {what}"


def email_for(batch: notices.Batch) -> outbox.Email:
    base = current_app.config["TANDEM_BASE_URL"].rstrip("/")
    context = {
        "batch": batch,
        "user": batch.user,
        "dashboard_url": f"{base}/dashboard",
        "account_url": f"{base}/account",
        "base": base,
    }
    return outbox.Email(
        key=batch.key,
        kind=notices.DIGEST_KIND if batch.cadence != "instant" else notices.UPDATE_KIND,
        to_email=batch.user.email,
        to_name=batch.user.name,
        user_id=batch.user.id,
        subject=subject_for(batch),
        text=render_template("email/updates.txt", **context),
        html=render_template("email/updates.html", **context),
    )


def dispatch(*, now: datetime | None = None) -> int:
    """Write the mails that are due for pending match events; returns how many."""
    engine = db.engine()
    per_hour = current_app.config["TANDEM_MAILS_PER_HOUR"]
    with Session(engine, expire_on_commit=False) as session:
        batches = notices.due_batches(session=session, now=now, per_hour=per_hour)
        session.commit()
    written = 0
    for batch in batches:
        email = email_for(batch)
        with Session(engine) as session:
            if notices.claim(session=session, batch=batch) and outbox.enqueue(
                session=session, emails=[email], now=now
            ):
                session.commit()
                written += 1
            else:
                session.rollback()
    return written


def _base_url() -> str:
    return current_app.config["TANDEM_BASE_URL"].rstrip("/")


def introduction_emails(introductions: list[matches.Introduction]) -> list[outbox.Email]:
    """One mail per person introduced, keyed by the pair and the recipient."""
    dashboard_url = f"{_base_url()}/dashboard"
    collaborations_url = f"{_base_url()}/collaborations/"
    emails = []
    for intro in introductions:
        context = {
            "intro": intro,
            "dashboard_url": dashboard_url,
            "collaborations_url": collaborations_url,
        }
        emails.append(
            outbox.Email(
                key=f"introduction:proposal-{intro.proposal_id}:offer-{intro.offer_id}:"
                f"{intro.recipient.email}",
                kind="introduction",
                to_email=intro.recipient.email,
                to_name=intro.recipient.name,
                subject=f"Introduction: {intro.proposal_title} × {intro.offer_title}",
                text=render_template("email/introduction.txt", **context),
                html=render_template("email/introduction.html", **context),
            )
        )
    return emails


def round_emails(round_id: int, round_notices: list[round_publishing.Notice]) -> list[outbox.Email]:
    """One mail per notice of a published round, keyed by the round and the recipient."""
    base_url = _base_url()
    emails = []
    for notice in round_notices:
        context = {**notice.context, "base_url": base_url}
        emails.append(
            outbox.Email(
                key=f"round:{round_id}:{notice.to}",
                kind="round_published",
                to_email=notice.to,
                to_name=notice.name,
                subject=notice.subject,
                text=render_template(f"email/{notice.template}.txt", **context),
                html=render_template(f"email/{notice.template}.html", **context),
            )
        )
    return emails


def _announce_introduction(session: Session, match_id: int, now: datetime | None) -> None:
    match = session.get(Match, match_id)
    if match is None:
        return  # deleted since (with its proposal or offer)
    emails = introduction_emails(matches.introductions(session=session, match=match))
    outbox.enqueue(session=session, emails=emails, now=now)
    partner_events.match_introduced(session, match)


def _announce_round(session: Session, round_id: int, now: datetime | None) -> None:
    mails = round_emails(
        round_id, round_publishing.round_notices(session=session, round_id=round_id)
    )
    outbox.enqueue(session=session, emails=mails, now=now)
    partner_events.round_published(session, round_id)


ANNOUNCERS = {
    events.MATCH_INTRODUCED: _announce_introduction,
    events.ROUND_PUBLISHED: _announce_round,
}


def announce(*, now: datetime | None = None, batch_size: int = 100) -> int:
    """Write the mails and webhook deliveries of every recorded domain event not announced
    yet; returns how many events were announced.

    Each event is claimed (marked handled) in the transaction that writes its messages, so
    two deliverers never announce one event twice, and a failure leaves it for the next run.
    The outbox keys are those of the mails and deliveries themselves, so an event whose
    messages are already there (written by an older code path) adds nothing."""
    engine = db.engine()
    announced, after_id = 0, 0
    while True:
        with Session(engine) as session:
            waiting = [
                (event.id, event.kind, event.subject_id)
                for event in events.pending(session=session, after_id=after_id, limit=batch_size)
            ]
        for event_id, kind, subject_id in waiting:
            after_id = event_id  # type: ignore[assignment]
            with Session(engine) as session:
                try:
                    if not events.claim(session=session, event_id=event_id, now=now):  # type: ignore[arg-type]
                        session.rollback()
                        continue
                    ANNOUNCERS[kind](session, subject_id, now)
                    session.commit()
                    announced += 1
                except Exception:
                    # One event that cannot be announced must not hold up the others, nor the
                    # mails already due; it stays pending and is tried again on the next run.
                    session.rollback()
                    log.exception("Could not announce event %s %s", kind, subject_id)
        if len(waiting) < batch_size:
            return announced


@dataclass(frozen=True)
class DeliveryReport:
    dispatched: int
    sent: int
    retried: int
    failed: int
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    announced: int = 0


def deliver(*, now: datetime | None = None, batch_size: int = 100) -> DeliveryReport:
    """Announce pending domain events and dispatch pending match events, then send every due
    outbox row (in batches) and webhook delivery."""
    announced = announce(now=now, batch_size=batch_size)
    dispatched = dispatch(now=now)
    sent = retried = failed = 0
    while True:
        report = mail.send_pending(limit=batch_size)
        sent, retried, failed = sent + report.sent, retried + report.retried, failed + report.failed
        if report.sent + report.retried + report.failed < batch_size:
            break
    hooks = webhooks.send_pending(limit=batch_size)
    if announced or dispatched or sent or retried or failed:
        log.info(
            "Delivery: %d events announced, %d digests/updates written, %d sent, %d to retry, "
            "%d failed",
            announced,
            dispatched,
            sent,
            retried,
            failed,
        )
    return DeliveryReport(
        dispatched=dispatched,
        sent=sent,
        retried=retried,
        failed=failed,
        webhooks_sent=hooks.sent,
        webhooks_failed=hooks.failed,
        announced=announced,
    )


REMINDER_KIND = collaborations.REMINDER_KIND
DEFAULT_REMINDER_DAYS = 14


def reminder_emails(reminders: list[collaborations.Reminder], days: int) -> list[outbox.Email]:
    """One digest per person of their collaborations that have not moved for `days` days."""
    base = _base_url()
    found = []
    for reminder in reminders:
        count = len(reminder.items)
        context = {
            "reminder": reminder,
            "user": reminder.user,
            "days": days,
            "base": base,
            "account_url": f"{base}/account#reminders",
        }
        found.append(
            outbox.Email(
                key=reminder.key,
                kind=REMINDER_KIND,
                to_email=reminder.user.email,
                to_name=reminder.user.name,
                user_id=reminder.user.id,
                subject=f"{count} collaboration{'s' if count > 1 else ''} waiting for an update",
                text=render_template("email/collaboration_reminder.txt", **context),
                html=render_template("email/collaboration_reminder.html", **context),
            )
        )
    return found


def send_reminders(*, days: int | None = None, now: datetime | None = None) -> int:
    """Put the due collaboration reminder digests in the outbox, in one transaction, then
    deliver; returns how many were new. The outbox key names the person and the interval,
    so running it again within an interval adds nothing. Run by `flask collaborations
    remind` and daily by the queue."""
    days = days or current_app.config.get(
        "TANDEM_COLLABORATION_REMINDER_DAYS", DEFAULT_REMINDER_DAYS
    )
    with Session(db.engine(), expire_on_commit=False) as session:
        due = collaborations.due_reminders(session=session, days=days, now=now)
        written = outbox.enqueue(session=session, emails=reminder_emails(due, days), now=now)
        session.commit()
    if written:
        deliver(now=now)
    return written
