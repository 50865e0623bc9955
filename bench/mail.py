"""Outbox sender throughput against a real SMTP server (aiosmtpd on 127.0.0.1).

Measures, in one run on a fresh migrated SQLite database:
- the baseline: the same messages sent with plain smtplib over one connection, no database;
- the outbox sender (`app.mail.send_pending`): claim, send over SMTP, mark sent, per row;
- the embedded default: the same sender writing .eml files instead of SMTP.
Prints mails per second and the sender's cost as a ratio of the baseline. Asserts nothing.
Run with `make bench` or `.venv/bin/python bench/mail.py [N]`.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aiosmtpd.controller import Controller  # noqa: E402

from app import create_app, mail  # noqa: E402
from app.cli.db import upgrade  # noqa: E402
from app.db import db_session  # noqa: E402
from app.services import outbox  # noqa: E402


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(n: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tandem-bench-mail-"))
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                "SECRET_KEY": "bench",
                "TANDEM_ENV": "test",
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": port,
                "TANDEM_MAIL_DIR": str(workdir / "mail"),
                # Commits queue a delivery job; keep it in this run's folder, unconsumed, so
                # the sender below is measured alone.
                "TANDEM_QUEUE": "sqlite",
                "TANDEM_QUEUE_PATH": str(workdir / "queue.sqlite"),
                "TANDEM_QUEUE_THREADS": 0,
            }
        )
        with app.app_context():
            upgrade(app.extensions["tandem.engine"])
            emails = [
                outbox.Email(
                    key=f"bench:{run}:{i}",
                    kind="bench",
                    to_email=f"person{i}@example.org",
                    to_name=f"Person {i}",
                    subject=f"Introduction {i}",
                    text="Hello,\n\nYou are introduced.\n" * 20,
                    html="<p>Hello,</p><p>You are introduced.</p>" * 20,
                )
                for run in ("smtp", "files")
                for i in range(n)
            ]

            messages = [
                mail.build_message(to=(e.to_name, e.to_email), subject=e.subject, text=e.text)
                for e in emails[:n]
            ]
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for message in messages:
                    smtp.send_message(message)
            baseline = time.perf_counter() - start

            session = db_session()
            outbox.enqueue(session=session, emails=emails[:n])
            session.commit()
            before = sink.count
            start = time.perf_counter()
            report = mail.send_pending(limit=n)
            sender = time.perf_counter() - start
            assert report.sent == n and sink.count - before == n, report

            app.config["MAIL_SERVER"] = None
            outbox.enqueue(session=session, emails=emails[n:])
            session.commit()
            start = time.perf_counter()
            report = mail.send_pending(limit=n)
            files = time.perf_counter() - start
    finally:
        controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"mails: {n} per run, SMTP server aiosmtpd on 127.0.0.1")
    print(f"baseline smtplib, one connection, no database: {n / baseline:8.1f} mails/s")
    print(f"outbox sender over SMTP (claim, send, mark):    {n / sender:8.1f} mails/s")
    print(f"outbox sender to .eml files (embedded default): {n / files:8.1f} mails/s")
    print(f"sender time / baseline time: {sender / baseline:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
