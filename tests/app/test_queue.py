"""The real job queues: huey on SQLite consumed by threads in the app process (the embedded
default), and huey on Redis consumed by a separate `flask --app app worker` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from huey.signals import SIGNAL_COMPLETE
from sqlmodel import Session, select

from app import create_app
from app.queue import Queue
from matching import Encoder
from models import Notification, NotificationStatus, OrganisationKind, Role
from tests.app.test_proposal_forms import FULL
from tests.conftest import AuthActions

ROOT = Path(__file__).resolve().parents[2]
WORKER_DEADLINE_S = 120


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


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI sets it)")
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
        assert '<meta http-equiv="refresh" content="2">' in page
        assert "H100 hours for energy research" not in page
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
    reranked = threading.Event()

    @queue.huey.signal(SIGNAL_COMPLETE)
    def _completed(signal_name: str, task: Any) -> None:
        if task.name == "tandem.rematch":
            reranked.set()

    try:
        client = restarted.test_client()
        AuthActions(client).login(ada.email)  # the first request starts the queue threads
        assert reranked.wait(WORKER_DEADLINE_S), "the lost re-ranking never ran"
        page = client.get(proposal_page).get_data(as_text=True)
        assert "Finding offers" not in page
        assert "H100 hours for energy research" in page
    finally:
        queue.stop_threads()
        restarted.extensions["tandem.engine"].dispose()
