"""The outcome loop: weights learned from decisions, evaluated on later ones, adopted only
when better by the stated margin."""

from __future__ import annotations

import numpy as np
import pytest

from matching.outcome_adjustment import AdjustedRanker, evaluate_adjustment
from matching.outcomes import (
    ADOPTION_MARGIN,
    Decisions,
    LearnedWeights,
    PairwiseRanker,
    bootstrap_interval,
    evaluate,
    fit_weights,
    ndcg_per_proposal,
    time_split,
)
from matching.scoring import COMPONENTS, ScoreWeights, combine

FIXED = ScoreWeights()


def history(proposals: int, truth: np.ndarray, *, seed: int = 0, shown: int = 6) -> Decisions:
    """Decisions graded by a hidden linear utility `truth` over independent components."""
    rng = np.random.default_rng(seed)
    n = proposals * shown
    components = rng.uniform(0, 1, (n, len(COMPONENTS)))
    utility = components @ truth + rng.normal(0, 0.03, n)
    grade = np.searchsorted(np.quantile(utility, [0.4, 0.7, 0.9]), utility).astype(float)
    return Decisions(
        proposal=np.repeat(np.arange(proposals), shown),
        components=components,
        relevance=grade,
        time=np.repeat(rng.uniform(0, 1000, proposals), shown) + rng.uniform(0, 10, n),
    )


FIT_FIRST = np.array([0.2, 0.05, 0.05, 0.7])
AS_FIXED = np.array([FIXED.normalised()[c] for c in COMPONENTS])


def test_learned_weights_follow_what_people_chose() -> None:
    weights = fit_weights(history(300, FIT_FIRST))
    assert weights is not None
    assert max(weights, key=weights.get) == "fit"
    assert sum(weights.values()) == pytest.approx(1.0)
    np.testing.assert_allclose([weights[c] for c in COMPONENTS], FIT_FIRST, atol=0.08)


def test_a_component_that_hurts_gets_no_weight() -> None:
    truth = np.array([0.6, 0.0, -0.3, 0.4])  # the lexical signal predicts a "no"
    ranker = PairwiseRanker().fit(history(300, truth, seed=1))
    assert ranker.coef_ is not None
    assert ranker.coef_[COMPONENTS.index("lexical")] == 0
    assert (ranker.coef_ >= 0).all()
    LearnedWeights(model="learned-1", **dict(zip(COMPONENTS, ranker.coef_, strict=True)))


def test_better_weights_are_adopted_with_a_confident_gain() -> None:
    result = evaluate(history(300, FIT_FIRST, seed=2), FIXED)
    assert result.adopt
    assert result.ci_low > 0 and result.difference >= ADOPTION_MARGIN
    assert result.learned_ndcg > result.fixed_ndcg
    assert result.test_proposals >= 10
    assert "adopted" in result.reason


def test_weights_already_right_are_not_replaced() -> None:
    result = evaluate(history(300, AS_FIXED, seed=3), FIXED)
    assert result.learned_weights is not None
    assert not result.adopt
    assert "today's weights stay" in result.reason


