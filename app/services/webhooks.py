"""Partner webhooks: registered URLs that receive signed notifications of new (introduced)
matches and published allocation rounds.

A notification is a `WebhookDelivery` row per webhook, written in the event's transaction
with a unique key (event + ids + webhook), and delivered by the same queue and retry rules as
email (`outbox`): claimed with a conditional UPDATE, retried with exponential backoff on
timeouts, 5xx, 408 and 429, failed for good on other 4xx answers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from app.services import outbox
from app.services.errors import Conflict, InvalidInput, NotFound
from models import PartnerToken, Webhook, WebhookDelivery, utcnow

# Event -> the scope a token needs to subscribe to it.
EVENTS = {
    "match.introduced": "matches",
    "round.published": "allocations",
}
MAX_WEBHOOKS_PER_TOKEN = 5


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the `Tandem-Signature` header."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _check_url(url: str, *, allow_insecure: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    problems = []
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problems.append("Give a full https:// address.")
    elif parts.scheme == "http" and not allow_insecure:
        problems.append("Use https://: notifications carry data that must travel encrypted.")
    elif not _valid_host(parts.hostname):
        problems.append("That host name is not valid.")
    if parts.username or parts.password:
        problems.append("Leave credentials out of the address; verify our signature instead.")
    if len(url) > 2_000:
        problems.append("Keep the address under 2,000 characters.")
    if problems:
        raise InvalidInput({"url": problems})
    return url


def _valid_host(host: str) -> bool:
    """A name DNS can hold: IDNA-encodable, labels of 1-63 characters. (A name too long as
    a whole fails to resolve at delivery, and that delivery fails for good.)"""
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(1 <= len(label) <= 63 for label in encoded.split("."))


def register(
    *,
    session: Session,
    token: PartnerToken,
    url: str,
    events: list[str],
    allow_insecure: bool = False,
) -> Webhook:
    url = _check_url(url, allow_insecure=allow_insecure)
    chosen = sorted(set(events))
    errors = []
    if not chosen:
        errors.append(f"Choose at least one event: {', '.join(EVENTS)}.")
    for event in chosen:
        if event not in EVENTS:
            errors.append(f"Unknown event {event!r}; choose from {', '.join(EVENTS)}.")
        elif EVENTS[event] not in token.scopes:
            errors.append(f"{event} needs a token with the `{EVENTS[event]}` scope.")
    if errors:
        raise InvalidInput({"events": errors})
    if len(list_for(session=session, token_id=token.id)) >= MAX_WEBHOOKS_PER_TOKEN:  # type: ignore[arg-type]
        raise Conflict(f"A token may have at most {MAX_WEBHOOKS_PER_TOKEN} webhooks.")
    webhook = Webhook(
        token_id=token.id,  # type: ignore[arg-type]
        url=url,
        events=chosen,
        secret=secrets.token_hex(32),
    )
    session.add(webhook)
    session.flush()
    return webhook


def list_for(*, session: Session, token_id: int) -> list[Webhook]:
    return list(
        session.exec(
            select(Webhook)
            .where(Webhook.token_id == token_id, col(Webhook.disabled_at).is_(None))
            .order_by(col(Webhook.id))
        )
    )


def remove(*, session: Session, token_id: int, webhook_id: int) -> None:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.token_id != token_id or webhook.disabled_at is not None:
        raise NotFound(f"No webhook {webhook_id}.")
    session.delete(webhook)
    session.flush()


def enqueue(*, session: Session, event: str, key: str, payload: dict[str, Any]) -> int:
    """A delivery to every live webhook subscribed to `event` whose token is still valid
    and may read what the event is about. In the caller's transaction; returns how many."""
    scope = EVENTS[event]
    hooks = session.exec(
        select(Webhook, PartnerToken)
        .join(PartnerToken, col(PartnerToken.id) == Webhook.token_id)
        .where(col(Webhook.disabled_at).is_(None), col(PartnerToken.revoked_at).is_(None))
    ).all()
    now = utcnow()
    rows = [
        {
            "idempotency_key": f"{event}:{key}:webhook-{hook.id}",
            "webhook_id": hook.id,
            "event": event,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }
        for hook, token in hooks
        if event in hook.events and scope in token.scopes
    ]
    added = outbox.insert_new(
        session=session, table=WebhookDelivery.__table__, rows=rows, key="idempotency_key"
    )
    if added:
        session.info[outbox.MAIL_WRITTEN] = True
    return added


@dataclass(frozen=True)
class Verdict:
    """How a delivery attempt ended: sent, retry later, or failed for good."""

    outcome: str
    reason: str = ""


def verdict(status: int | None, error: str = "") -> Verdict:
    if status is not None and 200 <= status < 300:
        return Verdict("sent")
    if status is None or status >= 500 or status in (408, 425, 429):
        return Verdict("retry", error or f"HTTP {status}")
    return Verdict("failed", f"HTTP {status}: the endpoint refused the notification")


def private_address(host: str) -> bool:
    """Whether an IP address is one a partner's public endpoint cannot have."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global
