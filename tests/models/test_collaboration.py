"""Collaboration tables: the migration backfills a record for each match already introduced,
and the database refuses values no form may store."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask import Flask
from sqlmodel import Session, select

from models import (
    Collaboration,
    CollaborationEvent,
    CollaborationStage,
    Match,
    MatchStatus,
    utcnow,
)


def _match(session: Session, make_proposal: Any, make_offer: Any, status: MatchStatus) -> Match:
    match = Match(
        proposal_id=make_proposal().id,
        offer_id=make_offer().id,
        score=0.5,
        algorithm_version="test",
        status=status,
        introduced_at=utcnow() if status == MatchStatus.introduced else None,
    )
    session.add(match)
    session.commit()
    return match


def _migration_0014() -> Any:
    versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    path = versions / "0014_collaborations.py"
    spec = importlib.util.spec_from_file_location("migration_0014", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0014_backfills_a_record_per_introduced_match(
    app: Flask, session: Session, make_proposal: Any, make_offer: Any
) -> None:
    # Matches introduced before collaborations existed: no record yet.
    introduced = _match(session, make_proposal, make_offer, MatchStatus.introduced)
    suggested = _match(session, make_proposal, make_offer, MatchStatus.suggested)
    introduced_at = introduced.introduced_at
    session.close()
    engine = app.extensions["tandem.engine"]
    with engine.begin() as connection:
        with Operations.context(MigrationContext.configure(connection)):
            _migration_0014()._backfill()

    with Session(engine) as fresh:
        (record,) = fresh.exec(select(Collaboration)).all()
        assert record.match_id == introduced.id != suggested.id
        assert record.stage == CollaborationStage.introduced
        assert record.stage_changed_at == introduced_at
        (event,) = fresh.exec(select(CollaborationEvent)).all()
        assert (event.collaboration_id, event.from_stage, event.to_stage, event.details) == (
            record.id,
            None,
            "introduced",
            {},
        )


def test_one_record_per_match_and_no_negative_hours(
    session: Session, make_proposal: Any, make_offer: Any
) -> None:
    match = _match(session, make_proposal, make_offer, MatchStatus.introduced)
    session.add(Collaboration(match_id=match.id))
    session.commit()
    session.add(Collaboration(match_id=match.id))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    table = Collaboration.__table__
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.update(table).values(gpu_hours_granted=-1))
        session.commit()
    session.rollback()
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.text("UPDATE collaboration SET stage = 'abandoned'"))
        session.commit()
