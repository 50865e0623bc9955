"""The job queue (huey) for background work: re-ranking (and re-embedding) an item after a
change, and delivering mail, now and on a schedule.

- Embedded default: huey's SQLite storage in `instance/queue.sqlite`, consumed by
  `TANDEM_QUEUE_THREADS` threads started in the app process on its first request.
- With `REDIS_URL`: huey's Redis storage, consumed by `flask --app app worker` processes
  (on any number of machines); the app process starts no consumer threads.
- Tests use immediate mode: a task runs in the caller when it is queued.

Workers run tasks on threads, never on processes forked from the app: a process forked after
torch has run inference hangs on its next inference.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import Huey, RedisExpireHuey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlmodel import Session

from app import db, notify
from app.matcher import get_rematch
from app.services.errors import NotFound
from app.services.requeue import unfinished_rematches
from models import utcnow

log = logging.getLogger(__name__)

LOCK_TTL_S = 600
# A re-ranking asked for this long ago and not finished is taken as lost (its worker died, or
# the queue lost the task) and queued again by the every-minute sweep.
UNFINISHED_AFTER = timedelta(seconds=60)


class EmbeddedConsumer(Consumer):
    """A consumer that runs inside the web process: it leaves the server's signal handlers
    alone (the server owns Ctrl-C) and its threads are daemons that end with the process."""

    def _set_signal_handlers(self) -> None:
        return None


class Queue:
    """The app's huey instance and its tasks."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        self._consumer: EmbeddedConsumer | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

        @huey.task(name="tandem.deliver")
        def deliver_task() -> dict[str, int]:
            return self._deliver()

        @huey.periodic_task(crontab(minute="*"), name="tandem.deliver-due")
        def deliver_due_task() -> None:
            # Retries, digests that came due, events held back by the hourly limit.
            self._deliver()

        # One re-ranking at a time: they read and rewrite the same ranked lists. The lock is
        # made here, once, so that huey knows it: the embedded consumer clears it when it
        # starts (a process killed mid-task leaves it taken). On Redis it also expires.
        self._rematch_lock = huey.lock_task(
            "rematch", ttl=LOCK_TTL_S if isinstance(huey, RedisHuey) else None
        )

        @huey.task(name="tandem.rematch", retries=300, retry_delay=1)
        def rematch_task(kind: str, item_id: int) -> None:
            # A task that finds the lock taken is retried a second later.
            with self._rematch_lock:
                self._rematch(kind, item_id)
            self._deliver()

        @huey.periodic_task(crontab(minute="*"), name="tandem.requeue-unfinished")
        def requeue_task() -> None:
            self.requeue_unfinished()

        self.deliver_task = deliver_task
        self.rematch_task = rematch_task

    def _deliver(self) -> dict[str, int]:
        with self.app.app_context():
            return asdict(notify.deliver())

    def _rematch(self, kind: str, item_id: int) -> None:
        with self.app.app_context(), Session(db.engine(), expire_on_commit=False) as session:
            rematch = get_rematch()
            recompute = rematch.offer if kind == "offer" else rematch.proposal
            try:
                recompute(session, item_id)
            except NotFound:
                return  # deleted since
            session.commit()

    def rematch(self, kind: str, item_id: int) -> Any:
        """Queue re-ranking one proposal's or offer's recommendations (re-embedding it)."""
        if kind not in ("proposal", "offer"):
            raise ValueError(f"cannot re-rank a {kind!r}")
        return self.rematch_task(kind, item_id)

    def requeue_unfinished(self, older_than: timedelta = UNFINISHED_AFTER) -> list[tuple[str, int]]:
        """Queue again every re-ranking asked for more than `older_than` ago that has neither
        finished nor is waiting in the queue; returns what was queued."""
        waiting = {
            (task.args[0], task.args[1])
            for task in self.huey.pending()
            if task.name == "tandem.rematch" and len(task.args) == 2
        }
        with self.app.app_context(), Session(db.engine()) as session:
            unfinished = unfinished_rematches(
                session=session, requested_before=utcnow() - older_than
            )
        lost = [item for item in unfinished if item not in waiting]
        for kind, item_id in lost:
            log.warning("Re-ranking of %s %d was never finished: queued again", kind, item_id)
            self.rematch(kind, item_id)
        return lost

    def deliver(self) -> Any:
        """Queue a delivery run (after a commit that wrote events or outbox rows)."""
        return self.deliver_task()

    def start_threads(self) -> None:
        """Start the in-process consumer once per process (embedded mode only)."""
        threads = self.app.config["TANDEM_QUEUE_THREADS"]
        if self.huey.immediate or threads <= 0 or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            consumer = EmbeddedConsumer(
                self.huey, workers=threads, worker_type="thread", max_delay=1.0, flush_locks=True
            )
            consumer.start()
            self._consumer, self._pid = consumer, os.getpid()
            log.info("Started %d queue threads in process %d", threads, self._pid)
        # This process alone consumes the embedded queue: whatever re-ranking is unfinished
        # now was lost with a previous process, and is queued again at once.
        self.requeue_unfinished(older_than=timedelta(0))

    def stop_threads(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer, self._pid = None, None


def make_huey(app: Flask) -> Huey:
    config = app.config
    name = config["TANDEM_QUEUE_NAME"]
    backend = config["TANDEM_QUEUE"] or ("redis" if config.get("REDIS_URL") else "sqlite")
    if backend == "immediate":
        return Huey(name, immediate=True)
    if backend == "redis":
        if not config.get("REDIS_URL"):
            raise RuntimeError("TANDEM_QUEUE=redis needs REDIS_URL")
        return RedisExpireHuey(name, url=config["REDIS_URL"], expire_time=3600)
    if backend == "sqlite":
        path = config["TANDEM_QUEUE_PATH"] or str(Path(app.instance_path) / "queue.sqlite")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=path)
    raise RuntimeError(f"TANDEM_QUEUE must be sqlite, redis or immediate, not {backend!r}")


def init_app(app: Flask) -> None:
    huey = make_huey(app)
    if app.config["TANDEM_QUEUE_THREADS"] is None:
        app.config["TANDEM_QUEUE_THREADS"] = 2 if isinstance(huey, SqliteHuey) else 0
    queue = Queue(app, huey)
    app.extensions["tandem.queue"] = queue
    if app.config["TANDEM_QUEUE_THREADS"] > 0:
        app.before_request(queue.start_threads)


def get_queue() -> Queue:
    return current_app.extensions["tandem.queue"]
