"""Real `flask --app app worker` processes for the tests that need the Redis queue consumed
as a deployment consumes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    app: Flask, tmp_path: Path, log_name: str, **settings: str
) -> subprocess.Popen[bytes]:
    """`flask --app app worker` on the app's database and Redis queue (one thread), its output
    in `tmp_path / log_name`; `settings` are more environment variables (TANDEM_MODEL...)."""
    env = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "TANDEM_ENV": "test",
        "TANDEM_INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "TANDEM_MAIL_DIR": app.config["TANDEM_MAIL_DIR"],
        "TANDEM_QUEUE": "redis",
        "TANDEM_QUEUE_NAME": app.config["TANDEM_QUEUE_NAME"],
        "REDIS_URL": app.config["REDIS_URL"],
        "HF_HUB_OFFLINE": "1",
        **settings,
    }
    with (tmp_path / log_name).open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--threads", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
