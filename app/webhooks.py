"""Deliver due webhook notifications: POST signed JSON to each partner's URL.

Each request carries `Tandem-Event`, `Tandem-Delivery` (the delivery's id: the same on every
retry, so a partner can drop duplicates) and `Tandem-Signature: t=<unix time>,v1=<hex>`, the
HMAC-SHA256 of `"<t>.<body>"` with the webhook's secret. Partners check the signature and that
`t` is recent. Redirects are not followed; addresses that resolve to private networks are
refused in production (no requests into our own network on a partner's behalf).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlmodel import Session, col, select

from app import db
from app.services import outbox, webhooks
from models import PartnerToken, Webhook, WebhookDelivery, utcnow

log = logging.getLogger(__name__)
TIMEOUT_S = 10


# Deliveries one run sends at most. Each is claimed just before it is sent, so a sender that
# dies holds only the one it was sending; the lease covers one delivery's worst case (the
# address check, connect, send and read, each within TIMEOUT_S, with a wide margin for a slow
# resolver and clocks that differ between machines).
BATCH = 20
LEASE = timedelta(minutes=2)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a second DNS answer."""

    def __init__(self, host: str, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, **kwargs: Any) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, context=self._tls, **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class WebhookReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def allow_private() -> bool:
    config = current_app.config
    if config.get("TANDEM_WEBHOOKS_ALLOW_PRIVATE") is not None:
        return bool(config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"])
    return config["TANDEM_ENV"] in ("development", "test")


def _address(url: str) -> str:
    """The IP address to connect to: the first the host resolves to, after checking that
    none is private (unless private addresses are allowed). ValueError says why not."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot resolve {host}: {exc}") from exc
    private = sorted({a for a in addresses if webhooks.private_address(a)})
    if private and not allow_private():
        raise ValueError(f"{host} resolves to a private address ({', '.join(private)})")
    return addresses[0]


def _post(url: str, address: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST without following redirects; (status, "") or (None, why it failed)."""
    parts = urlsplit(url)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(parts.hostname or "", address, port=parts.port, timeout=TIMEOUT_S)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status, "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def send_pending(*, limit: int = BATCH) -> WebhookReport:
    engine = db.engine()
    sent = retried = failed = 0
    for _ in range(min(limit, BATCH)):
        with Session(engine, expire_on_commit=False) as session:
            delivery = outbox.claim_next(session=session, lease=LEASE, model=WebhookDelivery)
            session.commit()
            if delivery is None:
                break
            found = session.exec(
                select(Webhook, PartnerToken)
                .join(PartnerToken, col(PartnerToken.id) == Webhook.token_id)
                .where(Webhook.id == delivery.webhook_id)
            ).first()
        hook, token = found if found is not None else (None, None)
        status: int | None = None
        if hook is None or hook.disabled_at is not None:
            verdict = webhooks.Verdict("failed", "the webhook was removed")
        elif token is None or token.revoked_at is not None:
            verdict = webhooks.Verdict("failed", "the partner's token was revoked")
        else:
            try:
                status, verdict = _attempt(delivery, hook)
            except Exception as exc:  # noqa: BLE001 - one bad endpoint must not stop the rest
                verdict = webhooks.Verdict("retry", f"{type(exc).__name__}: {exc}")
        try:
            outcome = _record(engine, delivery, hook, verdict, status)
        except LookupError:
            continue  # the webhook (and its deliveries) were deleted meanwhile
        sent += outcome == "sent"
        retried += outcome == "pending"
        failed += outcome == "failed"
        if outcome != "sent":
            log.warning("Webhook delivery %s not delivered: %s", delivery.id, verdict.reason)
    return WebhookReport(sent=sent, retried=retried, failed=failed)


def _attempt(delivery: WebhookDelivery, hook: Webhook) -> tuple[int | None, webhooks.Verdict]:
    try:
        address = _address(hook.url)
    except ValueError as exc:
        return None, webhooks.Verdict("failed", f"refused: {exc}")
    body = json.dumps(
        {
            "id": delivery.id,
            "event": delivery.event,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tandem-Webhooks/1",
        "Tandem-Event": delivery.event,
        "Tandem-Delivery": str(delivery.id),
        "Tandem-Signature": webhooks.signature(
            secret=hook.secret, timestamp=int(time.time()), body=body
        ),
    }
    status, error = _post(hook.url, address, body, headers)
    return status, webhooks.verdict(status, error)


def _record(
    engine: Any,
    delivery: WebhookDelivery,
    hook: Webhook | None,
    verdict: webhooks.Verdict,
    status: int | None,
) -> str:
    """Mark the delivery; returns its new status."""
    with Session(engine) as session:
        if verdict.outcome == "sent":
            outbox.mark_sent(session=session, notification_id=delivery.id, model=WebhookDelivery)
            state = "sent"
        elif verdict.outcome == "retry":
            state = outbox.mark_temporary_failure(
                session=session,
                notification_id=delivery.id,
                error=verdict.reason,
                model=WebhookDelivery,
            ).value
        else:
            outbox.mark_failed(
                session=session,
                notification_id=delivery.id,
                error=verdict.reason,
                model=WebhookDelivery,
            )
            state = "failed"
            if status == 410 and hook is not None:
                # "Gone": the partner retired the endpoint; stop sending to it.
                stored = session.get(Webhook, hook.id)
                if stored is not None:
                    stored.disabled_at = utcnow()
                    session.add(stored)
        session.commit()
    return state
