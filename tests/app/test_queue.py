"""The real job queues: huey on SQLite consumed by threads in the app process (the embedded
default), and huey on Redis consumed by a separate `flask --app app worker` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from huey.exceptions import TaskLockedException
from huey.signals import SIGNAL_COMPLETE
from sqlmodel import Session, select

from app import create_app
from app import queue as queue_module
from app.queue import Queue
from matching import Encoder
from models import (
    Notification,
    NotificationStatus,
    Offer,
    OrganisationKind,
    Proposal,
    Role,
    utcnow,
)
from tests.app.pages import FULL
from tests.app.workers import start_worker
from tests.conftest import AuthActions, needs_redis

ROOT = Path(__file__).resolve().parents[2]
WORKER_DEADLINE_S = 120
# The promise: after a worker killed mid-re-ranking is replaced, every item is ranked
# within a minute.
RANKED_AFTER_RESTART_S = 60


def _app_with_queue(app: Flask, encoder: Encoder, **config: Any) -> Flask:
    queued = create_app({**app.config, **config})
    queued.extensions["tandem.encoder"] = encoder
    return queued


def _fitting_offer(
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    company = make_organisation(
        name="Helios Compute", kind=OrganisationKind.company, email_domains=["helios.example.com"]
    )
    make_user(email="sam@helios.example.com", role=Role.company, organisation_id=company.id)
    make_offer(
        organisation_id=company.id,
        title="H100 hours for energy research",
        description="H100 hours for reinforcement learning on grid and battery data.",
    )


def _post_proposal(queued: Flask, make_user: Callable[..., Any]) -> None:
    """An academic publishes a proposal that fits the offer, through the web."""
    ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
    client = queued.test_client()
    AuthActions(client).login(ada.email)
    response = client.post("/proposals/new", data={**FULL, "publish": "Publish"})
    assert response.status_code == 302


def _mailed(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.eml"))


@pytest.fixture
def embedded(app: Flask, encoder: Encoder, tmp_path: Path) -> Iterator[Flask]:
    queued = _app_with_queue(
        app,
        encoder,
        TANDEM_QUEUE="sqlite",
        TANDEM_QUEUE_PATH=str(tmp_path / "queue.sqlite"),
        TANDEM_QUEUE_THREADS=2,
    )
    yield queued
    queued.extensions["tandem.queue"].stop_threads()
    queued.extensions["tandem.engine"].dispose()


def test_the_embedded_queue_delivers_from_threads_in_the_app_process(
    embedded: Flask,
    session: Session,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    queue: Queue = embedded.extensions["tandem.queue"]
    assert type(queue.huey).__name__ == "SqliteHuey"
    delivered = threading.Event()

    @queue.huey.signal(SIGNAL_COMPLETE)
    def _completed(signal_name: str, task: Any) -> None:
        # Checked when a delivery (queued, or the every-minute one) has finished.
        with Session(embedded.extensions["tandem.engine"]) as check:
            statuses = check.exec(select(Notification.status)).all()
        if len(statuses) == 2 and set(statuses) == {NotificationStatus.sent}:
            delivered.set()

    _fitting_offer(make_organisation, make_user, make_offer)
    _post_proposal(embedded, make_user)
    assert delivered.wait(60), "the queue threads ran no delivery"
    recipients = sorted(n.recipient_email for n in session.exec(select(Notification)))
    assert recipients == ["ada@nb.example.org", "sam@helios.example.com"]
    assert {n.status for n in session.exec(select(Notification))} == {NotificationStatus.sent}
    assert len(_mailed(Path(embedded.config["TANDEM_MAIL_DIR"]))) == 2


def test_the_embedded_queue_runs_jobs_before_any_request(embedded: Flask) -> None:
    """The app factory starts the queue threads of an app built to serve: a job queued
    before the first request runs (no request hook starts them)."""
    queue: Queue = embedded.extensions["tandem.queue"]
    summary = queue.deliver().get(blocking=True, timeout=WORKER_DEADLINE_S)
    assert summary is not None, "no queue thread ran the delivery"
    assert summary["sent"] == summary["failed"] == 0, "nothing was waiting to be sent"


def test_flask_commands_other_than_run_start_no_queue_threads(
    app: Flask, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flask db upgrade`, `flask demo load`...: a short command consumes no queue (a job it
    took would die with it); only `flask run` and servers do."""
    import click

    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    config = {
        "TANDEM_QUEUE": "sqlite",
        "TANDEM_QUEUE_PATH": str(tmp_path / "queue.sqlite"),
        "TANDEM_QUEUE_THREADS": 2,
    }
    with click.Context(click.Command("upgrade"), info_name="upgrade"):
        command = _app_with_queue(app, encoder, **config)
    with click.Context(click.Command("run"), info_name="run") as context:
        context.params = {"reload": False}
        served = _app_with_queue(app, encoder, **config)
    try:
        assert command.extensions["tandem.queue"]._consumer is None
        assert served.extensions["tandem.queue"]._consumer is not None
    finally:
        for built in (command, served):
            built.extensions["tandem.queue"].stop_threads()
            built.extensions["tandem.engine"].dispose()


