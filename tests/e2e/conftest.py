"""Real-browser fixtures: the real app served over HTTP, and Debian's Chromium driven by
Playwright.

The app runs as in production (CSRF enforced, TESTING off) on a fresh migrated SQLite file,
served by werkzeug in a thread on a free port of 127.0.0.1. One Chromium serves the whole run;
each test gets a fresh browser context (cookies, storage) of its own.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR
from playwright.sync_api import Browser, Page, sync_playwright
from sqlmodel import Session
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from matching import Encoder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
NARROW_PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
E2E_DIR = Path(__file__).resolve().parent
STARTUP_DEADLINE_S = 10.0
# Mails are written by the queue threads, within seconds of the action that caused them.
MAIL_DEADLINE_S = 20.0
# Generous for a loaded 2-core machine, far below Playwright's 30 s default: a missing element
# fails the test within seconds.
ACTION_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is a browser test: `-m e2e` selects them, `-m 'not e2e'`
    leaves them out; by default they run with everything else."""
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class LiveServer:
    """The served app: where it answers, the app itself and where its mail lands."""

    url: str
    app: Flask
    mail_dir: Path
    # Notified each time the app's queue finishes a job (a delivery writes mail in one).
    jobs_done: threading.Condition = field(default_factory=threading.Condition)

    def session(self) -> Session:
        """A database session outside any request, for checking what the pages wrote."""
        return Session(self.app.extensions["tandem.engine"], expire_on_commit=False)


class _ServerErrors(logging.Handler):
    """Collects errors the app logs while serving (a 500 page hides them from the browser)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _wait_until_listening(host: str, port: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test server on {host}:{port} did not answer") from exc


def _whole_bodies(app: Any) -> Any:
    """The app, handing the test server whole bodies: its iterator (an open static file, say)
    is closed before a byte is sent. werkzeug's development server skips closing it when the
    browser drops the connection mid-answer (a cancelled favicon), and the file then left
    open fails the test that happened to be running as a ResourceWarning."""

    def serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    return serve


@pytest.fixture
def live_server(
    sqlite_template: Path, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """The real app on a fresh migrated SQLite database, served over HTTP for one test."""
    database = tmp_path / "tandem.db"
    shutil.copy(sqlite_template, database)
    mail_dir = tmp_path / "mail"
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "SECRET_KEY": f"e2e-{uuid.uuid4().hex}",
            "TANDEM_ENV": "test",
            "WTF_CSRF_ENABLED": True,
            "TANDEM_MAIL_DIR": str(mail_dir),
            "REDIS_URL": os.environ.get("REDIS_URL"),
            "RATELIMIT_KEY_PREFIX": f"tandem-e2e-{uuid.uuid4().hex}",
            # The embedded default: a SQLite queue consumed by threads in this process.
            "TANDEM_QUEUE": "sqlite",
            "TANDEM_QUEUE_PATH": str(tmp_path / "queue.sqlite"),
            "TANDEM_QUEUE_THREADS": 2,
        }
    )
    assert not app.testing and app.config["WTF_CSRF_ENABLED"]
    app.extensions["tandem.encoder"] = encoder

    errors = _ServerErrors()
    app_logger = logging.getLogger("app")
    app_logger.addHandler(errors)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, _whole_bodies(app), threaded=True)
    # Links in mails point at the public address: here, this server.
    app.config["TANDEM_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        _wait_until_listening("127.0.0.1", server.server_port, STARTUP_DEADLINE_S)
        live = LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app, mail_dir=mail_dir)

        @app.extensions["tandem.queue"].huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR)
        def _job_done(_signal: str, _task: object, *_: object) -> None:
            with live.jobs_done:
                live.jobs_done.notify_all()

        yield live
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["tandem.queue"].stop_threads()
        server.server_close()
        app_logger.removeHandler(errors)
        app.extensions["tandem.engine"].dispose()
    failures = [errors.format(record) for record in errors.records]
    assert not failures, "the app logged errors while serving:\n" + "\n".join(failures)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Debian's package) for the whole run."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}. The browser tests drive Debian's "
            "Chromium; install it with `make chromium` (apt-get install chromium). "
            "Do not run `playwright install`."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _new_page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    # Anything the Content-Security-Policy blocks (a script, a style, a form target) is a
    # broken page for a person: the browser reports it on the console.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert blocked == [], f"the page's own policy blocked: {blocked}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh desktop-sized tab (1280x900) with its own cookies."""
    yield from _new_page(browser, DESKTOP)


@pytest.fixture(params=[DESKTOP, NARROW_PHONE], ids=["1280px", "390px"])
def any_width_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A fresh tab at desktop width, and again at 390 px: a form test that takes it runs at
    both widths (a file opts in by defining `page` as this)."""
    yield from _new_page(browser, request.param)


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    """A fresh phone-sized tab (375x812) with its own cookies."""
    yield from _new_page(browser, PHONE)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as tests/artifacts/<name>.png (for people to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def mails(mail_dir: Path) -> list[EmailMessage]:
    """Every message the app wrote to the mail folder, oldest first."""
    files = sorted(mail_dir.glob("*.eml"), key=lambda path: (path.stat().st_mtime_ns, path.name))
    return [_parse(path) for path in files]


def _parse(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def wait_for_mail(
    server: LiveServer,
    subject_contains: str,
    *,
    count: int = 1,
    deadline_s: float = MAIL_DEADLINE_S,
) -> EmailMessage:
    """The newest mail whose subject contains the text (any case), once at least `count`
    such mails are there. The queue threads write them in the background: the folder is
    looked at again each time the queue finishes a job, up to the deadline."""
    wanted = subject_contains.lower()
    give_up = time.monotonic() + deadline_s
    with server.jobs_done:
        while True:
            found = [m for m in mails(server.mail_dir) if wanted in str(m["Subject"]).lower()]
            if len(found) >= count:
                return found[-1]
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                subjects = [str(m["Subject"]) for m in mails(server.mail_dir)]
                raise AssertionError(
                    f"after {deadline_s} s, {len(found)} of {count} mails about "
                    f"{subject_contains!r}; written: {subjects}"
                )
            server.jobs_done.wait(timeout=remaining)


def mail_text(message: EmailMessage) -> str:
    """The decoded plain-text part (the .eml stores it quoted-printable)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text part"
    return part.get_content()


def mail_link(message: EmailMessage, path_prefix: str) -> str:
    """The first link in the text part whose path starts with `path_prefix` (e.g. "/reset/")."""
    text = mail_text(message)
    for link in re.findall(r"https?://[^\s<>\"']+", text):
        if re.match(r"https?://[^/]+" + re.escape(path_prefix), link):
            return link
    raise AssertionError(f"no {path_prefix} link in the mail:\n{text}")
