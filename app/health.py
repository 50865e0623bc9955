"""Probes for whoever runs Tandem (a load balancer, an orchestrator, a person with curl).

- `/healthz`: the process answers. Nothing else is touched (no database), so a slow database
  never gets a healthy web process restarted.
- `/readyz`: this process can serve: the database answers, its schema is at the migrations'
  head, the job queue answers (a Redis PING with `REDIS_URL`, the embedded SQLite queue
  otherwise) and the embedding model is loaded (the first call loads it in this process and
  keeps it, so a process sent traffic after its first 200 does not stall on it). 200 when
  every check passes, 503 otherwise, with each check by name in a JSON body.

Both are public, outside sign-in, CSRF and rate limits, and say nothing about any person: a
failed check names the kind of error only (the details go to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, current_app, jsonify
from huey.storage import RedisExpireStorage, SqliteStorage

from app import db
from app.prometheus import exempt_from_portal_guards

log = logging.getLogger(__name__)

# A probe must answer within the orchestrator's timeout, even when Redis does not.
REDIS_TIMEOUT_S = 2.0
NO_STORE = {"Cache-Control": "no-store"}

bp = Blueprint("health", __name__)
Check = dict[str, Any]


@bp.get("/healthz")
def healthz() -> Response:
    response = jsonify(status="ok")
    response.headers.update(NO_STORE)
    return response


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks: dict[str, Check] = {}
    database = _run("database", _database)
    checks["database"] = database
    checks["migrations"] = (
        _run("migrations", _migrations)
        if database["ok"]
        else {"ok": False, "error": "the database did not answer"}
    )
    checks["queue"] = _run("queue", _queue)
    checks["model"] = _run("model", _model)
    ready = all(check["ok"] for check in checks.values())
    response = jsonify(status="ready" if ready else "unready", checks=checks)
    response.headers.update(NO_STORE)
    return response, 200 if ready else 503


def _run(name: str, check: Callable[[], Check]) -> Check:
    try:
        return {"ok": True, **check()}
    except Exception as exc:  # noqa: BLE001 (a probe reports every failure, never raises)
        log.warning("Readiness check %s failed: %s", name, exc)
        return {"ok": False, "error": type(exc).__name__}


def _database() -> Check:
    with db.engine().connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    return {}


def _migrations() -> Check:
    head = _migration_heads()
    with db.engine().connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != head:
        return {
            "ok": False,
            "error": "the database is not at the migrations' head: run "
            "`flask --app app db upgrade`",
            "current": sorted(current),
            "head": sorted(head),
        }
    return {"revision": ",".join(sorted(current))}


def _migration_heads() -> set[str]:
    """The head revision(s) of `migrations/`, read once per process."""
    heads = current_app.extensions.get("tandem.migration_heads")
    if heads is None:
        from app.cli.db import alembic_config

        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        current_app.extensions["tandem.migration_heads"] = heads
    return heads


def _queue() -> Check:
    from app.queue import get_queue

    huey = get_queue().huey
    if isinstance(huey.storage, RedisExpireStorage):
        client = current_app.extensions.get("tandem.health_redis")
        if client is None:
            client = redis.Redis.from_url(
                current_app.config["REDIS_URL"],
                socket_connect_timeout=REDIS_TIMEOUT_S,
                socket_timeout=REDIS_TIMEOUT_S,
            )
            current_app.extensions["tandem.health_redis"] = client
        client.ping()
        return {"backend": "redis"}
    huey.pending_count()  # the embedded queue's SQLite file answers
    return {"backend": "sqlite" if isinstance(huey.storage, SqliteStorage) else "immediate"}


def _model() -> Check:
    from app.matcher import get_encoder

    get_encoder()
    return {}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    exempt_from_portal_guards(app, bp)
