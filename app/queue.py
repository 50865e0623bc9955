"""The job queue (huey) for background work: re-ranking (and re-embedding) an item after a
change, embedding texts in bulk, and delivering mail, now and on a schedule.

- Embedded default: huey's SQLite storage in `instance/queue.sqlite`, consumed by
  `TANDEM_QUEUE_THREADS` threads in the process that serves the app. The app factory
  (`init_app`) starts them when it builds an app to serve: `flask run` (in the reloader's
  serving child only) or any server that calls `create_app` itself; other `flask` commands
  (`db upgrade`, `demo load`, `worker`...) start none. `Queue.start_threads` starts them by
  hand (idempotent per process).
- With `REDIS_URL`: huey's Redis storage, consumed by `flask --app app worker` processes
  (on any number of machines); the app process starts no consumer threads.
- Tests use immediate mode: a task runs in the caller when it is queued.

Bulk embedding (`Queue.embed_bulk`, for long imports and recomputes): the texts without a
stored vector, sorted by length, are cut into chunks; on Redis each chunk is a job that any
worker takes, and the caller waits for all of them (with a progress callback) before it
ranks; on the embedded or immediate queue the caller embeds the chunks itself. A chunk
embedded twice (a retried job) stores each vector once.

Workers run tasks on threads, never on processes forked from the app: a process forked after
torch has run inference hangs on its next inference.

Re-rankings run one at a time (they read and rewrite the same ranked lists), under a lock
that a dead worker cannot keep: on Redis it expires `LOCK_TTL_S` after it was last renewed,
and a thread renews it every `LOCK_RENEW_S` while its re-ranking runs, so a worker killed
mid-task frees it within `LOCK_TTL_S` while live workers on any number of machines still
exclude each other. The embedded queue has one consuming process, which clears the lock when
its threads start. A re-ranking lost with its worker (taken off the queue, never finished) is
found from the items themselves and queued again: when a worker or the embedded threads
start, and by an every-minute sweep.

On Redis, workers publish what they do on the channel `<queue name>.job-events`:
"executing|complete|error|retrying|locked <task> <args>", "rematching <kind> <id>" once a
re-ranking holds the lock, "ready worker <pid>" when a worker starts taking jobs; whoever
waits for a job (a benchmark, a test) is woken when it happens instead of polling.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import click
import redis
import sqlalchemy as sa
from flask import Flask, current_app
from flask.helpers import get_debug_flag
from huey import Huey, RedisExpireHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.exceptions import ResultTimeout, TaskException, TaskLockedException
from huey.signals import (
    SIGNAL_COMPLETE,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_LOCKED,
    SIGNAL_RETRYING,
)
from huey.storage import RedisExpireStorage
from sqlmodel import Session
from werkzeug.serving import is_running_from_reloader

from app import db, notify
from app.matcher import get_encoder, get_rematch
from app.services import outbox, ranking_model
from app.services.embedding_store import embed_missing, missing_chunks
from app.services.errors import NotFound
from app.services.rematching import REMATCH_REQUESTS
from app.services.requeue import unfinished_rematches
from matching import Encoder
from models import utcnow

log = logging.getLogger(__name__)

# The Redis re-ranking lock: free this long after its worker stopped renewing it (died), renewed
# this often while its re-ranking runs (four renewals can fail before it lapses), and no
# longer renewed after LOCK_MAX_HOLD_S (a re-ranking running that long is stuck).
LOCK_TTL_S = 15
LOCK_RENEW_S = 3
LOCK_MAX_HOLD_S = 600
# A re-ranking asked for this long ago and not finished is taken as lost (its worker died, or
# the queue lost the task) and queued again by the every-minute sweep.
UNFINISHED_AFTER = timedelta(seconds=60)
# Bulk embedding: texts per job (a few seconds of model time each), and how long the caller
# waits for one job before it gives up (no worker running, or one stuck).
EMBED_CHUNK = 256
EMBED_JOB_TIMEOUT_S = 1800
RematchItem = tuple[str, int]
# What workers on Redis publish on the queue's job-events channel, as they happen.
JOB_EVENTS = (SIGNAL_EXECUTING, SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_RETRYING, SIGNAL_LOCKED)


class BulkEmbeddingFailed(RuntimeError):
    """A bulk-embedding job failed after its retries, or never finished."""


@dataclass(frozen=True)
class BulkEmbedding:
    """What `Queue.embed_bulk` did: texts embedded, in how many chunks, and where."""

    texts: int
    chunks: int
    on_workers: bool


class RematchLock(Protocol):
    def held(self, kind: str, item_id: int) -> Any:
        """A context manager: holds the lock for re-ranking this item, or raises huey's
        TaskLockedException (the task is retried) when another re-ranking holds it."""

    def holder(self) -> RematchItem | None:
        """The item whose re-ranking holds the lock now, when that is known."""


class EmbeddedRematchLock:
    """huey's own lock for the embedded queue: its one consuming process clears it when its
    threads start (a process killed mid-task leaves it taken)."""

    def __init__(self, huey: Huey) -> None:
        self._lock = huey.lock_task("rematch")

    @contextmanager
    def held(self, kind: str, item_id: int) -> Iterator[None]:
        with self._lock:
            yield

    def holder(self) -> RematchItem | None:
        return None


class RedisRematchLock:
    """One re-ranking at a time across every worker, never held long by a dead one.

    redis-py's lock on huey's key for the "rematch" lock (so huey's `lock_task("rematch")`,
    `is_locked` and `flush_locks` see it), with an expiry of LOCK_TTL_S that a thread renews
    every LOCK_RENEW_S while the re-ranking runs. Its value, checked by every renewal and the
    release, is a random token followed by the item, so that only the holder renews or frees
    it, and the sweep can tell which item is being re-ranked."""

    def __init__(self, huey: Huey) -> None:
        storage = huey.storage
        if not isinstance(storage, RedisExpireStorage):
            raise TypeError("the Redis re-ranking lock needs huey's RedisExpireStorage")
        self._redis: redis.Redis = storage.conn
        self.key = storage.result_key(f"{huey.name}.lock.rematch")
        # Notified after each renewal of a lock this instance holds (`renewals` counts them).
        self.renewed = threading.Condition()
        self.renewals = 0

    @contextmanager
    def held(self, kind: str, item_id: int) -> Iterator[None]:
        lock = self._redis.lock(self.key, timeout=LOCK_TTL_S, thread_local=False)
        if not lock.acquire(blocking=False, token=f"{uuid.uuid4().hex} {kind} {item_id}"):
            raise TaskLockedException("another re-ranking holds the lock")
        finished = threading.Event()
        renewer = threading.Thread(
            target=self._renew,
            args=(lock, finished),
            name=f"rematch-lock-{kind}-{item_id}",
            daemon=True,
        )
        renewer.start()
        try:
            yield
        finally:
            finished.set()
            renewer.join()
            try:
                lock.release()
            except redis.RedisError as exc:
                log.warning("The re-ranking lock was not released (it expires): %s", exc)

    def _renew(self, lock: Any, finished: threading.Event) -> None:
        give_up_at = time.monotonic() + LOCK_MAX_HOLD_S
        while not finished.wait(LOCK_RENEW_S):
            if time.monotonic() > give_up_at:
                log.error(
                    "A re-ranking has held the lock for %d s: no longer renewed", LOCK_MAX_HOLD_S
                )
                return
            try:
                lock.reacquire()
                with self.renewed:
                    self.renewals += 1
                    self.renewed.notify_all()
            except redis.exceptions.LockNotOwnedError:
                log.error("The re-ranking lock expired before it was renewed; not renewed again")
                return
            except redis.RedisError as exc:
                log.warning("The re-ranking lock could not be renewed: %s", exc)

    def holder(self) -> RematchItem | None:
        value = self._redis.get(self.key)
        if value is None:
            return None
        parts = value.decode(errors="replace").split()
        if len(parts) != 3 or not parts[2].isdigit():
            return None  # taken by something else than `held`
        return parts[1], int(parts[2])


class Queue:
    """The app's huey instance and its tasks."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        self._consumer: Consumer | None = None
        self.events_channel: str | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

        @huey.task(name="tandem.deliver")
        def deliver_task() -> dict[str, int]:
            return self._deliver()

        @huey.periodic_task(crontab(minute="*"), name="tandem.deliver-due")
        def deliver_due_task() -> None:
            # Retries, digests that came due, events held back by the hourly limit.
            self._deliver()

        @huey.periodic_task(crontab(minute="7"), name="tandem.collaboration-reminders")
        def collaboration_reminders_task() -> int:
            # Hourly, so a worker that was down catches up; each person still gets at most
            # one reminder per interval (the outbox key names it).
            with self.app.app_context():
                return notify.send_reminders()

        # One re-ranking at a time: they read and rewrite the same ranked lists. The lock is
        # made here, once, so that huey knows it (the embedded consumer clears it at start).
        self.rematch_lock: RematchLock = (
            RedisRematchLock(huey)
            if isinstance(huey.storage, RedisExpireStorage)
            else EmbeddedRematchLock(huey)
        )

        @huey.task(name="tandem.rematch", retries=300, retry_delay=1)
        def rematch_task(kind: str, item_id: int) -> None:
            # A task that finds the lock taken is retried a second later.
            with self.rematch_lock.held(kind, item_id):
                self._publish(f"rematching {kind} {item_id}")
                self._rematch(kind, item_id)
            self._deliver()

        @huey.periodic_task(crontab(minute="*"), name="tandem.requeue-unfinished")
        def requeue_task() -> None:
            self.requeue_unfinished()

        @huey.periodic_task(
            crontab(day_of_week="1", hour="4", minute="0"), name="tandem.fit-ranking"
        )
        def fit_ranking_task() -> None:
            # The outcome loop, weekly: learned weights adopted only when better by the margin.
            self.fit_ranking()

        @huey.task(name="tandem.embed", retries=3, retry_delay=1)
        def embed_task(model_name: str, texts: list[str]) -> int:
            return self._embed(model_name, texts)

        if isinstance(huey.storage, RedisExpireStorage):
            self.events_channel = f"{huey.name}.job-events"
            huey.signal(*JOB_EVENTS)(self._publish_event)

        self.deliver_task = deliver_task
        self.rematch_task = rematch_task
        self.embed_task = embed_task

    def _publish_event(self, signal: str, task: Any, *_: Any) -> None:
        """Tell whoever listens on `events_channel` (a command waiting for its jobs, a
        benchmark, a test) what a worker just did: "<signal> <task name> <args...>"."""
        self._publish(" ".join([signal, task.name, *(str(arg) for arg in task.args[:2])]))

    def _publish(self, message: str) -> None:
        if self.events_channel is None:
            return
        try:
            self.huey.storage.conn.publish(self.events_channel, message)  # type: ignore[attr-defined]
        except redis.RedisError as exc:
            log.warning("A job event was not published: %s", exc)

    def announce_ready(self) -> None:
        """Say on the job-events channel that a worker of this process takes jobs now
        ("ready worker <pid>"); nothing without Redis."""
        self._publish(f"ready worker {os.getpid()}")

    def _deliver(self) -> dict[str, int]:
        with self.app.app_context():
            return asdict(notify.deliver())

    def warm_rematching(self) -> None:
        """Prepare this process's kept catalogue and vectors (`snapshots.SNAPSHOTS`) now, so
        that a fresh worker's first re-ranking costs what the others cost."""
        with self.app.app_context(), Session(db.engine(), expire_on_commit=False) as session:
            rematch = get_rematch()
            rematch.snapshots.warm(session=session, encoder=rematch.encoder)
            session.commit()

    def _rematch(self, kind: str, item_id: int) -> None:
        with self.app.app_context(), Session(db.engine(), expire_on_commit=False) as session:
            rematch = get_rematch()
            recompute = rematch.offer if kind == "offer" else rematch.proposal
            try:
                recompute(session, item_id)
            except NotFound:
                return  # deleted since
            session.commit()

    def fit_ranking(self) -> int:
        """Fit the score's weights on the decisions recorded so far and record the verdict
        (`flask --app app ranking fit` does the same); returns the fit's id."""
        with self.app.app_context(), Session(db.engine(), expire_on_commit=False) as session:
            model = ranking_model.fit_ranking_model(
                session=session, baseline=self.app.extensions["tandem.weights"]
            )
            session.commit()
            log.info("Ranking model %s: %s", model.version, model.reason)
            return int(model.id or 0)

    def _embed(self, model_name: str, texts: list[str]) -> int:
        with self.app.app_context(), Session(db.engine()) as session:
            encoder = get_encoder()
            if encoder.model_name != model_name:
                # Vectors of another model would be stored under this one's name.
                raise RuntimeError(
                    f"this worker embeds with {encoder.model_name!r}, the job asks for "
                    f"{model_name!r}: start workers with the same TANDEM_MODEL"
                )
            stored = embed_missing(session=session, encoder=encoder, texts=texts)
            session.commit()
            return stored

    def embed_bulk(
        self,
        *,
        session: Session,
        encoder: Encoder,
        texts: Iterable[str],
        chunk_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BulkEmbedding:
        """Store a vector for every text of `texts` that has none, before a bulk ranking.

        On Redis the length-sorted chunks are queued as jobs for `flask --app app worker`
        processes (any number, on any machine; each commits its own rows) and this waits for
        every one, after committing `session` (so that no lock or snapshot of the caller's
        hides the workers' rows or holds up their writes: for commands, not requests). On
        the embedded or immediate queue the caller embeds them itself, through `session`
        (flushed, never committed). `progress(done, total)` counts texts: called once
        before the first chunk, then after each. Raises `BulkEmbeddingFailed` when a job
        failed after its retries or never finished."""
        chunks = missing_chunks(
            session=session,
            model_name=encoder.model_name,
            texts=texts,
            chunk_size=chunk_size or EMBED_CHUNK,
        )
        total = sum(len(chunk) for chunk in chunks)
        done = 0
        if progress is not None:
            progress(done, total)
        if not self.on_workers:
            for chunk in chunks:
                embed_missing(session=session, encoder=encoder, texts=chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            return BulkEmbedding(texts=total, chunks=len(chunks), on_workers=False)
        session.commit()
        results = [(len(chunk), self.embed_task(encoder.model_name, chunk)) for chunk in chunks]
        for size, result in results:
            try:
                result.get(blocking=True, timeout=EMBED_JOB_TIMEOUT_S, max_delay=0.2)
            except TaskException as exc:
                raise BulkEmbeddingFailed(f"an embedding job failed: {exc}") from exc
            except ResultTimeout as exc:
                raise BulkEmbeddingFailed(
                    f"an embedding job did not finish within {EMBED_JOB_TIMEOUT_S} s: "
                    "is a `flask --app app worker` running on this queue?"
                ) from exc
            done += size
            if progress is not None:
                progress(done, total)
        return BulkEmbedding(texts=total, chunks=len(chunks), on_workers=True)

    @property
    def on_workers(self) -> bool:
        """Whether jobs run on `flask --app app worker` processes (the Redis queue)."""
        return not self.huey.immediate and isinstance(self.huey.storage, RedisExpireStorage)

    def rematch(self, kind: str, item_id: int) -> Any:
        """Queue re-ranking one proposal's or offer's recommendations (re-embedding it)."""
        if kind not in ("proposal", "offer"):
            raise ValueError(f"cannot re-rank a {kind!r}")
        return self.rematch_task(kind, item_id)

    def requeue_unfinished(
        self, older_than: timedelta = UNFINISHED_AFTER, *, include_running: bool = False
    ) -> list[RematchItem]:
        """Queue again every re-ranking asked for more than `older_than` ago that has not
        finished and is neither waiting in the queue nor scheduled for a retry, nor (unless
        `include_running`) running under the lock now; returns what was queued.

        A worker that is starting cannot tell a running re-ranking from one whose worker died
        holding the lock, so it queues that one again too: it runs once the lock is free,
        and running a re-ranking twice costs time, never correctness."""
        waiting = {
            (task.args[0], task.args[1])
            for task in [*self.huey.pending(), *self.huey.scheduled()]
            if task.name == "tandem.rematch" and len(task.args) == 2
        }
        if not include_running and (running := self.rematch_lock.holder()) is not None:
            waiting.add(running)
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
            consumer = self.huey.create_consumer(
                workers=threads, worker_type="thread", max_delay=1.0, flush_locks=True
            )
            # The consumer's threads (daemons), without `Consumer.start`'s signal handlers:
            # the server owns Ctrl-C, and this may run outside the main thread.
            consumer.scheduler.start()
            for _, worker in consumer.worker_threads:
                worker.start()
            self._consumer, self._pid = consumer, os.getpid()
            log.info("Started %d queue threads in process %d", threads, self._pid)
        # This process alone consumes the embedded queue: whatever re-ranking is unfinished
        # now was lost with a previous process, and is queued again at once. A database not
        # migrated yet has nothing to requeue (the every-minute sweep looks again later).
        try:
            self.requeue_unfinished(older_than=timedelta(0), include_running=True)
        except sa.exc.DBAPIError as exc:
            log.warning("Nothing requeued at start: the database is not ready (%s)", exc.orig)

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
    db.add_hooks(app, db.SessionHooks(after_commit=_queue_work, after_rollback=_forget_work))
    if app.config["TANDEM_QUEUE_THREADS"] > 0 and _serving():
        queue.start_threads()


def _serving() -> bool:
    """Whether the app being built is to serve requests in this process: built by
    `flask run` (its reloader's serving child, when reloading) or outside the flask command
    line (a server, a test). Other `flask` commands consume no queue."""
    context = click.get_current_context(silent=True)
    if context is None:
        return True
    if context.info_name != "run":
        return False
    reload = context.params.get("reload")
    if reload is None:
        reload = get_debug_flag()
    return not reload or is_running_from_reloader()


def _queue_work(session: Session) -> None:
    """Queue the work a committed change asked for: re-ranking the items it changed, and
    delivering the mail it wrote (outbox rows or match events)."""
    queue = get_queue()
    for kind, item_id in session.info.pop(REMATCH_REQUESTS, []):
        queue.rematch(kind, item_id)
    if session.info.pop(outbox.MAIL_WRITTEN, False):
        queue.deliver()


def _forget_work(session: Session) -> None:
    session.info.pop(REMATCH_REQUESTS, None)
    session.info.pop(outbox.MAIL_WRITTEN, None)


def get_queue() -> Queue:
    return current_app.extensions["tandem.queue"]
