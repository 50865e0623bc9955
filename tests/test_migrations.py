"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import SQLModel

import models  # noqa: F401
from app import create_app
from app.cli.db import alembic_config, upgrade
from app.db import make_engine
from app.services.search_words import include_object


def _differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_as_batch": True,
                "include_object": include_object,  # migration 0016's expression indexes
            },
        )
        return compare_metadata(context, SQLModel.metadata)


def test_migrated_schema_equals_the_models(app: Flask) -> None:
    assert _differences(app.extensions["tandem.engine"]) == []


def test_downgrade_to_base_and_back_up(app: Flask) -> None:
    from alembic import command

    engine = app.extensions["tandem.engine"]
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade(engine)
    assert {"proposal", "offer", "match", "user"} <= set(sa.inspect(engine).get_table_names())
    assert _differences(engine) == []


def test_db_upgrade_command_migrates_any_database_url(
    tmp_path: Path, monkeypatch, runner: FlaskCliRunner
) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", url)
    other = create_app({"TESTING": True, "SECRET_KEY": "x"})
    result = other.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    assert "proposal" in sa.inspect(engine).get_table_names()
    assert _differences(engine) == []
    current = other.test_cli_runner().invoke(args=["db", "current"])
    assert current.exit_code == 0
    engine.dispose()
