"""The catalogue version: a token that changes after every committed write that could change
what a public page shows, whoever wrote it (a view, the partner API, a CLI command, a queue
worker, a test or a migration), so that a rendered public page can be cached under it
(`app.pagecache`).

How no writer is missed: `track_writes` listens on the SQLAlchemy *engine*, below the ORM, for
every statement sent to the database. An INSERT, UPDATE or DELETE marks the connection dirty,
unless it only touches what no public page shows (the tables in `PRIVATE_TABLES`, or the
private columns of a user in `PRIVATE_USER_COLUMNS`); anything else that is not a plain read
(DDL, TRUNCATE, COPY, a WITH that writes, a statement this module cannot parse) marks it
dirty too, so an unknown writer costs a cache miss, never a stale page. A rollback forgets
the mark; a commit turns it into a bump, made when the connection goes back to the pool, that
is after the COMMIT and before the request, command or job that committed carries on.

Why after the commit and not in the same transaction: a reader reads the version *before* it
reads the data. A version bumped after the commit can then never label a page rendered
before the commit (that page was stored under the old version, which is never current
again), and no hot row is locked by every writer. The bumped value is never one seen before.

Where the version lives, next to the data so every process of one database shares it:
- PostgreSQL: the sequence `tandem_page_version` (created on first use, outside the
  migrations: it holds no data), read with one statement; the sequence's oid is part of the
  token, so a dropped and recreated schema never repeats an old token;
- a SQLite file: a file beside it (`<database>-page-version`) holding a random token, replaced
  atomically on each bump;
- in-memory SQLite: a token held by the engine.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

SEQUENCE = "tandem_page_version"
# Tables whose rows no public page shows: mail and webhook outboxes, partner credentials,
# recorded events (the change they describe is written beside them) and stored embeddings
# (a search keeps the vector of new words: that must not empty the cache).
PRIVATE_TABLES = frozenset(
    {
        "notification",
        "webhook",
        "webhookdelivery",
        "partnertoken",
        "domainevent",
        "matchevent",
        "embedding",
        "alembic_version",
    }
)
# Columns of `user` that no public page shows: sign-in secrets and counters (every sign-in
# with an authenticator code writes tf_totp_last_counter), mail preferences. (A kept
# dashboard reads its person's account itself: app.dashcache.)
PRIVATE_USER_COLUMNS = frozenset(
    {
        "password_hash",
        "fs_uniquifier",
        "tf_primary_method",
        "tf_totp_secret",
        "tf_totp_last_counter",
        "tf_phone_number",
        "notification_preference",
        "notify_min_score",
        "collaboration_reminders",
        "updated_at",
    }
)
_READS = frozenset(
    {"SELECT", "SHOW", "EXPLAIN", "PRAGMA", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT"}
)
_WRITE_WORD = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"\s*(\w+)")
_TARGET = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?\s', re.IGNORECASE)
_SET_CLAUSE = re.compile(r"\sSET\s(.*?)(?:\sWHERE\s|\sRETURNING\s|$)", re.IGNORECASE | re.DOTALL)
_ASSIGNED = re.compile(r'(?:^|,)\s*"?(\w+)"?\s*=')

# Whether the person signed in is active, and their role.
Account = tuple[bool, str] | None
_ACCOUNT = sa.text('SELECT active, role FROM "user" WHERE fs_uniquifier = :uniquifier')

_STORES: weakref.WeakKeyDictionary[sa.Engine, VersionStore] = weakref.WeakKeyDictionary()
_DIRTY = "tandem.catalogue_dirty"
_COMMITTED = "tandem.catalogue_committed"


def changes_catalogue(statement: str) -> bool:
    """Whether `statement` (SQL as sent to the database) may change what a public page shows.
    Unknown statements count as changes."""
    found = _FIRST_WORD.match(statement)
    verb = found.group(1).upper() if found else ""
    if verb in _READS:
        return False
    if verb == "WITH":  # a read, unless one of its parts writes
        return _WRITE_WORD.search(statement) is not None
    if verb not in {"INSERT", "UPDATE", "DELETE"}:
        return True  # DDL, TRUNCATE, COPY, MERGE, CALL, ...: assume a change
    target = _TARGET.match(statement)
    if target is None:
        return True
    table = target.group(1).lower()
    if table in PRIVATE_TABLES:
        return False
    if table == "user" and verb == "UPDATE":
        assigned = _SET_CLAUSE.search(statement)
        if assigned is None:
            return True
        columns = {name.lower() for name in _ASSIGNED.findall(assigned.group(1))}
        return not columns or not columns <= PRIVATE_USER_COLUMNS
    return True


class VersionStore:
    """Reads and bumps the version of one database (see the module docstring)."""

    def read(self) -> str | None:
        """The current token (made on first use), or None when there is none (then nothing
        is cached)."""
        raise NotImplementedError

    def bump(self, dbapi_connection: Any) -> None:
        """Make the token one never seen before. `dbapi_connection` is idle (committed)."""
        raise NotImplementedError

    def read_with_account(self, engine: sa.Engine, uniquifier: str) -> tuple[str | None, Account]:
        """The token, then (read after it) the account signed in as `uniquifier`: whether it
        is active and its role, or None when no user has that `fs_uniquifier`."""
        version = self.read()
        with engine.connect() as connection:
            row = connection.execute(_ACCOUNT, {"uniquifier": uniquifier}).first()
        return version, None if row is None else (bool(row[0]), str(row[1]))


class MemoryVersion(VersionStore):
    def __init__(self) -> None:
        self._token = secrets.token_hex(8)

    def read(self) -> str | None:
        return self._token

    def bump(self, dbapi_connection: Any) -> None:
        self._token = secrets.token_hex(8)


class FileVersion(VersionStore):
    """A token in a file beside a SQLite database; `os.replace` makes each bump atomic, and a
    random token needs no lock: two bumps at once both leave a token never seen before."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            return self.path.read_text() or None
        except FileNotFoundError:  # no write committed since the database was made
            self.bump(None)
            return self.path.read_text() or None

    def bump(self, dbapi_connection: Any) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{secrets.token_hex(6)}")
        temporary.write_text(secrets.token_hex(12))
        os.replace(temporary, self.path)


