"""Deliver due webhook notifications: POST signed JSON to each partner's URL.

Each request carries `Tandem-Event`, `Tandem-Delivery` (the delivery's id: the same on every
retry, so a partner can drop duplicates) and `Tandem-Signature: t=<unix time>,v1=<hex>`, the
HMAC-SHA256 of `"<t>.<body>"` with the webhook's secret. Partners check the signature and that
`t` is recent. Redirects are not followed; addresses that resolve to private networks are
refused in production (no requests into our own network on a partner's behalf).
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlmodel import Session, col, select

from app import db
from app.services import outbox, webhooks
from models import Webhook, WebhookDelivery, utcnow

log = logging.getLogger(__name__)
TIMEOUT_S = 10


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


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


def _refused_host(url: str) -> str:
    """Why the URL's host may not be called, or "" when it may."""
    if allow_private():
        return ""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    private = sorted(a for a in addresses if webhooks.private_address(a))
    return f"{host} resolves to a private address ({', '.join(private)})" if private else ""


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_S) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def send_pending(*, limit: int = 100) -> WebhookReport:
    engine = db.engine()
    with Session(engine, expire_on_commit=False) as session:
        claimed = outbox.claim_due(session=session, limit=limit, model=WebhookDelivery)
        session.commit()
        ids = {d.webhook_id for d in claimed}
        hooks = {h.id: h for h in session.exec(select(Webhook).where(col(Webhook.id).in_(ids)))}
    key = current_app.config["SECRET_KEY"]
    sent = retried = failed = 0
    for delivery in claimed:
        hook = hooks.get(delivery.webhook_id)
        status: int | None = None
        error = ""
        if hook is None or hook.disabled_at is not None:
            verdict = webhooks.Verdict("failed", "the webhook was removed")
        elif refused := _refused_host(hook.url):
            verdict = webhooks.Verdict("failed", f"refused: {refused}")
        else:
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
                    secret=webhooks.secret_for(key=key, webhook_id=hook.id),  # type: ignore[arg-type]
                    timestamp=int(time.time()),
                    body=body,
                ),
            }
            status, error = _post(hook.url, body, headers)
            verdict = webhooks.verdict(status, error)
        with Session(engine) as session:
            if verdict.outcome == "sent":
                outbox.mark_sent(
                    session=session, notification_id=delivery.id, model=WebhookDelivery
                )
                sent += 1
            elif verdict.outcome == "retry":
                state = outbox.mark_temporary_failure(
                    session=session,
                    notification_id=delivery.id,
                    error=verdict.reason,
                    model=WebhookDelivery,
                )
                retried += state.value == "pending"
                failed += state.value == "failed"
            else:
                outbox.mark_failed(
                    session=session,
                    notification_id=delivery.id,
                    error=verdict.reason,
                    model=WebhookDelivery,
                )
                failed += 1
                if status == 410 and hook is not None:
                    # "Gone": the partner retired the endpoint; stop sending to it.
                    stored = session.get(Webhook, hook.id)
                    if stored is not None:
                        stored.disabled_at = utcnow()
                        session.add(stored)
            session.commit()
        if verdict.outcome != "sent":
            log.warning("Webhook delivery %s not delivered: %s", delivery.id, verdict.reason)
    return WebhookReport(sent=sent, retried=retried, failed=failed)
