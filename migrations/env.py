"""Alembic environment: the models' metadata, over the connection `flask db` hands in."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _configure(**kwargs: object) -> None:
    from app.services.search_words import include_object  # indexes no model declares

    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=os.environ["DATABASE_URL"], literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from app.db import normalise_url

        engine = sa.create_engine(normalise_url(os.environ["DATABASE_URL"]))
        with engine.begin() as connection:
            _configure(connection=connection)
            context.run_migrations()
        return
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
