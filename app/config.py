"""Configuration: defaults here, then environment variables, then a test mapping."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import run_command

from matching.scoring import ScoreWeights

# The repository: templates, static files, migrations and the default instance folder.
ROOT = Path(__file__).resolve().parent.parent
DEV_ENVIRONMENTS = {"development", "test"}
DEFAULT_PORT = 5000
# Addresses a server listens on that no browser should be sent to.
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the environment variable and the config key), its default and
    how its text is read from the environment."""

    name: str
    default: Any = None
    kind: type = str  # str, int, float or bool

    def parse(self, text: str) -> Any:
        if self.kind is bool:
            return text.strip().lower() in {"1", "true", "yes", "on"}
        if self.kind is str:
            return text
        try:
            return self.kind(text)
        except ValueError as exc:
            what = "a whole number" if self.kind is int else "a number"
            raise RuntimeError(f"{self.name} must be {what}, got {text!r}") from exc


# Every setting read from the environment, declared once; `.env.example` documents each one
# (tests/app/test_config.py checks that the two agree).
SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY"),
    Setting("TANDEM_ENV", "production"),
    Setting("DATABASE_URL"),  # default: instance/tandem.db, see defaults()
    Setting("TANDEM_MODEL"),
    # How the packaged model runs: auto (int8 ONNX where the CPU has VNNI/AMX, else torch),
    # torch, onnx-fp32 or onnx-int8; read by matching.embeddings.encoder_backend.
    Setting("TANDEM_ENCODER_BACKEND", "auto"),
    # How a forward pass becomes a vector: mean, or mean+cls (mean plus the first token's
    # state, cached under its own model name); read by matching.embeddings.encoder_pooling.
    Setting("TANDEM_ENCODER_POOLING", "mean"),
    # Set, it wins; unset, links name the running server (see served_address).
    Setting("TANDEM_BASE_URL"),
    Setting("TANDEM_TOP_K", 5, int),
    Setting("TANDEM_PAGE_SIZE", 20, int),
    # Public pages for visitors not signed in are cached (app.pagecache): seconds an entry
    # lives (0: no cache), and pages kept per process (all of them without Redis, else the
    # hottest).
    Setting("TANDEM_PAGE_CACHE_SECONDS", 300, int),
    Setting("TANDEM_PAGE_CACHE_ENTRIES", 1000, int),
    Setting("TANDEM_SCORE_WEIGHTS"),
    Setting("REDIS_URL"),
    # Job queue: sqlite (embedded), redis (with REDIS_URL) or immediate (tests); None picks
    # redis when REDIS_URL is set, else sqlite.
    Setting("TANDEM_QUEUE"),
    Setting("TANDEM_QUEUE_NAME", "tandem"),
    Setting("TANDEM_QUEUE_PATH"),
    # Consumer threads in the app process: None means 2 with sqlite, 0 with redis (Redis
    # queues are consumed by `flask --app app worker` processes).
    Setting("TANDEM_QUEUE_THREADS", None, int),
    Setting("TANDEM_MAILS_PER_HOUR", 4, int),
    # Days a collaboration may stay at one stage before its two sides get a reminder digest
    # (at most one per person per this many days).
    Setting("TANDEM_COLLABORATION_REMINDER_DAYS", 14, int),
    # Largest request body accepted (bytes); larger ones get a 413 before being read.
    Setting("TANDEM_MAX_REQUEST_BYTES", 5 * 1024 * 1024, int),
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
    Setting("TANDEM_PROXY_COUNT", 0, int),
    # Partner API: requests per token, and how long a change waits before the feed shows it
    # (a transaction stamps updated_at a moment before it commits).
    Setting("TANDEM_API_RATE_LIMIT", "600 per minute"),
    Setting("TANDEM_API_SETTLE_SECONDS", 2, float),
    # Webhooks to private addresses: None means only in development and test.
    Setting("TANDEM_WEBHOOKS_ALLOW_PRIVATE", None, bool),
    Setting("MAIL_SERVER"),
    Setting("MAIL_PORT", None, int),
    Setting("MAIL_USE_TLS", False, bool),
    Setting("MAIL_USE_SSL", False, bool),
    Setting("MAIL_USERNAME"),
    Setting("MAIL_PASSWORD"),
    Setting("MAIL_DEFAULT_SENDER", "Tandem <no-reply@tandem.example.org>"),
    Setting("TANDEM_MAIL_DIR"),
    Setting("TANDEM_TOTP_SECRET"),
    Setting("TANDEM_SIGNIN_LIMIT_ACCOUNT", "5 per minute;20 per hour"),
    Setting("TANDEM_SIGNIN_LIMIT_ADDRESS", "30 per minute;300 per hour"),
    # Password-reset, confirmation and sign-up mails to one address, on request.
    Setting("TANDEM_ACCOUNT_MAIL_LIMIT", "3 per hour;10 per day"),
    # New search queries (each one embedded by the model) per person: app/search/limits.py.
    Setting("TANDEM_SEARCH_LIMIT_ANONYMOUS", "20 per minute;200 per hour"),
    Setting("TANDEM_SEARCH_LIMIT_SIGNED_IN", "60 per minute;1000 per hour"),
    Setting("TANDEM_SUPPORT_EMAIL", "support@tandem.example.org"),
    # Bearer token that /metrics asks for; unset, it answers requests from this machine only.
    Setting("TANDEM_METRICS_TOKEN"),
)
# Read from the environment elsewhere (and documented in `.env.example` too): the served
# port, the instance folder, the test database, the model hub switch, and gunicorn.conf.py's
# address, web processes and metrics folder.
OTHER_ENVIRONMENT = (
    "PORT",
    "TANDEM_INSTANCE_PATH",
    "TANDEM_TEST_DATABASE_URL",
    "HF_HUB_OFFLINE",
    "HOST",
    "WEB_CONCURRENCY",
    "PROMETHEUS_MULTIPROC_DIR",
)
# Library settings Tandem fixes, not read from the environment.
FIXED: dict[str, Any] = {
    "RATELIMIT_KEY_PREFIX": "tandem",
    "RATELIMIT_HEADERS_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,
}


