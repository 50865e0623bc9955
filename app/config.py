"""Configuration: defaults here, then environment variables, then a test mapping."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import run_command

from matching.scoring import ScoreWeights

DEV_ENVIRONMENTS = {"development", "test"}
DEFAULT_PORT = 5000
# Addresses a server listens on that no browser should be sent to.
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def defaults(instance_path: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'tandem.db'}",
        "TANDEM_MODEL": None,
        # Set, it wins (see from_environment); unset, links name the running server.
        "TANDEM_BASE_URL": None if os.environ.get("TANDEM_BASE_URL") else served_address(),
        "TANDEM_TOP_K": 5,
        "TANDEM_PAGE_SIZE": 20,
        "TANDEM_ENV": "production",
        "TANDEM_SCORE_WEIGHTS": None,
        "SECRET_KEY": None,
        "REDIS_URL": None,
        "MAIL_SERVER": None,
        "MAIL_PORT": None,
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_USERNAME": None,
        "MAIL_PASSWORD": None,
        "MAIL_DEFAULT_SENDER": "Tandem <no-reply@tandem.example.org>",
        "TANDEM_MAIL_DIR": None,
        "TANDEM_TOTP_SECRET": None,
        "TANDEM_SUPPORT_EMAIL": "support@tandem.example.org",
        "TANDEM_SIGNIN_LIMIT_ACCOUNT": "5 per minute;20 per hour",
        "TANDEM_SIGNIN_LIMIT_ADDRESS": "30 per minute;300 per hour",
        # Password-reset, confirmation and sign-up mails to one address, on request.
        "TANDEM_ACCOUNT_MAIL_LIMIT": "3 per hour;10 per day",
        # New search queries (each one embedded by the model) per person; see app/search/limits.py.
        "TANDEM_SEARCH_LIMIT_ANONYMOUS": "20 per minute;200 per hour",
        "TANDEM_SEARCH_LIMIT_SIGNED_IN": "60 per minute;1000 per hour",
        "RATELIMIT_KEY_PREFIX": "tandem",
        "WTF_CSRF_TIME_LIMIT": None,
        # Job queue: sqlite (embedded), redis (with REDIS_URL) or immediate (tests); None
        # picks redis when REDIS_URL is set, else sqlite.
        "TANDEM_QUEUE": None,
        "TANDEM_QUEUE_NAME": "tandem",
        "TANDEM_QUEUE_PATH": None,
        # Consumer threads in the app process: None means 2 with sqlite, 0 with redis
        # (Redis queues are consumed by `flask --app app worker` processes).
        "TANDEM_QUEUE_THREADS": None,
        "TANDEM_MAILS_PER_HOUR": 4,
        # Largest request body accepted (bytes); larger ones get a 413 before being read.
        "TANDEM_MAX_REQUEST_BYTES": 5 * 1024 * 1024,
        # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
        "TANDEM_PROXY_COUNT": 0,
        # Partner API: requests per token, and how long a change waits before the feed
        # shows it (a transaction stamps updated_at a moment before it commits).
        "TANDEM_API_RATE_LIMIT": "600 per minute",
        "TANDEM_API_SETTLE_SECONDS": 2,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Webhooks to private addresses: None means only in development and test.
        "TANDEM_WEBHOOKS_ALLOW_PRIVATE": None,
    }


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
    """Every variable `.env.example` documents, when set."""
    values: dict[str, Any] = {}
    for name in (
        "DATABASE_URL",
        "TANDEM_MODEL",
        "TANDEM_BASE_URL",
        "TANDEM_ENV",
        "TANDEM_SCORE_WEIGHTS",
        "SECRET_KEY",
        "REDIS_URL",
        "MAIL_SERVER",
        "MAIL_USERNAME",
        "MAIL_PASSWORD",
        "MAIL_DEFAULT_SENDER",
        "TANDEM_MAIL_DIR",
        "TANDEM_TOTP_SECRET",
        "TANDEM_SUPPORT_EMAIL",
        "TANDEM_SIGNIN_LIMIT_ACCOUNT",
        "TANDEM_SIGNIN_LIMIT_ADDRESS",
        "TANDEM_ACCOUNT_MAIL_LIMIT",
        "TANDEM_SEARCH_LIMIT_ANONYMOUS",
        "TANDEM_SEARCH_LIMIT_SIGNED_IN",
        "TANDEM_QUEUE",
        "TANDEM_QUEUE_NAME",
        "TANDEM_QUEUE_PATH",
        "TANDEM_API_RATE_LIMIT",
    ):
        if os.environ.get(name):
            values[name] = os.environ[name]
    for name in ("MAIL_USE_TLS", "MAIL_USE_SSL", "TANDEM_WEBHOOKS_ALLOW_PRIVATE"):
        if os.environ.get(name):
            values[name] = os.environ[name].strip().lower() in {"1", "true", "yes", "on"}
    for name in (
        "TANDEM_TOP_K",
        "TANDEM_PAGE_SIZE",
        "MAIL_PORT",
        "TANDEM_QUEUE_THREADS",
        "TANDEM_MAILS_PER_HOUR",
        "TANDEM_MAX_REQUEST_BYTES",
        "TANDEM_PROXY_COUNT",
    ):
        if os.environ.get(name):
            try:
                values[name] = int(os.environ[name])
            except ValueError as exc:
                raise RuntimeError(
                    f"{name} must be a whole number, got {os.environ[name]!r}"
                ) from exc
    if os.environ.get("TANDEM_API_SETTLE_SECONDS"):
        try:
            values["TANDEM_API_SETTLE_SECONDS"] = float(os.environ["TANDEM_API_SETTLE_SECONDS"])
        except ValueError as exc:
            raise RuntimeError("TANDEM_API_SETTLE_SECONDS must be a number of seconds") from exc
    return values


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