@needs_redis
def test_a_worker_process_delivers_from_the_redis_queue(
    app: Flask,
    encoder: Encoder,
    session: Session,
    tmp_path: Path,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    name = f"tandem-test-{uuid.uuid4().hex}"
    queued = _app_with_queue(app, encoder, TANDEM_QUEUE="redis", TANDEM_QUEUE_NAME=name)
    queue: Queue = queued.extensions["tandem.queue"]
    assert type(queue.huey).__name__ == "RedisExpireHuey"
    assert queued.config["TANDEM_QUEUE_THREADS"] == 0, "workers consume a Redis queue"
    try:
        queue.huey.flush()
        _fitting_offer(make_organisation, make_user, make_offer)
        _post_proposal(queued, make_user)
        assert queue.huey.pending_count() == 1, "the commit queued one delivery"
        mail_dir = Path(queued.config["TANDEM_MAIL_DIR"])
        assert _mailed(mail_dir) == [], "nothing is sent before a worker runs"

        env = {
            **os.environ,
            "DATABASE_URL": queued.config["DATABASE_URL"],
            "SECRET_KEY": queued.config["SECRET_KEY"],
            "TANDEM_ENV": "test",
            "TANDEM_INSTANCE_PATH": str(tmp_path / "worker-instance"),
            "TANDEM_MAIL_DIR": str(mail_dir),
            "TANDEM_QUEUE": "redis",
            "TANDEM_QUEUE_NAME": name,
            "REDIS_URL": os.environ["REDIS_URL"],
            "HF_HUB_OFFLINE": "1",
        }
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--threads", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # One worker thread runs tasks in order: once this one is done, so is the first.
            summary = queue.deliver().get(blocking=True, timeout=WORKER_DEADLINE_S)
            assert summary["dispatched"] == summary["sent"] == summary["failed"] == 0
        finally:
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(timeout=60)
            log.close()
        output = (tmp_path / "worker.log").read_text()
        assert returncode == 0, output
        assert "Tandem worker: 1 thread(s)" in output
        assert len(_mailed(mail_dir)) == 2
        rows = session.exec(select(Notification)).all()
        assert sorted(n.recipient_email for n in rows) == [
            "ada@nb.example.org",
            "sam@helios.example.com",
        ]
        assert {n.status for n in rows} == {NotificationStatus.sent}
        assert queue.huey.pending_count() == 0
    finally:
        queue.huey.flush()
        queued.extensions["tandem.engine"].dispose()


def test_pages_say_matches_are_being_found_until_the_queued_reranking_ran(
    app: Flask,
    encoder: Encoder,
    session: Session,
    tmp_path: Path,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    queued = _app_with_queue(
        app,
        encoder,
        TANDEM_QUEUE="sqlite",
        TANDEM_QUEUE_PATH=str(tmp_path / "queue.sqlite"),
        TANDEM_QUEUE_THREADS=0,  # nothing consumes: this test runs the jobs itself
    )
    huey = queued.extensions["tandem.queue"].huey
    try:
        _fitting_offer(make_organisation, make_user, make_offer)
        ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
        client = queued.test_client()
        AuthActions(client).login(ada.email)
        response = client.post("/proposals/new", data={**FULL, "publish": "Publish"})
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Finding offers for this proposal" in page
        assert '<meta http-equiv="refresh" content="2;url=?waited=1">' in page
        assert "H100 hours for energy research" not in page
        # The refreshes are bounded: after a minute of them the page stops and says so.
        waited = client.get(f"{response.headers['Location']}?waited=29").get_data(as_text=True)
        assert 'content="2;url=?waited=30"' in waited
        stopped = client.get(f"{response.headers['Location']}?waited=30").get_data(as_text=True)
        assert "taking longer than usual" in stopped and 'http-equiv="refresh"' not in stopped
        assert session.exec(select(Notification)).all() == []

        assert [task.name for task in huey.pending()] == ["tandem.rematch"]
        huey.execute(huey.dequeue())

        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Finding offers" not in page and 'http-equiv="refresh"' not in page
        assert "H100 hours for energy research" in page
        mine = client.get("/proposals/mine").get_data(as_text=True)
        assert "Finding offers" not in mine and "H100 hours for energy research" in mine
        # The re-ranking found the match and delivered its mails in the same job.
        assert len(session.exec(select(Notification)).all()) == 2
    finally:
        huey.flush()
        queued.extensions["tandem.engine"].dispose()


def test_a_draft_page_never_waits_for_offers_as_nothing_is_matched_with_a_draft(
    app: Flask, encoder: Encoder, tmp_path: Path, make_user: Callable[..., Any]
) -> None:
    """A draft is saved and edited with no job run: neither its page nor the dashboard says
    offers are being found or refreshes itself, as a reload under the person's next click
    would only take them back to the page they were leaving."""
    queued = _app_with_queue(
        app,
        encoder,
        TANDEM_QUEUE="sqlite",
        TANDEM_QUEUE_PATH=str(tmp_path / "queue.sqlite"),
        TANDEM_QUEUE_THREADS=0,  # nothing consumes: every re-ranking stays queued
    )
    huey = queued.extensions["tandem.queue"].huey
    try:
        ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
        client = queued.test_client()
        AuthActions(client).login(ada.email)
        response = client.post("/proposals/new", data={**FULL, "save_draft": "Save as draft"})
        address = response.headers["Location"]
        edited = client.post(f"{address}/edit", data={**FULL, "title": "A draft, edited once"})
        assert edited.status_code == 302
        for page in (client.get(address), client.get("/proposals/mine")):
            text = page.get_data(as_text=True)
            assert "draft" in text.lower()
            assert "Finding offers" not in text and "tandem-refresh" not in text
        # Published, it is matched: now its page waits for the queued ranking.
        client.post(f"{address}/open")
        assert "Finding offers for this proposal" in client.get(address).get_data(as_text=True)
    finally:
        huey.flush()
        queued.extensions["tandem.engine"].dispose()


def test_a_reranking_lost_with_a_killed_process_runs_when_the_next_one_starts(
    app: Flask,
    encoder: Encoder,
    session: Session,
    tmp_path: Path,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    """A process killed in the middle of a re-ranking leaves the re-ranking lock taken and the
    task gone from the queue. The next process clears the lock when its queue threads start
    and queues the unfinished re-ranking again: the page stops saying "Finding offers"."""
    queue_path = str(tmp_path / "queue.sqlite")
    killed = _app_with_queue(
        app, encoder, TANDEM_QUEUE="sqlite", TANDEM_QUEUE_PATH=queue_path, TANDEM_QUEUE_THREADS=0
    )
    huey = killed.extensions["tandem.queue"].huey
    _fitting_offer(make_organisation, make_user, make_offer)
    ada = make_user(email="ada@nb.example.org", name="Ada Okafor")
    client = killed.test_client()
    AuthActions(client).login(ada.email)
    proposal_page = client.post("/proposals/new", data={**FULL, "publish": "Publish"}).headers[
        "Location"
    ]
    # What SIGKILL mid-task leaves: the task taken off the queue, the lock still held.
    assert [task.name for task in huey.pending()] == ["tandem.rematch"]
    huey.dequeue()
    huey.lock_task("rematch").__enter__()
    assert huey.pending_count() == 0
    killed.extensions["tandem.engine"].dispose()

    restarted = _app_with_queue(
        app, encoder, TANDEM_QUEUE="sqlite", TANDEM_QUEUE_PATH=queue_path, TANDEM_QUEUE_THREADS=2
    )
    queue: Queue = restarted.extensions["tandem.queue"]
    job_done = threading.Condition()

    @queue.huey.signal(SIGNAL_COMPLETE)
    def _completed(signal_name: str, task: Any) -> None:
        with job_done:
            job_done.notify_all()

    try:
        # The queue threads started with the app (it may have run the job already): wait,
        # woken by each finished job, until the proposal is no longer waiting for matches.
        with job_done:
            ranked = job_done.wait_for(lambda: not _still_finding(session), WORKER_DEADLINE_S)
        assert ranked, "the lost re-ranking never ran"
        client = restarted.test_client()
        AuthActions(client).login(ada.email)
        page = client.get(proposal_page).get_data(as_text=True)
        assert "Finding offers" not in page
        assert "H100 hours for energy research" in page
    finally:
        queue.stop_threads()
        restarted.extensions["tandem.engine"].dispose()


def _redis_queue(app: Flask, encoder: Encoder, name: str) -> Flask:
    """The app on a Redis queue of its own; Redis must answer when REDIS_URL is set."""
    try:
        redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}")
    return _app_with_queue(app, encoder, TANDEM_QUEUE="redis", TANDEM_QUEUE_NAME=name)


@contextmanager
def _job_events(queue: Queue) -> Iterator[redis.client.PubSub]:
    """The Redis queue's job-events channel (what its workers publish as they go)."""
    pubsub = redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(queue.events_channel)
    try:
        yield pubsub
    finally:
        pubsub.close()


def _wait_for(condition: Callable[[], bool], seconds: float, events: redis.client.PubSub) -> bool:
    """Check `condition` now and each time a worker publishes a job event, until it holds
    or `seconds` have passed; whether it held. Blocks on the channel, never sleeps."""
    deadline = time.monotonic() + seconds
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        events.get_message(timeout=left)
    return True


def _wait_for_event(prefix: str, seconds: float, events: redis.client.PubSub) -> bool:
    """Block until a job event starting with `prefix` is published; whether one was."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = events.get_message(timeout=left)
        if message is not None and message["data"].decode().startswith(prefix):
            return True
    return False


def _still_finding(session: Session) -> list[str]:
    """The proposals and offers whose pages say "Finding offers/proposals…"."""
    session.expire_all()
    items = [*session.exec(select(Proposal)), *session.exec(select(Offer))]
    return [f"{type(item).__name__} {item.id}" for item in items if item.matching_pending]


@needs_redis
def test_a_worker_killed_mid_reranking_leaves_nothing_unranked_a_minute_after_restart(
    app: Flask,
    encoder: Encoder,
    session: Session,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    """Three proposals published; the worker is killed (SIGKILL) while it holds the
    re-ranking lock, taking one re-ranking with it. A new worker ranks all three within a
    minute: the dead worker's lock lapses in seconds, and the lost re-ranking is queued again
    when the new worker starts."""
    queued = _redis_queue(app, encoder, f"tandem-test-{uuid.uuid4().hex}")
    queue: Queue = queued.extensions["tandem.queue"]
    # huey's view of the re-ranking lock: its key in Redis.
    rematch_lock = queue.huey.lock_task("rematch")
    workers: list[subprocess.Popen[bytes]] = []
    events = ExitStack()
    try:
        job_events = events.enter_context(_job_events(queue))
        queue.huey.flush()
        _fitting_offer(make_organisation, make_user, make_offer)
        authors = [
            make_user(email=f"author{number}@nb.example.org", name=f"Author {number}")
            for number in range(3)
        ]
        for author in authors:
            client = queued.test_client()
            AuthActions(client).login(author.email)
            response = client.post("/proposals/new", data={**FULL, "publish": "Publish"})
            assert response.status_code == 302
        assert len(_still_finding(session)) == 3

        workers.append(start_worker(queued, tmp_path, "killed.log"))
        # The worker says when a re-ranking holds the lock: kill it then.
        running = _wait_for_event("rematching", WORKER_DEADLINE_S, job_events)
        workers[0].kill()
        workers[0].wait(timeout=60)
        killed_log = (tmp_path / "killed.log").read_text()
        assert running, f"the worker never started a re-ranking: {killed_log}"
        assert rematch_lock.is_locked(), "killed while holding the lock"
        assert _still_finding(session), "the killed worker had finished everything"

        restarted_at = time.monotonic()
        workers.append(start_worker(queued, tmp_path, "restarted.log"))
        ranked = _wait_for(lambda: not _still_finding(session), RANKED_AFTER_RESTART_S, job_events)
        restart_to_ranked_s = time.monotonic() - restarted_at
        record_property("restart_to_ranked_s", round(restart_to_ranked_s, 1))
        restarted_log = (tmp_path / "restarted.log").read_text()
        assert ranked, (
            f"still finding after {RANKED_AFTER_RESTART_S} s: {_still_finding(session)}\n"
            f"{restarted_log}"
        )
        print(f"restart to all ranked: {restart_to_ranked_s:.1f} s")
        for author in authors:
            client = queued.test_client()
            AuthActions(client).login(author.email)
            mine = client.get("/proposals/mine").get_data(as_text=True)
            assert "Finding offers" not in mine and "H100 hours for energy research" in mine
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
        events.close()
        queue.huey.flush()
        queued.extensions["tandem.engine"].dispose()


@needs_redis
def test_the_redis_reranking_lock_is_renewed_while_held_and_excludes_other_workers(
    app: Flask, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers (two app instances on one Redis queue, as on two machines): while one
    re-ranks for three times the lock's expiry, the other is refused the lock throughout."""
    monkeypatch.setattr(queue_module, "LOCK_TTL_S", 1)
    monkeypatch.setattr(queue_module, "LOCK_RENEW_S", 0.2)
    name = f"tandem-test-{uuid.uuid4().hex}"
    here, there = _redis_queue(app, encoder, name), _redis_queue(app, encoder, name)
    here_lock = here.extensions["tandem.queue"].rematch_lock
    there_lock = there.extensions["tandem.queue"].rematch_lock
    # Held through this many renewals, three times the lock's expiry.
    renewals = round(3 * queue_module.LOCK_TTL_S / queue_module.LOCK_RENEW_S)
    try:
        with here_lock.held("proposal", 7):
            held_since = time.monotonic()
            for renewal in range(1, renewals + 1):
                # Woken by each renewal of the held lock (notified by the renewing thread).
                with here_lock.renewed:
                    assert here_lock.renewed.wait_for(
                        lambda renewal=renewal: here_lock.renewals >= renewal, timeout=5
                    ), f"renewal {renewal} never came"
                assert there_lock.holder() == ("proposal", 7)
                with pytest.raises(TaskLockedException), there_lock.held("offer", 1):
                    pass
            assert time.monotonic() - held_since >= 2 * queue_module.LOCK_TTL_S
        assert there_lock.holder() is None, "released when the re-ranking ended"
        with there_lock.held("offer", 1):
            assert here_lock.holder() == ("offer", 1)
    finally:
        here.extensions["tandem.queue"].huey.flush()
        for queued in (here, there):
            queued.extensions["tandem.engine"].dispose()


@needs_redis
def test_the_sweep_requeues_a_lost_reranking_but_not_one_waiting_retrying_or_running(
    app: Flask,
    encoder: Encoder,
    session: Session,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    queued = _redis_queue(app, encoder, f"tandem-test-{uuid.uuid4().hex}")
    queue: Queue = queued.extensions["tandem.queue"]
    huey = queue.huey

    def rematches_queued() -> int:
        return sum(task.name == "tandem.rematch" for task in huey.pending())

    try:
        huey.flush()
        _fitting_offer(make_organisation, make_user, make_offer)
        _post_proposal(queued, make_user)
        proposal = session.exec(select(Proposal)).one()
        proposal.rematch_requested_at = utcnow() - 2 * queue_module.UNFINISHED_AFTER
        session.add(proposal)
        session.commit()
        assert rematches_queued() == 1
        assert queue.requeue_unfinished() == [], "it waits in the queue"

        # A worker found the lock taken: the task waits in the schedule for its retry.
        (task,) = [task for task in huey.pending() if task.name == "tandem.rematch"]
        huey.storage.flush_queue()
        huey.add_schedule(task)
        assert queue.requeue_unfinished() == [], "it waits for its retry"
        assert rematches_queued() == 0

        # A live worker runs it: the lock names it.
        huey.storage.flush_schedule()
        with queue.rematch_lock.held("proposal", proposal.id):
            assert queue.requeue_unfinished() == [], "it is running"
            assert rematches_queued() == 0
            # A worker that is starting cannot tell a live holder from a dead one.
            lost = queue.requeue_unfinished(older_than=timedelta(0), include_running=True)
            assert lost == [("proposal", proposal.id)]
        assert rematches_queued() == 1

        # Lost: neither queued, scheduled nor running.
        huey.storage.flush_queue()
        assert queue.requeue_unfinished() == [("proposal", proposal.id)]
        assert rematches_queued() == 1
    finally:
        huey.flush()
        queued.extensions["tandem.engine"].dispose()
