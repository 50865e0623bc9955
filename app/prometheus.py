"""Prometheus metrics at `/metrics`: request latency per endpoint, re-ranking durations, and
what waits (queued jobs, the mail outbox and webhook deliveries by state), read at scrape time.

Several processes serve one Tandem under gunicorn (and `flask --app app worker` processes
run the re-rankings), so the latency and re-ranking histograms use prometheus-client's
multiprocess mode whenever `PROMETHEUS_MULTIPROC_DIR` names a directory: each process writes
its own file there and a scrape of any web process adds them all up. `gunicorn.conf.py` sets
it for the web processes; `make worker` gives workers the same folder. Without it (`make
run`, tests) the metrics live in this process alone.

Who may read `/metrics`: with `TANDEM_METRICS_TOKEN` set, a request that sends it as
`Authorization: Bearer <token>`; without, only requests from this machine (a loopback
address, not relayed by a proxy unless `TANDEM_PROXY_COUNT` says which proxies to trust).
Nothing here carries personal data: labels are endpoint names, methods, statuses and states.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    request,
    request_finished,
    request_started,
)
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlmodel import Session

from app import db
from app.services.recommendations import RecomputeSummary
from app.services.rematching import Rematch
from models import Notification, NotificationStatus, WebhookDelivery

log = logging.getLogger(__name__)

# Methods a browser or client sends; anything else is counted as "other" (a label per made-up
# method would let anyone grow the series without bound).
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Requests no route matched (404, 405) share one endpoint label, for the same reason.
UNMATCHED = "unmatched"

REQUEST_SECONDS = Histogram(
    "tandem_http_request_duration_seconds",
    "Time from the request's arrival in Flask to its response, per endpoint.",
    ["endpoint", "method", "status"],
)
REMATCH_SECONDS = Histogram(
    "tandem_rematch_duration_seconds",
    "Time one re-ranking (recompute) of a proposal's or an offer's recommendations took.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)

bp = Blueprint("prometheus", __name__)


@contextmanager
def observe_rematch(kind: str) -> Iterator[None]:
    """Time one re-ranking of a `kind` ("proposal" or "offer"), wherever it runs."""
    started = time.perf_counter()
    try:
        yield
    finally:
        REMATCH_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)


class TimedRematch(Rematch):
    """`Rematch` whose re-rankings are observed in `tandem_rematch_duration_seconds`."""

    def proposal(self, session: Session, proposal_id: int) -> RecomputeSummary:
        with observe_rematch("proposal"):
            return super().proposal(session, proposal_id)

    def offer(self, session: Session, offer_id: int) -> RecomputeSummary:
        with observe_rematch("offer"):
            return super().offer(session, offer_id)


def _request_started(sender: Flask, **_: Any) -> None:
    g.tandem_request_started = time.perf_counter()


def _request_finished(sender: Flask, response: Response, **_: Any) -> None:
    started = g.pop("tandem_request_started", None)
    if started is None:
        return
    observe_request(
        request.endpoint, request.method, response.status_code, time.perf_counter() - started
    )


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """Count one answered request (Flask's, or a kept page answered before Flask)."""
    REQUEST_SECONDS.labels(
        endpoint=endpoint or UNMATCHED,
        method=method if method in METHODS else "other",
        status=str(status),
    ).observe(seconds)


class BacklogCollector:
    """What waits, read when Prometheus scrapes: queued jobs, the mail outbox and webhook
    deliveries by state (one COUNT ... GROUP BY each, on indexed columns). A source that does
    not answer is reported by `tandem_metrics_source_up` instead of failing the scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "tandem_metrics_source_up",
            "Whether the source of the backlog figures answered this scrape (1) or not (0).",
            labels=["source"],
        )
        with self.app.app_context():
            try:
                yield from self._queue()
                up.add_metric(["queue"], 1)
            except (redis.RedisError, sqlite3.Error, OSError) as exc:
                log.warning("Metrics: the job queue did not answer: %s", exc)
                up.add_metric(["queue"], 0)
            try:
                yield from self._outboxes()
                up.add_metric(["database"], 1)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("Metrics: the database did not answer: %s", exc)
                up.add_metric(["database"], 0)
        yield up

    @staticmethod
    def _queue() -> Iterator[Metric]:
        # Not through app.queue: it imports this module (by app.matcher).
        huey = current_app.extensions["tandem.queue"].huey
        jobs = GaugeMetricFamily(
            "tandem_queue_jobs",
            "Jobs on the queue: waiting to run (pending) or scheduled for later (retries).",
            labels=["state"],
        )
        pending, scheduled = huey.pending_count(), huey.scheduled_count()
        jobs.add_metric(["pending"], pending)
        jobs.add_metric(["scheduled"], scheduled)
        yield jobs

    @staticmethod
    def _outboxes() -> Iterator[Metric]:
        with db.engine().connect() as connection:
            for table, name, documentation in (
                (Notification, "tandem_mail_outbox_messages", "Emails in the outbox, by state."),
                (
                    WebhookDelivery,
                    "tandem_webhook_deliveries",
                    "Webhook deliveries, by state.",
                ),
            ):
                column = table.__table__.c.status  # type: ignore[attr-defined]
                rows = connection.execute(sa.select(column, sa.func.count()).group_by(column)).all()
                counts = {NotificationStatus(status): count for status, count in rows}
                family = GaugeMetricFamily(name, documentation, labels=["status"])
                for status in NotificationStatus:
                    family.add_metric([status.value], counts.get(status, 0))
                yield family


class _ProcessMetrics:
    """This process's own registry (latency, re-ranking, and the process collectors), for
    a scrape outside multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(app: Flask) -> CollectorRegistry:
    """Everything one scrape returns: every process's histograms, and the backlog now."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())  # type: ignore[arg-type]
    registry.register(BacklogCollector(app))  # type: ignore[arg-type]
    return registry


def _from_this_machine() -> bool:
    """A request from a loopback address that no proxy relayed (unless the proxies in front
    are trusted, `TANDEM_PROXY_COUNT`, so that `remote_addr` is the client's own)."""
    relayed = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
    if relayed and not current_app.config.get("TANDEM_PROXY_COUNT"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _refusal() -> Response | None:
    token = current_app.config.get("TANDEM_METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return None
        return Response(
            "Metrics need the token of TANDEM_METRICS_TOKEN (Authorization: Bearer ...).\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="tandem-metrics"'},
        )
    if _from_this_machine():
        return None
    return Response(
        "Metrics are served to this machine only; set TANDEM_METRICS_TOKEN to scrape them "
        "from elsewhere.\n",
        status=403,
        mimetype="text/plain",
    )


@bp.get("/metrics")
def metrics() -> Response:
    refusal = _refusal()
    if refusal is not None:
        refusal.headers["Cache-Control"] = "no-store"
        return refusal
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(scrape_registry(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """Time every request and serve `/metrics` (outside sign-in, CSRF and rate limits)."""
    request_started.connect(_request_started, app)
    request_finished.connect(_request_finished, app)
    app.register_blueprint(bp)
    exempt_from_portal_guards(app, bp)


def exempt_from_portal_guards(app: Flask, blueprint: Blueprint) -> None:
    """Probes and scrapers send no CSRF token and must never be rate limited."""
    from app.auth import csrf

    csrf.exempt(blueprint)
    limiter = app.extensions.get("tandem.limiter")
    if limiter is not None:
        limiter.exempt(blueprint)
