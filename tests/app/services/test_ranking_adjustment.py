"""The per-company adjustment in the app: decisions recorded where company A introduces by
resource fit and company B by proposal text; `flask ranking fit` adopts the adjustment, a
recompute scores each company's offers by its own taste, and the version names it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session, select

from app.services import recommendations
from app.services.ranking_model import ranking_state
from app.services.snapshots import SnapshotCache
from matching.outcome_adjustment import AdjustedWeights
from matching.scoring import COMPONENTS, ScoreWeights
from models import (
    Match,
    OrganisationKind,
    RankingModel,
)
from tests.app.outcomes import record_decision

FIT_FIRST = np.array([0.2, 0.05, 0.05, 0.7])
TEXT_FIRST = np.array([0.7, 0.05, 0.05, 0.2])
START = datetime(2026, 1, 1, tzinfo=UTC)
PROPOSAL, FIT = COMPONENTS.index("proposal"), COMPONENTS.index("fit")


@pytest.fixture
def companies(
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> tuple[int, int]:
    """Company A answers its three offers' matches by fit, company B by text: each pair
    dismissed, met with interest, introduced, agreed or published as its taste says."""
    rng = np.random.default_rng(5)
    a, b = (make_organisation(kind=OrganisationKind.company).id for _ in range(2))
    offers = [(make_offer(organisation_id=org).id, taste) for org, taste in
              [(a, FIT_FIRST)] * 3 + [(b, TEXT_FIRST)] * 3]  # fmt: skip
    author = make_user()
    proposals = 240
    components = rng.uniform(0, 1, (proposals, len(offers), len(COMPONENTS)))
    tastes = np.array([taste for _, taste in offers])
    utility = np.einsum("poc,oc->po", components, tastes)
    utility += rng.normal(0, 0.03, utility.shape)
    grades = np.searchsorted(np.quantile(utility, [0.4, 0.65, 0.85, 0.95]), utility)
    for p in range(proposals):
        proposal_id = make_proposal(author_id=author.id).id
        for o, (offer_id, _) in enumerate(offers):
            at = START + timedelta(days=p, hours=o)
            grade = int(grades[p, o])
            record_decision(
                session,
                proposal_id=proposal_id,
                offer_id=offer_id,
                components=components[p, o],
                grade=grade,
                at=at,
            )
    session.commit()
    return a, b


def test_an_adopted_adjustment_ranks_each_company_by_its_own_taste(
    app: Flask,
    runner: FlaskCliRunner,
    session: Session,
    companies: tuple[int, int],
    make_offer: Callable[..., Any],
) -> None:
    a, b = companies
    newcomer = make_offer(title="An offer from a company nobody has answered for").organisation_id
    result = runner.invoke(args=["ranking", "fit", "--recompute"])
    assert result.exit_code == 0, result.output
    model = session.exec(select(RankingModel)).one()
    adjustment = model.evaluation["adjustment"]
    assert adjustment["adopted"], result.output
    assert "Per-company adjustment (adopted)" in result.output
    low = adjustment["over_weights"][1]
    assert low > 0 and adjustment["adjusted_ndcg"] > adjustment["weights_ndcg"]

    state = ranking_state(session=session, configured=ScoreWeights())
    weights = state.weights
    assert isinstance(weights, AdjustedWeights) and state.learned
    assert weights.version.startswith(f"tandem-2/{model.version}/w-")
    assert weights.version.split("/")[-1].startswith("adj-")
    assert f"({weights.version})" in result.output
    shares = np.array([weights.normalised()[c] for c in COMPONENTS])
    deviations = {g: np.asarray(row) for g, row in weights.adjustment.deviations.items()}
    # The learned taste: A weighs fit above text, B text above fit.
    taste_a, taste_b = shares + deviations[a][:4], shares + deviations[b][:4]
    assert taste_a[FIT] > taste_a[PROPOSAL] and taste_b[PROPOSAL] > taste_b[FIT]

    # The recompute scored every pair with it: each company's offers by its own weights and
    # bias, the newcomer's by the shared weights alone; every match names the adjustment.
    matches = session.exec(select(Match)).all()
    offers = {m.offer_id: m.offer.organisation_id for m in matches}
    assert newcomer in set(offers.values())
    assert {m.algorithm_version for m in matches} == {weights.version}
    for match in matches:
        x = np.array([match.components[c] for c in COMPONENTS])
        row = deviations.get(offers[match.offer_id], np.zeros(len(COMPONENTS) + 1))
        assert match.score == pytest.approx(x @ (shares + row[:4]) + row[4], abs=1e-3)
    # Two pairs alike but for text and fit: A prefers the one that fits, B the one on topic.
    on_topic = np.array([0.8, 0.5, 0.3, 0.2])
    fits = np.array([0.3, 0.5, 0.3, 0.9])
    for company, better, worse in ((a, fits, on_topic), (b, on_topic, fits)):
        effective = shares + deviations[company][:4]
        assert better @ effective > worse @ effective

    with app.app_context():
        from app.matcher import get_weights

        assert get_weights().version == weights.version


def test_a_single_offer_refresh_scores_with_the_adjustment_as_a_recompute_does(
    app: Flask,
    runner: FlaskCliRunner,
    session: Session,
    companies: tuple[int, int],
    make_offer: Callable[..., Any],
) -> None:
    a, _ = companies
    assert runner.invoke(args=["ranking", "fit", "--recompute"]).exit_code == 0
    weights = ranking_state(session=session, configured=ScoreWeights()).weights
    assert isinstance(weights, AdjustedWeights)
    encoder = app.extensions["tandem.encoder"]
    worker = SnapshotCache()
    worker.matcher(session=session, encoder=encoder)  # a warm worker, as in production
    offer = make_offer(organisation_id=a, title="More GPU hours from company A")
    recommendations.refresh_offer(
        session=session, encoder=encoder, offer_id=offer.id, k=5, weights=weights, snapshots=worker
    )
    session.commit()

    def stored() -> dict[tuple[int, int], tuple[float, str]]:
        session.expire_all()
        return {
            (m.proposal_id, m.offer_id): (m.score, m.algorithm_version)
            for m in session.exec(select(Match))
        }

    incremental = stored()
    assert any(o == offer.id for _, o in incremental)
    recommendations.recompute_all(session=session, encoder=encoder, k=5, weights=weights)
    session.commit()
    expected = stored()
    assert set(incremental) == set(expected)
    for key, (score, version) in expected.items():
        assert incremental[key][0] == pytest.approx(score, abs=1e-4), key
        assert incremental[key][1] == version == weights.version, key