def test_too_few_decisions_keep_todays_weights_and_say_so() -> None:
    result = evaluate(history(6, FIT_FIRST, seed=4), FIXED)
    assert not result.adopt and result.learned_weights is None
    assert result.reason.startswith("too few decisions")
    empty = Decisions(np.zeros(0), np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert not evaluate(empty, FIXED).adopt


def test_evaluation_holds_back_the_latest_decisions() -> None:
    decisions = history(50, FIT_FIRST, seed=5)
    train, test = time_split(decisions, 0.7)
    assert len(train) == 210 and len(test) == 90
    assert train.time.max() <= test.time.min()


def test_ndcg_is_per_proposal_and_skips_proposals_with_one_kind_of_answer() -> None:
    decisions = Decisions(
        proposal=np.array([1, 1, 1, 2, 2, 3]),
        components=np.zeros((6, 4)),
        relevance=np.array([0.0, 2.0, 1.0, 1.0, 1.0, 3.0]),
        time=np.arange(6.0),
    )
    perfect = ndcg_per_proposal(decisions, np.array([0.0, 2.0, 1.0, 5, 5, 1]))
    assert perfect == {1: pytest.approx(1.0)}
    reversed_ = ndcg_per_proposal(decisions, np.array([2.0, 0.0, 1.0, 5, 5, 1]))
    assert reversed_[1] < 1.0


def test_bootstrap_interval_brackets_the_mean() -> None:
    rng = np.random.default_rng(0)
    differences = rng.normal(0.05, 0.1, 400)
    low, high = bootstrap_interval(differences)
    assert low < differences.mean() < high
    assert 0.0 < low and high < 0.1


def test_learned_weights_name_their_model_in_the_version() -> None:
    learned = LearnedWeights(model="learned-3", **FIXED.normalised())
    assert learned.version.startswith("tandem-2/learned-3/w-")
    assert learned.version.endswith(FIXED.version.rsplit("/", 1)[1])
    components = {c: np.full((2, 2), 0.5, dtype=np.float32) for c in COMPONENTS}
    np.testing.assert_allclose(combine(components, learned), combine(components, FIXED))


PROPOSAL_FIRST = np.array([0.7, 0.05, 0.05, 0.2])


def company_history(
    proposals: int,
    tastes: np.ndarray,
    *,
    seed: int = 0,
    shown: int = 6,
    share: np.ndarray | None = None,
) -> Decisions:
    """Decisions on offers of `len(tastes)` companies (each deciding a `share` of them,
    equal by default), each grading by its own taste."""
    rng = np.random.default_rng(seed)
    n = proposals * shown
    components = rng.uniform(0, 1, (n, len(COMPONENTS)))
    company = rng.choice(len(tastes), n, p=share)
    utility = np.einsum("nc,nc->n", components, tastes[company]) + rng.normal(0, 0.03, n)
    grade = np.searchsorted(np.quantile(utility, [0.4, 0.7, 0.9]), utility).astype(float)
    return Decisions(
        proposal=np.repeat(np.arange(proposals), shown),
        components=components,
        relevance=grade,
        time=np.repeat(rng.uniform(0, 1000, proposals), shown) + rng.uniform(0, 10, n),
        group=company,
    )


HALF_AND_HALF = np.array([FIT_FIRST] * 5 + [PROPOSAL_FIRST] * 5)


def effective_weights(ranker: AdjustedRanker, company: int) -> np.ndarray:
    return ranker.coef_ + ranker.deviation_.get(company, np.zeros(5))[:4]


def test_the_adjustment_recovers_a_planted_company_taste() -> None:
    ranker = AdjustedRanker(strength=3.0).fit(company_history(600, HALF_AND_HALF))
    proposal, fit = COMPONENTS.index("proposal"), COMPONENTS.index("fit")
    for company in range(5):
        weights = effective_weights(ranker, company)
        assert weights[fit] > 2 * weights[proposal]
    for company in range(5, 10):
        weights = effective_weights(ranker, company)
        assert weights[proposal] > 2 * weights[fit]
    # An unknown company is ranked by the shared weights alone.
    unknown = company_history(5, HALF_AND_HALF, seed=1)
    unknown = Decisions(**{**unknown.__dict__, "group": np.full(len(unknown), 99)})
    np.testing.assert_allclose(ranker.score(unknown), unknown.features @ ranker.coef_)


def test_an_adjustment_that_ranks_better_is_adopted_over_weights_only() -> None:
    result = evaluate_adjustment(company_history(600, HALF_AND_HALF, seed=2), FIXED)
    assert np.isfinite(result.strength) and result.largest_deviation > 0.1
    mean, low, _ = result.over_weights
    assert result.adopt and low > 0 and mean >= ADOPTION_MARGIN
    assert result.adjusted_ndcg > result.weights_ndcg > result.fixed_ndcg
    assert "per-company weights" in result.reason


def test_a_company_with_few_decisions_keeps_a_near_zero_adjustment() -> None:
    # Company 10 has company 9's taste but decides ~0.2% of the pairs (a handful).
    tastes = np.vstack([HALF_AND_HALF, PROPOSAL_FIRST])
    share = np.r_[np.full(10, 0.0998), 0.002]
    decisions = company_history(600, tastes, seed=3, share=share)
    assert 2 <= (decisions.group == 10).sum() <= 15
    ranker = AdjustedRanker(strength=3.0).fit(decisions)
    # Same taste, same (weakest but one) shrinkage: the many decisions move company 9 by
    # ~0.24 of the weights (the planted difference is 0.5), the handful barely moves 10.
    assert np.abs(ranker.deviation_[9]).max() > 0.2
    assert np.abs(ranker.deviation_[10]).max() < 0.1
    assert np.abs(ranker.deviation_[10]).max() < np.abs(ranker.deviation_[9]).max() / 3


def test_with_few_decisions_per_company_the_adjustment_stays_near_zero() -> None:
    tastes = np.array([FIT_FIRST, PROPOSAL_FIRST] * 30)  # 60 companies, ~5 decisions each
    decisions = company_history(50, tastes, seed=5)
    result = evaluate_adjustment(decisions, FIXED)
    assert result.largest_deviation < 0.05
    assert not result.adopt
    # The default-range shrinkage alone keeps ~5 decisions a company from moving far.
    train, _ = time_split(decisions, 0.7)
    assert AdjustedRanker(strength=100.0).fit(train).largest_deviation() < 0.05


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_an_adjustment_is_not_adopted_when_companies_share_one_taste(seed: int) -> None:
    decisions = company_history(400, np.array([FIT_FIRST] * 10), seed=seed)
    result = evaluate_adjustment(decisions, FIXED)
    assert not result.adopt
    assert "weights only" in result.reason
    assert result.over_weights[0] < ADOPTION_MARGIN
    # Forced to the weakest shrinkage, it fits noise, and the rule still keeps weights only.
    forced = evaluate_adjustment(decisions, FIXED, strengths=(1.0,))
    assert forced.strength == 1.0 and forced.largest_deviation > 0.05
    assert not forced.adopt and forced.over_weights[1] <= 0


def test_the_adjustment_needs_each_decisions_company() -> None:
    with pytest.raises(ValueError, match="company"):
        AdjustedRanker().fit(history(50, FIT_FIRST))
    result = evaluate_adjustment(company_history(3, HALF_AND_HALF, seed=9), FIXED)
    assert not result.adopt and result.reason.startswith("too few decisions")