def defaults(instance_path: str) -> dict[str, Any]:
    values = {setting.name: setting.default for setting in SETTINGS} | FIXED
    values["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'tandem.db'}"
    if not os.environ.get("TANDEM_BASE_URL"):
        values["TANDEM_BASE_URL"] = served_address()
    return values


def served_address() -> str:
    """Where this process's portal answers, for links that leave it (mail) when
    `TANDEM_BASE_URL` is not set.

    Under `flask run` (what `make run` starts) it is the server's own --host and --port (or
    FLASK_RUN_HOST / FLASK_RUN_PORT, which click reads into them), https with --cert. Any
    other command (the queue worker, `demo load`, gunicorn) has no server of its own to ask:
    it takes FLASK_RUN_HOST / FLASK_RUN_PORT, then PORT (which `make run` and most hosting
    platforms set), then Flask's default port, 5000. A wildcard host (0.0.0.0) is not an
    address to visit: links then name 127.0.0.1, and other machines need TANDEM_BASE_URL.
    """
    host = os.environ.get("FLASK_RUN_HOST") or "127.0.0.1"
    port = DEFAULT_PORT
    for name in ("PORT", "FLASK_RUN_PORT"):  # the later one wins
        if os.environ.get(name):
            try:
                port = int(os.environ[name])
            except ValueError as exc:
                raise RuntimeError(
                    f"{name} must be a whole number (a port), got {os.environ[name]!r}"
                ) from exc
    scheme = "http"
    context = click.get_current_context(silent=True)
    if context is not None and context.command is run_command:
        host = context.params.get("host") or host
        port = context.params.get("port") or port
        scheme = "https" if context.params.get("cert") else "http"
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{scheme}://{host}:{port}"


def from_environment() -> dict[str, Any]:
    """Every setting that is set in the environment, read as its kind."""
    return {
        setting.name: setting.parse(os.environ[setting.name])
        for setting in SETTINGS
        if os.environ.get(setting.name)
    }


def ensure_secret_key(app: Flask) -> None:
    """Refuse to run in production without SECRET_KEY; in development keep one per instance."""
    if app.config.get("SECRET_KEY"):
        return
    if not (app.debug or app.testing or app.config["TANDEM_ENV"] in DEV_ENVIRONMENTS):
        raise RuntimeError(
            "SECRET_KEY must be set outside development (see .env.example); "
            "for a local trial set TANDEM_ENV=development"
        )
    key_file = Path(app.instance_path) / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    app.config["SECRET_KEY"] = key_file.read_text().strip()


def score_weights(app: Flask) -> ScoreWeights:
    """The configured score weights (`TANDEM_SCORE_WEIGHTS`, e.g. `proposal=0.5,fit=0.3`)."""
    text = app.config.get("TANDEM_SCORE_WEIGHTS")
    if not text:
        return ScoreWeights()
    if isinstance(text, ScoreWeights):
        return text
    try:
        return ScoreWeights.parse(str(text))
    except ValueError as exc:
        raise RuntimeError(f"TANDEM_SCORE_WEIGHTS: {exc}") from exc
