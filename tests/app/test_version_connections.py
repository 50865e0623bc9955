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
from app.catalogue_version import version_store


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


def test_an_app_whose_engine_is_disposed_leaves_no_connection_open(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    before = _open_connections(database_url)
    for _ in range(3):
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
        assert store.read() is not None
        assert store.read_with_account(engine, "nobody-signs-in-as-this")[1] is None
        assert _open_connections(database_url) > before  # the reads held connections
        engine.dispose()
    assert _open_connections(database_url) == before
