"""The catalogue version's reader (`app.catalogue_version`) has connections of its own; they
close with the app's engine. A process that makes many apps (a test run, a command that
starts one per database) would otherwise keep one connection per app until PostgreSQL
refuses new clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.catalogue_version import VersionStore, version_store
from tests.conftest import POSTGRES_URL


def _open_connections(url: str) -> int:
    """Connections to the test's database held by anyone but the counting one."""
    if url.startswith("sqlite"):
        database = Path(sa.make_url(url).database or "").resolve()
        held = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                held += Path(os.readlink(f"/proc/self/fd/{fd}")) == database
            except OSError:
                continue
        return held
    counter = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with counter.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        counter.dispose()


def _engine_and_store(database_url: str) -> tuple[sa.Engine, VersionStore]:
    """A new app's engine and the catalogue version store that watches it."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "TANDEM_QUEUE": "immediate",
        }
    )
    engine = app.extensions["tandem.engine"]
    store = version_store(engine)
    assert store is not None
    return engine, store


def test_an_app_whose_engine_is_disposed_leaves_no_connection_open(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    before = _open_connections(database_url)
    for _ in range(3):
        engine, store = _engine_and_store(database_url)
        assert store.read() is not None
        assert store.read_with_account(engine, "nobody-signs-in-as-this")[1] is None
        assert _open_connections(database_url) > before  # the reads held connections
        engine.dispose()
    assert _open_connections(database_url) == before


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TANDEM_TEST_DATABASE_URL (PostgreSQL)")
def test_the_version_is_read_again_after_the_server_dropped_every_reading_connection(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a restarted PostgreSQL does to the reader's kept connections: each is broken. The
    next read is answered (on a new connection), and so is every one after it."""
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    engine, store = _engine_and_store(postgres_url)
    version = store.read()
    assert version is not None
    before = _open_connections(postgres_url)
    assert before > 0
    killer = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with killer.connect() as connection:
            dropped = connection.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert dropped == before
        for _ in range(3):
            assert store.read() == version
            assert store.read_with_account(engine, "nobody-signs-in-as-this") == (version, None)
    finally:
        killer.dispose()
        engine.dispose()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TANDEM_TEST_DATABASE_URL (PostgreSQL)")
def test_a_forked_process_reads_on_its_own_connections_and_leaves_its_parents_open(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child forked after the parent read (a server that forks its workers) opens its own
    reading connection, and disposing of its engine closes that one, not the parent's."""
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    engine, store = _engine_and_store(postgres_url)
    try:
        version = store.read()
        held = _open_connections(postgres_url)
        child = os.fork()
        if child == 0:  # the child: no pytest from here on, only its exit status
            status = 1
            try:
                status = 0 if store.read() == version else 2
                if _open_connections(postgres_url) != held + 1:  # not a connection of its own
                    status = 3
                engine.dispose(close=False)  # the parent's pool is the parent's
            finally:
                os._exit(status)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _open_connections(postgres_url) == held  # the child's closed, the parent's open
        assert store.read() == version
    finally:
        engine.dispose()
