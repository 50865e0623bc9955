"""Database engine and the per-request session (committed once, by the view)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlmodel import Session

from app.services import outbox
from app.services.recommendations import REMATCH_REQUESTS


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` spellings; we drive psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> sa.Engine:
    """An engine for SQLite (foreign keys enforced) or PostgreSQL."""
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
    return sa.create_engine(url, pool_pre_ping=True)


def init_app(app: Flask) -> None:
    app.extensions["tandem.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def engine() -> sa.Engine:
    return current_app.extensions["tandem.engine"]


def db_session() -> Session:
    """The session of the current request or CLI command; the caller commits once."""
    if "db_session" not in g:
        session = Session(engine(), expire_on_commit=False)
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _forget_requests)
        g.db_session = session
    return g.db_session


def _after_commit(session: Session) -> None:
    """Queue the work the committed change asked for: re-ranking the items it changed, and
    delivering the mail it wrote (outbox rows or match events)."""
    from app.queue import get_queue

    queue = get_queue()
    for kind, item_id in session.info.pop(REMATCH_REQUESTS, []):
        queue.rematch(kind, item_id)
    if session.info.pop(outbox.MAIL_WRITTEN, False):
        queue.deliver()


def _forget_requests(session: Session) -> None:
    session.info.pop(REMATCH_REQUESTS, None)
    session.info.pop(outbox.MAIL_WRITTEN, None)


def rollback_request() -> None:
    """Undo what the current request's session wrote (after a failed flush or commit)."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
