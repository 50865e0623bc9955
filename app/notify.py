"""Turn pending match events into mails (at once or as digests), then send what is due
(mails and partner webhooks).

`deliver()` is what the queue runs after every change that may mail someone, and once a
minute: dispatch (events -> outbox rows, each batch in its own transaction with the events
it carries), then `mail.send_pending()` until nothing is due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template
from sqlmodel import Session

from app import db, mail, webhooks
from app.services import notices, outbox

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
        if update.side == "company":
            return f"New match for your offer “{_short(update.offer_title)}”"
        return f"New match for “{_short(update.proposal_title)}”: {_short(update.offer_title)}"
    matches = sum(u.kind == "new_match" for u in updates)
    interest = len(updates) - matches
    parts = []
    if matches:
        parts.append(f"{matches} new match{'es' if matches > 1 else ''}")
    if interest:
        parts.append(f"{interest} expression{'s' if interest > 1 else ''} of interest")
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


@dataclass(frozen=True)
class DeliveryReport:
    dispatched: int
    sent: int
    retried: int
    failed: int
    webhooks_sent: int = 0
    webhooks_failed: int = 0


def deliver(*, now: datetime | None = None, batch_size: int = 100) -> DeliveryReport:
    """Dispatch pending events, then send every due outbox row (in batches)."""
    dispatched = dispatch(now=now)
    sent = retried = failed = 0
    while True:
        report = mail.send_pending(limit=batch_size)
        sent, retried, failed = sent + report.sent, retried + report.retried, failed + report.failed
        if report.sent + report.retried + report.failed < batch_size:
            break
    hooks = webhooks.send_pending(limit=batch_size)
    if dispatched or sent or retried or failed:
        log.info(
            "Delivery: %d digests/updates written, %d sent, %d to retry, %d failed",
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
    )
