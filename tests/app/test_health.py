"""Probes and metrics for whoever runs Tandem: /healthz, /readyz and Prometheus /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from app import create_app
from app.cli.db import alembic_config
from app.queue import get_queue
from models import Notification, NotificationStatus

TOKEN = "metrics-token-for-tests"
# Addresses where nothing listens: a connection is refused at once.
UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-folder/tandem.db",
    "postgresql": "postgresql://postgres@127.0.0.1:1/tandem",
}


def _app_like(app: Flask, **config: Any) -> Flask:
    """Another app with the test app's configuration, changed by `config`."""
    other = create_app({**app.config, **config})
    other.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    return other


def _sample(body: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with (at least) these labels, None when absent."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return None


def _scrape(client: FlaskClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


@pytest.fixture
def guarded(app: Flask) -> FlaskClient:
    """The test app with a metrics token set."""
    app.config["TANDEM_METRICS_TOKEN"] = TOKEN
    return app.test_client()


def test_healthz_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_with_every_check_named(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "queue", "model"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["queue"]["backend"] == "immediate"


@pytest.mark.parametrize("dialect", sorted(UNREACHABLE))
def test_without_the_database_healthz_answers_readyz_is_503_and_metrics_say_so(
    app: Flask, dialect: str
) -> None:
    down = _app_like(app, DATABASE_URL=UNREACHABLE[dialect], TANDEM_METRICS_TOKEN=TOKEN)
    client = down.test_client()
    try:
        assert client.get("/healthz").status_code == 200, "healthz never asks the database"
        response = client.get("/readyz")
        assert response.status_code == 503
        checks = response.json["checks"]
        assert response.json["status"] == "unready"
        assert checks["database"] == {"ok": False, "error": "OperationalError"}
        assert checks["migrations"]["ok"] is False
        assert checks["queue"]["ok"] is True
        assert checks["model"]["ok"] is True
        body = _scrape(client)
        assert _sample(body, "tandem_metrics_source_up", source="database") == 0
        assert _sample(body, "tandem_metrics_source_up", source="queue") == 1
    finally:
        down.extensions["tandem.engine"].dispose()


def test_readyz_is_503_while_migrations_are_behind(app: Flask, client: FlaskClient) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    (head,) = scripts.get_heads()
    previous = scripts.get_revision(head).down_revision
    engine = app.extensions["tandem.engine"]
    with engine.begin() as connection:
        command.stamp(alembic_config(connection), previous)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        migrations = response.json["checks"]["migrations"]
        assert migrations["ok"] is False
        assert migrations["current"] == [previous]
        assert migrations["head"] == [head]
        assert "db upgrade" in migrations["error"]
        assert response.json["checks"]["database"]["ok"] is True
    finally:
        with engine.begin() as connection:
            command.stamp(alembic_config(connection), head)
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_redis_queue_does_not_answer(app: Flask) -> None:
    queued = _app_like(app, TANDEM_QUEUE="redis", REDIS_URL="redis://127.0.0.1:1/0")
    try:
        response = queued.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.json["checks"]["queue"] == {"ok": False, "error": "ConnectionError"}
    finally:
        queued.extensions["tandem.engine"].dispose()


def test_metrics_need_the_token_when_one_is_set(guarded: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = guarded.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "tandem_" not in response.get_data(as_text=True)
    response = guarded.get(
        "/metrics",
        headers={"Authorization": f"Bearer {TOKEN}"},
        environ_overrides={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 200, "the token opens it from anywhere"


def test_without_a_token_metrics_answer_this_machine_only(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    elsewhere = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 403
    assert "TANDEM_METRICS_TOKEN" in elsewhere.get_data(as_text=True)
    relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 403, "a local proxy relaying a stranger is not this machine"


def test_metrics_count_the_mail_outbox_and_webhook_deliveries_by_state(
    guarded: FlaskClient, session: Session, make_user: Callable[..., Any]
) -> None:
    user = make_user(email="ada.okafor@nb.example.org", name="Ada Okafor")
    states = [NotificationStatus.pending] * 3 + [NotificationStatus.sent, NotificationStatus.failed]
    for number, status in enumerate(states):
        session.add(
            Notification(
                idempotency_key=f"test:{number}",
                kind="test",
                user_id=user.id,
                recipient_name=user.name,
                recipient_email=user.email,
                subject="A subject",
                text_body="A body",
                status=status,
            )
        )
    session.commit()
    body = _scrape(guarded)
    mail = {
        status: _sample(body, "tandem_mail_outbox_messages", status=status.value)
        for status in NotificationStatus
    }
    assert mail == {"pending": 3, "sending": 0, "sent": 1, "failed": 1}
    for status in NotificationStatus:
        assert _sample(body, "tandem_webhook_deliveries", status=status.value) == 0
    assert _sample(body, "tandem_queue_jobs", state="pending") == 0
    assert _sample(body, "tandem_metrics_source_up", source="database") == 1
    assert user.email not in body and "Okafor" not in body, "no personal data"


def test_request_latency_is_a_histogram_per_endpoint_method_and_status(
    guarded: FlaskClient,
) -> None:
    def count(body: str, endpoint: str, method: str, status: str) -> float:
        labels = {"endpoint": endpoint, "method": method, "status": status}
        return _sample(body, "tandem_http_request_duration_seconds_count", **labels) or 0

    before = _scrape(guarded)
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/proposals/").status_code == 200
    assert guarded.get("/no-such-page").status_code == 404
    after = _scrape(guarded)
    for endpoint, status in (
        ("health.healthz", "200"),
        ("proposals.index", "200"),
        ("unmatched", "404"),
    ):
        grown = count(after, endpoint, "GET", status) - count(before, endpoint, "GET", status)
        assert grown == 1, endpoint
    assert _sample(
        after,
        "tandem_http_request_duration_seconds_bucket",
        endpoint="health.healthz",
        method="GET",
        status="200",
        le="+Inf",
    )


def test_rerankings_run_by_the_queue_are_timed(
    app: Flask, guarded: FlaskClient, make_proposal: Callable[..., Any]
) -> None:
    proposal = make_proposal()
    before = _sample(_scrape(guarded), "tandem_rematch_duration_seconds_count", kind="proposal")
    with app.app_context():
        get_queue().rematch("proposal", proposal.id)  # immediate: runs here, as a worker would
    after = _sample(_scrape(guarded), "tandem_rematch_duration_seconds_count", kind="proposal")
    assert (after or 0) - (before or 0) == 1


def test_probes_are_never_rate_limited(app: Flask) -> None:
    limited = _app_like(app, RATELIMIT_DEFAULT="2 per minute", TANDEM_METRICS_TOKEN=TOKEN)
    client = limited.test_client()
    try:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
            assert _scrape(client)
        assert client.get("/proposals/").status_code == 200
        assert client.get("/proposals/").status_code == 200
        assert client.get("/proposals/").status_code == 429, "the default limit applies"
    finally:
        limited.extensions["tandem.engine"].dispose()
