"""The production arrangement the README describes, started for real: `make serve` (gunicorn
with the repository's gunicorn.conf.py, two web processes) and `make worker` (one `flask --app
app worker`), on PostgreSQL when TANDEM_TEST_DATABASE_URL is set (else a fresh SQLite file)
and on Redis when REDIS_URL is set (else the embedded SQLite queue, which the worker consumes:
web processes under gunicorn never do).

A person signs in through the real form and publishes a proposal; the worker re-ranks it and
mails both sides through a real SMTP server (aiosmtpd on 127.0.0.1); /readyz says ready and
/metrics adds up what every process measured. Every wait polls a condition up to a deadline;
every process started is ended with its process group.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import select as io_select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
from huey import RedisExpireHuey
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, select

from app.db import make_engine
from models import (
    Match,
    NotificationStatus,
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    Role,
    User,
    utcnow,
)
from tests.conftest import POSTGRES_URL, TEST_PASSWORD, _truncate_postgres
from tests.conftest import test_password_hash as shared_password_hash
from tests.smtp import ScriptedHandler, SmtpServer, free_port

ROOT = Path(__file__).resolve().parent.parent
# Migrating, then two web processes importing the app, then /readyz loading the model: about
# a minute on a busy two-core machine.
READY_DEADLINE_S = 300.0
# The worker starts, loads the model, re-ranks and sends two mails.
WORK_DEADLINE_S = 240.0
STOP_DEADLINE_S = 30.0
# How long a wait for a process to exit lasts before the condition is asked again.
ASK_EVERY_S = 0.25
METRICS_TOKEN = "production-test-metrics-token"
# What the servers must not inherit from the test run.
NOT_INHERITED = (
    "TANDEM_BASE_URL",
    "FLASK_RUN_HOST",
    "FLASK_RUN_PORT",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "TANDEM_ENV",
    "TANDEM_MAIL_DIR",
    "TANDEM_QUEUE",
    "TANDEM_QUEUE_PATH",
    "TANDEM_QUEUE_THREADS",
    "MAIL_SERVER",
    "PROMETHEUS_MULTIPROC_DIR",
    "WEB_CONCURRENCY",
    "HOST",
    "PORT",
    "GUNICORN_CMD_ARGS",
    "MAKEFLAGS",
    "MFLAGS",
)
PROPOSAL = {
    "title": "Offline reinforcement learning for grid batteries",
    "abstract": "We learn battery dispatch policies from five years of logged grid data.",
    "research_areas": "reinforcement learning, energy systems",
    "gpu_hours_needed": "2000",
    "duration_months": "9",
    "requires_open_publication": "y",
    "ip_stance": "joint",
    "lab_resource_level": "typical",
}


def _poll(
    condition: Callable[[], Any],
    deadline_s: float,
    what: str,
    log: Callable[[], str],
    groups: Sequence[int] = (),
) -> Any:
    """Ask `condition` until it returns something truthy; fail with the logs at the deadline.
    Between two asks it waits for a process of `groups` (process groups) to exit, for at most
    `ASK_EVERY_S`: a server that dies wakes it at once (`condition` then says so), and what is
    not an exit (a page, a row, a mail) is asked for again."""
    give_up = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what} within {deadline_s:.0f} s\n{log()}")
        _until_one_exits(groups, min(ASK_EVERY_S, remaining))


def _until_one_exits(groups: Sequence[int], timeout_s: float) -> None:
    """Block until a process of one of `groups` exits, or `timeout_s` passes (pidfds)."""
    members = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _process_group(int(entry.name)) in groups
    ]
    handles = []
    for pid in members:
        try:
            handles.append(os.pidfd_open(pid))
        except ProcessLookupError:
            return  # it exited already
    try:
        io_select.select(handles, [], [], timeout_s)
    finally:
        for handle in handles:
            os.close(handle)


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@dataclass
class Started:
    """A command in its own process group, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole group (make, gunicorn's master and workers), then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
                # make is gone; its children may linger a moment: wait for the group to empty.
                group = self.process.pid
                _poll(partial(_group_gone, group), STOP_DEADLINE_S, "", str, [group])
                return
            except (subprocess.TimeoutExpired, AssertionError):
                continue


def _group_gone(group: int) -> bool:
    return not _group_alive(group)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _start(name: str, command: list[str], env: dict[str, str], logs: Path) -> Started:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(name, process, log_path)


class Browser:
    """Just enough of a browser: cookies, forms with their CSRF token, no redirect following
    (the test checks where each form sends the person)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), self._NoRedirect()
        )

    def request(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode(errors="replace")

    def submit(self, path: str, fields: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        """Open the page at `path` and send its form with `fields` and its CSRF token."""
        status, _, page = self.request(path)
        assert status == 200, page[:2000]
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, f"no CSRF token on {path}"
        return self.request(path, {**fields, "csrf_token": html.unescape(token.group(1))})


def _readiness(base: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=60) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None  # not listening yet, or 503 while it is not ready


def _metric(body: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def _people_and_an_offer(database_url: str) -> None:
    """A university with an academic, and a company with a member and an open offer."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        university = Organisation(
            name="Northbridge University",
            kind=OrganisationKind.university,
            email_domains=["nb.example.org"],
            verified=True,
        )
        company = Organisation(
            name="Helios Compute",
            kind=OrganisationKind.company,
            email_domains=["helios.example.com"],
            verified=True,
        )
        session.add_all([university, company])
        session.flush()
        for email, name, role, organisation in (
            ("ada@nb.example.org", "Ada Okafor", Role.academic, university),
            ("sam@helios.example.com", "Sam Reyes", Role.company, company),
        ):
            session.add(
                User(
                    email=email,
                    name=name,
                    role=role,
                    organisation_id=organisation.id,
                    password_hash=shared_password_hash(),
                    confirmed_at=utcnow(),
                )
            )
        session.add(
            Offer(
                organisation_id=company.id,
                kind=OfferKind.compute,
                title="H100 hours for energy research",
                description="H100 hours for reinforcement learning on grid and battery data.",
                gpu_type="H100",
                gpu_memory_gb=80,
                gpu_hours_budget=20_000,
                max_hours_per_project=5_000,
                max_projects=4,
                status=OfferStatus.open,
            )
        )
        session.commit()
    engine.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PostgreSQL (emptied) when TANDEM_TEST_DATABASE_URL is set, else a new SQLite file
    that `make serve` migrates itself."""
    if POSTGRES_URL:
        url = request.getfixturevalue("postgres_url")  # fails if the server does not answer
        _truncate_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'tandem.db'}"


@pytest.fixture
def redis_queue() -> Iterator[tuple[str, str] | None]:
    """(REDIS_URL, a queue name of this test's own) when REDIS_URL is set; None otherwise."""
    url = os.environ.get("REDIS_URL")
    if not url:
        yield None
        return
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}")
    name = f"tandem-serve-test-{uuid.uuid4().hex}"
    yield url, name
    RedisExpireHuey(name, url=url).flush()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port(), handler=ScriptedHandler())
    server.start()
    yield server
    server.stop()


