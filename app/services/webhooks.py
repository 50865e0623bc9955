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
import re
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

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


# A port from 1 to 65535.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# What the API accepts: ASCII only (hosts in punycode), a regex that reads the same in Python
# and in JSON Schema.
URL_PATTERN = rf"^https?://[A-Za-z0-9-]{{1,63}}(\.[A-Za-z0-9-]{{1,63}})*(:{_PORT})?(/[!-~]*)?$"
# ...and outside development: https, and a host name (its last label starts with a letter, as
# every top-level domain does), never an IP address. No form of address, private or not
# (`10.0.0.5`, `2130706433`, `0x7f.1`), can then slip through; names are checked against
# private networks again at each delivery, since their addresses can change.
PUBLIC_URL_PATTERN = (
    rf"^https://([A-Za-z0-9-]{{1,63}}\.)*[A-Za-z][A-Za-z0-9-]{{0,62}}(:{_PORT})?(/[!-~]*)?$"
)


def _check_url(url: str, *, allow_private: bool) -> str:
    """The URL if notifications may go there; otherwise InvalidInput says why, at `url`.
    Accepted is exactly what the OpenAPI document allows: its pattern (URL_PATTERN, or
    PUBLIC_URL_PATTERN outside development) and at most 2,000 characters."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise InvalidInput({"url": ["Give a full https:// address."]}) from None
    problems = []
    if parts.scheme not in ("https", "http") or not hostname:
        problems.append("Give a full https:// address.")
    elif parts.scheme == "http" and not allow_private:
        problems.append("Use https://: notifications carry data that must travel encrypted.")
    elif not _valid_host(hostname):
        problems.append("That host name is not valid.")
    elif not allow_private and (problem := _address_problem(hostname)):
        problems.append(problem)
    elif not _valid_port(parts):
        problems.append("Give a port from 1 to 65535, or none.")
    elif not re.fullmatch(URL_PATTERN if allow_private else PUBLIC_URL_PATTERN, url):
        problems.append(
            "Write the address as https://host.example.org/path, in ASCII (a host name in "
            "punycode), without spaces."
        )
    if parts.username or parts.password:
        problems.append("Leave credentials out of the address; verify our signature instead.")
    if len(url) > 2_000:
        problems.append("Keep the address under 2,000 characters.")
    if problems:
        raise InvalidInput({"url": problems})
    return url


def _address_problem(host: str) -> str | None:
    """Why a host is refused outside development: an IP address instead of a name."""
    if re.match(r"[A-Za-z]", host.encode("idna").decode("ascii").rsplit(".", 1)[-1]):
        return None
    address = _ip_literal(host)
    if address is not None and private_address(address):
        named = host if host == address else f"{host} ({address})"
        return (
            f"{named} is a private address: notifications only go to public endpoints. "
            "Give the endpoint's host name."
        )
    return "Give the endpoint's host name, not an IP address."


def _ip_literal(host: str) -> str | None:
    """The address a host written as an IP address stands for, in any form the resolver reads
    (`127.0.0.1`, `127.1`, `2130706433`, `0x7f.1`, `::ffff:127.0.0.1`), else None."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return str(ipaddress.IPv4Address(socket.inet_aton(host)))
    except OSError:
        return None


def _valid_port(parts: SplitResult) -> bool:
    try:
        port = parts.port
    except ValueError:
        return False
    return port is None or port >= 1


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
    allow_private: bool = False,
) -> Webhook:
    """A new webhook of the token. `allow_private` (development) also takes http:// and IP
    addresses; otherwise a literal address is refused here, and a name at each delivery if it
    resolves to a private network."""
    url = _check_url(url, allow_private=allow_private)
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
    """Whether an IP address is one a partner's public endpoint cannot have: not global, or
    an IPv6 address that carries a non-global IPv4 one (mapped, 6to4, Teredo, NAT64)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if not address.is_global:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return any(inner is not None and not inner.is_global for inner in embedded)
    return False


# The well-known NAT64 prefix (RFC 6052): the last 32 bits are an IPv4 address.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