class SequenceVersion(VersionStore):
    """A PostgreSQL sequence: `nextval` is atomic and never returns a value twice.

    Read on every request a kept page may answer, so through connections of its own, in
    autocommit, each with its one cursor, reused: one round trip per read, and little else.
    Measured per read on this project's 2-core host (client CPU): 79 us through a SQLAlchemy
    pool's checkout and a new cursor (psycopg_pool's is no cheaper), 32 us like this; the
    query itself is prepared by psycopg after its fifth use on a connection."""

    _READ = (
        f"SELECT to_regclass('{SEQUENCE}')::oid, pg_sequence_last_value(to_regclass('{SEQUENCE}'))"
    )
    # The most idle reading connections kept (one per thread reading at once, in practice).
    IDLE = 8

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._created = threading.Event()
        # Idle (connection, cursor) pairs, taken whole (list.pop is atomic), and the process
        # and generation they belong to: a forked child never uses its parent's, and none
        # outlives the engine's disposal.
        self._idle: list[tuple[Any, Any]] = []
        self._owner = (os.getpid(), 0)
        self._lock = threading.Lock()
        # The reader's connections close with the engine's, not whenever it is collected (a
        # process that makes many apps, a test run, would otherwise run out of connections).
        sa.event.listen(engine, "engine_disposed", self._close_idle)

    def _close_idle(self, _engine: sa.Engine | None = None) -> None:
        """Close the idle connections, and those in use when they come back. A forked child
        only forgets its parent's: closing them would end the parent's sessions."""
        with self._lock:
            idle, self._idle = self._idle, []
            forked = self._owner[0] != os.getpid()
            self._owner = (os.getpid(), self._owner[1] + 1)
        if not forked:
            for connection, _cursor in idle:
                connection.close()

    def _connect(self) -> tuple[Any, Any]:
        dialect = self.engine.dialect
        arguments, options = dialect.create_connect_args(self.engine.url)
        connection = dialect.connect(*arguments, **{"connect_timeout": 5, **options})
        connection.autocommit = True
        return connection, connection.cursor()

    # The version and, in the same statement (one round trip, one snapshot), the account.
    _READ_WITH_ACCOUNT = (
        f"{_READ}, account.active, account.role::text FROM (SELECT 1) AS one "
        'LEFT JOIN "user" AS account ON account.fs_uniquifier = %s'
    )

    def _read_once(self, statement: str, parameters: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        if self._owner[0] != os.getpid():  # forked: the parent's connections are not ours
            self._close_idle()
        owner = self._owner
        try:
            connection, cursor = self._idle.pop()
        except IndexError:
            connection, cursor = self._connect()
        try:
            cursor.execute(statement, parameters or None)
            row = cursor.fetchone()
        except Exception:
            # A broken connection is never used again, nor are the idle ones beside it (a
            # server that restarted broke them all).
            connection.close()
            self._close_idle()
            raise
        with self._lock:
            kept = self._owner == owner and len(self._idle) < self.IDLE
            if kept:
                self._idle.append((connection, cursor))
        if not kept:
            connection.close()
        return tuple(row)

    def _read(self, statement: str, parameters: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        try:
            row = self._read_once(statement, parameters)
        except Exception:  # a server restarted, say: once more, on a new connection
            log.info("reading the catalogue version again", exc_info=True)
            row = self._read_once(statement, parameters)
        if row[0] is None:  # no write committed since the schema was made
            self.bump(None)
            row = self._read_once(statement, parameters)
        return row

    def read(self) -> str | None:
        oid, last_value = self._read(self._READ)
        return None if oid is None else f"{oid}:{last_value or 0}"

    def read_with_account(self, engine: sa.Engine, uniquifier: str) -> tuple[str | None, Account]:
        oid, last_value, active, role = self._read(self._READ_WITH_ACCOUNT, (uniquifier,))
        version = None if oid is None else f"{oid}:{last_value or 0}"
        return version, None if active is None else (bool(active), str(role))

    def bump(self, dbapi_connection: Any) -> None:
        if dbapi_connection is None:
            with self.engine.connect() as connection:
                self.bump(connection.connection.dbapi_connection)
                connection.commit()
            return
        for attempt in range(2):
            cursor = dbapi_connection.cursor()
            try:
                if not self._created.is_set():
                    cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
                cursor.execute(f"SELECT nextval('{SEQUENCE}')")
                dbapi_connection.commit()
                self._created.set()
                return
            except Exception:
                # Two processes creating the sequence at once: one of them fails, and its
                # second attempt finds the sequence there; or the schema was dropped and made
                # again: the second attempt creates it anew.
                dbapi_connection.rollback()
                self._created.clear()
                if attempt:
                    raise
            finally:
                cursor.close()


def store_for(engine: sa.Engine) -> VersionStore:
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return SequenceVersion(engine)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileVersion(Path(f"{url.database}-page-version"))
    return MemoryVersion()


def track_writes(engine: sa.Engine) -> None:
    """Bump `engine`'s catalogue version after each committed write that may change a public
    page (the module docstring says how); `version_store(engine)` reads it."""
    store = store_for(engine)
    _STORES[engine] = store

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _mark(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not conn.info.get(_DIRTY) and changes_catalogue(statement):
            conn.info[_DIRTY] = True

    @sa.event.listens_for(engine, "commit")
    def _committing(conn) -> None:  # type: ignore[no-untyped-def]
        if conn.info.pop(_DIRTY, False):
            conn.info[_COMMITTED] = True

    @sa.event.listens_for(engine, "rollback")
    def _rolled_back(conn) -> None:  # type: ignore[no-untyped-def]
        conn.info.pop(_DIRTY, None)

    @sa.event.listens_for(engine.pool, "reset")
    def _reset(dbapi_connection, record, reset_state) -> None:  # type: ignore[no-untyped-def]
        record.info.pop(_DIRTY, None)

    @sa.event.listens_for(engine.pool, "checkin")
    def _bump(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        if record is None or not record.info.pop(_COMMITTED, False):
            return
        try:
            store.bump(dbapi_connection)
        except Exception:  # the write is committed: a failed bump must not undo the answer
            log.exception("could not bump the catalogue version; cached pages may be stale")


def version_store(engine: sa.Engine) -> VersionStore | None:
    """The version of `engine`'s database, when `track_writes` watches it."""
    return _STORES.get(engine)
