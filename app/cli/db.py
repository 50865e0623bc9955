"""`flask --app app db ...`: Alembic migrations against the app's DATABASE_URL."""

from __future__ import annotations

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import Blueprint

from app.config import ROOT
from app.db import engine

bp = Blueprint("db", __name__, cli_group="db")

MIGRATIONS = ROOT / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for `migrations/`, bound to `connection` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(bind: sa.Engine, revision: str = "head") -> None:
    with bind.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


@bp.cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    upgrade(engine(), revision)
    click.echo(f"Database at {revision} ({engine().url.render_as_string(hide_password=True)})")


@bp.cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Revert migrations down to REVISION (`base` empties the schema)."""
    with engine().begin() as connection:
        command.downgrade(alembic_config(connection), revision)


@bp.cli.command("current")
def current_command() -> None:
    """Show the revision the database is at."""
    with engine().connect() as connection:
        command.current(alembic_config(connection), verbose=False)


@bp.cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
@click.option("--autogenerate/--empty", default=True, help="Diff the models against the database.")
def revision_command(message: str, autogenerate: bool) -> None:
    """Write a new migration script under migrations/versions/."""
    with engine().begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=autogenerate)
