"""The outcome loop in the app: decisions read from matches and collaborations, a fit
recorded and adopted only when better by the margin, its version on the matches it ranks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session, select

from app.services.ranking_model import fit_ranking_model, ranking_state, recorded_decisions
from matching.scoring import COMPONENTS, ScoreWeights
from models import (
    Collaboration,
    CollaborationStage,
    Match,
    MatchStatus,
    RankingModel,
)
from tests.app.outcomes import AS_FIXED, record_decision

FIT_FIRST = np.array([0.2, 0.05, 0.05, 0.7])
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def record_history(
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> Callable[..., None]:
    """Matches decided by a hidden utility `truth` over their components, graded as the app
    records them: dismissed, interest, introduced, agreement signed, published."""

    def record(proposals: int, truth: np.ndarray, *, offers: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        author = make_user()
        offer_ids = [make_offer().id for _ in range(offers)]
        components = rng.uniform(0, 1, (proposals, offers, len(COMPONENTS)))
        utility = components @ truth + rng.normal(0, 0.03, (proposals, offers))
        grades = np.searchsorted(np.quantile(utility, [0.4, 0.65, 0.85, 0.95]), utility)
        for p in range(proposals):
            proposal_id = make_proposal(author_id=author.id).id
            for o, offer_id in enumerate(offer_ids):
                at = START + timedelta(days=p, hours=o)
                grade = int(grades[p, o])
                record_decision(
                    session,
                    proposal_id=proposal_id,
                    offer_id=offer_id,
                    components=components[p, o],
                    grade=grade,
                    at=at,
                    interested="academic",
                )
        session.commit()

    return record


def fit(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=["ranking", "fit", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_with_no_decisions_todays_weights_stay_and_the_command_says_so(
    app: Flask, runner: FlaskCliRunner, session: Session
) -> None:
    output = fit(runner)
    assert "too few decisions to learn from" in output
    assert f"Today's fixed weights rank ({ScoreWeights().version})" in output
    model = session.exec(select(RankingModel)).one()
    assert not model.adopted and model.weights == {}
    state = ranking_state(session=session, configured=ScoreWeights())
    assert state.weights == ScoreWeights() and not state.learned


def test_decisions_are_graded_by_how_far_each_pair_got(
    session: Session, record_history: Callable[..., None]
) -> None:
    record_history(3, FIT_FIRST, offers=6)
    decisions = recorded_decisions(session=session)
    assert len(decisions) == 18
    assert set(decisions.relevance) == {0.0, 1.0, 2.0, 3.0, 4.0}
    published = session.exec(
        select(Collaboration).where(Collaboration.stage == CollaborationStage.published)
    ).all()
    assert len(published) == int((decisions.relevance == 4).sum())


def test_better_weights_are_adopted_and_rank_with_their_version(
    app: Flask,
    runner: FlaskCliRunner,
    session: Session,
    record_history: Callable[..., None],
    make_offer: Callable[..., Any],
) -> None:
    record_history(120, FIT_FIRST)
    make_offer(title="A new offer nobody has answered yet")
    output = fit(runner, "--recompute")
    model = session.exec(select(RankingModel)).one()
    assert model.adopted, output
    assert max(model.weights, key=model.weights.get) == "fit"
    assert f"Model {model.version} ranks (tandem-2/{model.version}/w-" in output
    assert model.evaluation["ci_low"] > 0 and model.evaluation["difference"] >= 0.01
    suggested = session.exec(select(Match).where(Match.status == MatchStatus.suggested)).all()
    # The new offer is suggested to proposals, ranked by the learned model.
    assert suggested
    assert {m.algorithm_version.split("/")[1] for m in suggested} == {model.version}
    with app.app_context():
        from app.matcher import get_weights

        assert get_weights().version.startswith(f"tandem-2/{model.version}/")


def test_weights_already_right_are_kept(
    runner: FlaskCliRunner, session: Session, record_history: Callable[..., None]
) -> None:
    record_history(120, AS_FIXED, seed=1)
    output = fit(runner)
    model = session.exec(select(RankingModel)).one()
    assert not model.adopted
    assert "today's weights stay" in output
    assert not ranking_state(session=session, configured=ScoreWeights()).learned


def test_a_model_fitted_against_other_weights_does_not_rank(
    session: Session, record_history: Callable[..., None]
) -> None:
    record_history(120, FIT_FIRST, seed=2)
    model = fit_ranking_model(session=session, baseline=ScoreWeights())
    session.commit()
    assert model.adopted
    other = ScoreWeights.parse("proposal=1")
    state = ranking_state(session=session, configured=other)
    assert state.weights == other and not state.learned
    assert "fitted against other fixed weights" in state.summary


def test_the_queue_fits_weekly_and_records_the_verdict(
    app: Flask, session: Session, record_history: Callable[..., None]
) -> None:
    record_history(120, FIT_FIRST, seed=3)
    queue = app.extensions["tandem.queue"]
    weekly = next(
        task for task in queue.huey._registry.periodic_tasks if task.name == "tandem.fit-ranking"
    )
    monday_4am = datetime(2026, 12, 7, 4, 0)
    assert weekly.validate_datetime(monday_4am)
    assert not weekly.validate_datetime(monday_4am + timedelta(days=1))
    model_id = queue.fit_ranking()
    model = session.get(RankingModel, model_id)
    assert model is not None and model.adopted