def _environment(tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(HF_HUB_OFFLINE="1", TANDEM_INSTANCE_PATH=str(tmp_path / "instance"))
    env.update(settings)
    return env


def test_make_serve_and_a_worker_serve_rerank_and_mail(
    tmp_path: Path,
    database_url: str,
    redis_queue: tuple[str, str] | None,
    smtp: SmtpServer,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {
        "SECRET_KEY": uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "TANDEM_BASE_URL": base,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "MAIL_USE_TLS": "false",
        "TANDEM_METRICS_TOKEN": METRICS_TOKEN,
    }
    if redis_queue is not None:
        settings.update(REDIS_URL=redis_queue[0], TANDEM_QUEUE_NAME=redis_queue[1])
    web_env = _environment(tmp_path, port, PORT=str(port), WEB_CONCURRENCY="2", **settings)
    worker_env = _environment(tmp_path, port, **settings)
    make = ["make", "--no-print-directory", "-o", "install"]
    started: list[Started] = []
    try:
        web = _start("make serve", [*make, "serve"], web_env, tmp_path)
        started.append(web)

        def logs() -> str:
            return "\n".join(process.log() for process in started)

        def ready() -> dict[str, Any] | None:
            assert web.running(), f"`make serve` exited\n{logs()}"
            readiness = _readiness(base)
            return readiness if readiness and readiness["status"] == "ready" else None

        readiness = _poll(
            ready, READY_DEADLINE_S, "/readyz never said ready", logs, [web.process.pid]
        )
        assert set(readiness["checks"]) == {"database", "migrations", "queue", "model"}
        assert readiness["checks"]["queue"]["backend"] == ("redis" if redis_queue else "sqlite")
        booted = re.findall(r"Booting worker with pid: (\d+)", web.log_path.read_text())
        assert len(booted) == 2, logs()

        started.append(_start("make worker", [*make, "worker"], worker_env, tmp_path))
        _people_and_an_offer(database_url)

        browser = Browser(base)
        status, headers, page = browser.submit(
            "/login", {"email": "ada@nb.example.org", "password": TEST_PASSWORD}
        )
        assert status == 302 and headers["Location"].endswith("/dashboard"), page[:2000]
        status, headers, page = browser.submit("/proposals/new", {**PROPOSAL, "publish": "Publish"})
        assert status == 302, page[:2000]
        proposal_id = int(headers["Location"].rstrip("/").rsplit("/", 1)[1])

        engine = make_engine(database_url)
        try:

            def reranked() -> bool:
                for process in started:
                    assert process.running(), f"{process.name} exited\n{logs()}"
                with Session(engine) as session:
                    proposal = session.get(Proposal, proposal_id)
                    assert proposal is not None
                    matches = session.exec(
                        select(Match).where(Match.proposal_id == proposal_id)
                    ).all()
                    return not proposal.matching_pending and len(matches) == 1

            groups = [process.process.pid for process in started]
            _poll(
                reranked, WORK_DEADLINE_S, "the worker never re-ranked the proposal", logs, groups
            )

            def mailed() -> set[str]:
                to = {str(message["To"]) for message in smtp.handler.received}
                wanted = {"ada@nb.example.org", "sam@helios.example.com"}
                return wanted if all(any(w in t for t in to) for w in wanted) else set()

            _poll(mailed, WORK_DEADLINE_S, "the worker never mailed both sides", logs, groups)
        finally:
            engine.dispose()

        status, _, body = browser.request("/metrics")
        assert status == 401, "the token is required"
        status, _, body = browser.request(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert status == 200, body
        # Measured in the worker process, added up by whichever web process answered.
        assert _metric(body, "tandem_rematch_duration_seconds_count", kind="proposal") >= 1
        sent = NotificationStatus.sent.value
        assert _metric(body, "tandem_mail_outbox_messages", status=sent) == 2
        posted = {"endpoint": "proposals.create", "method": "POST", "status": "302"}
        assert _metric(body, "tandem_http_request_duration_seconds_count", **posted) == 1
        assert _metric(body, "tandem_http_request_duration_seconds_count", status="200") >= 3
    finally:
        for process in reversed(started):
            process.stop()
    for process in started:
        assert not _group_alive(process.process.pid), f"{process.name} left processes"


def test_gunicorn_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    port = free_port()
    env = _environment(tmp_path, port, PORT=str(port), WEB_CONCURRENCY="2")
    gunicorn = _start(
        "gunicorn",
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"],
        env,
        tmp_path,
    )
    try:
        returncode = gunicorn.process.wait(timeout=READY_DEADLINE_S)
    finally:
        gunicorn.stop()
    output = gunicorn.log_path.read_text()
    assert returncode != 0, output
    assert "SECRET_KEY must be set outside development" in output
    assert output.count("Booting worker") <= 2, "no restart loop"
