"""Database engine and the per-request session (committed once per request, by
`app.transaction` around each portal view)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlmodel import Session

from app import catalogue_version


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` spellings; we drive psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> sa.Engine:
    """An engine for SQLite (foreign keys enforced) or PostgreSQL, whose committed writes
    bump the catalogue version that cached public pages are keyed by (`app.catalogue_version`)."""
    engine = _make_engine(url)
    catalogue_version.track_writes(engine)
    return engine


def _make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # A host that never answers fails the connection after 5 s instead of hanging a request
    # (or /readyz) for the operating system's TCP timeout; a URL's own setting wins.
    connect_args = {} if "connect_timeout=" in url else {"connect_timeout": CONNECT_TIMEOUT_S}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


CONNECT_TIMEOUT_S = 5
"""Seconds PostgreSQL connections wait for the server to answer."""


# `app.extensions` key: what runs after the request's session commits or rolls back.
HOOKS = "tandem.session_hooks"


@dataclass(frozen=True)
class SessionHooks:
    """Work a committed transaction asked for (its requests sit in `session.info`), and what
    to forget when it rolled back instead. The job queue registers one (`app.queue`), so
    this module knows nothing of what the work is."""

    after_commit: Callable[[Session], None]
    after_rollback: Callable[[Session], None]


def init_app(app: Flask) -> None:
    app.extensions["tandem.engine"] = make_engine(app.config["DATABASE_URL"])
    app.extensions[HOOKS] = []
    app.teardown_appcontext(_close_session)


def add_hooks(app: Flask, hooks: SessionHooks) -> None:
    app.extensions[HOOKS].append(hooks)


def engine() -> sa.Engine:
    return current_app.extensions["tandem.engine"]


def db_session() -> Session:
    """The session of the current request or CLI command; the caller commits once."""
    if "db_session" not in g:
        session = Session(engine(), expire_on_commit=False)
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _after_rollback)
        g.db_session = session
    return g.db_session


def _after_commit(session: Session) -> None:
    for hooks in current_app.extensions[HOOKS]:
        hooks.after_commit(session)


def _after_rollback(session: Session) -> None:
    for hooks in current_app.extensions[HOOKS]:
        hooks.after_rollback(session)


def commit_request() -> None:
    """Keep what the current request's session wrote (once, when the request succeeded)."""
    session = g.get("db_session")
    if session is not None:
        session.commit()


def rollback_request() -> None:
    """Undo what the current request's session wrote (after a failed flush or commit)."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
