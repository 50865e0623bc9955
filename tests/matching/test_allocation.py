"""Capacity-constrained allocation: feasibility, optimality, bounds, equity and bad input."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from matching.allocation import (
    AUTO_EXACT_EDGE_LIMIT,
    MIP_REL_GAP,
    Allocation,
    allocate,
    utilisation,
)

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def realistic(n_proposals: int, n_offers: int, seed: int) -> dict[str, np.ndarray]:
    """Scores ~ N(0.35, 0.1), 70% of proposals need 100..40000 GPU hours, demand ~2.5x supply."""
    rng = np.random.default_rng(seed)
    hours = np.where(
        rng.random(n_proposals) < 0.7,
        np.exp(rng.uniform(np.log(100), np.log(40_000), n_proposals)),
        0.0,
    )
    raw = np.exp(rng.uniform(np.log(2_000), np.log(100_000), n_offers))
    return {
        "scores": np.clip(rng.normal(0.35, 0.1, (n_proposals, n_offers)), -1, 1),
        "hours_needed": hours,
        "hours_budget": raw * max(hours.sum(), 1.0) / 2.5 / raw.sum(),
        "max_projects": rng.integers(1, 13, n_offers),
    }


def assert_valid(
    result: Allocation,
    scores: np.ndarray,
    hours: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
    eligible: np.ndarray | None = None,
    min_score: float | None = None,
) -> None:
    """Every constraint a reviewer would check, on the returned allocation."""
    n_proposals, n_offers = scores.shape
    assignment = result.assignment
    assert assignment.shape == (n_proposals,)  # one entry, so at most one offer, per proposal
    assert assignment.dtype == np.int64
    assert np.all((assignment >= -1) & (assignment < n_offers))
    assigned = np.flatnonzero(assignment >= 0)
    offers = assignment[assigned]
    pair_scores = scores[assigned, offers]
    assert np.all(np.isfinite(pair_scores)) and np.all(pair_scores > 0)
    if min_score is not None:
        assert np.all(pair_scores >= min_score)
    if eligible is not None:
        assert np.all(eligible[assigned, offers])
    hours_used = np.bincount(offers, weights=hours[assigned], minlength=n_offers)
    assert np.all(hours_used <= budget * (1 + 1e-12))
    projects_used = np.bincount(offers, minlength=n_offers)
    assert np.all(projects_used <= caps)
    np.testing.assert_allclose(result.hours_used, hours_used)
    np.testing.assert_array_equal(result.projects_used, projects_used)
    assert result.objective == pytest.approx(float(pair_scores.sum()), abs=1e-9)
    assert result.gap >= 0


@cache
def _all_assignments(n_proposals: int, n_offers: int) -> np.ndarray:
    choices = range(-1, n_offers)
    return np.array(list(itertools.product(choices, repeat=n_proposals)), dtype=np.int64)


def brute_force(
    scores: np.ndarray,
    hours: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
    eligible: np.ndarray | None,
    min_score: float | None,
) -> float:
    """The optimum by enumerating every assignment (P <= 6, O <= 3)."""
    n_proposals, n_offers = scores.shape
    if n_proposals == 0 or n_offers == 0:
        return 0.0
    allowed = np.isfinite(scores)
    if eligible is not None:
        allowed &= eligible
    if min_score is not None:
        allowed &= np.nan_to_num(scores, nan=-np.inf) >= min_score
    # Column n_offers stands for "unassigned": always allowed, worth 0.
    value = np.hstack([np.where(allowed, np.nan_to_num(scores), 0.0), np.zeros((n_proposals, 1))])
    ok = np.hstack([allowed, np.ones((n_proposals, 1), dtype=bool)])
    combos = _all_assignments(n_proposals, n_offers)
    column = np.where(combos < 0, n_offers, combos)
    proposal = np.arange(n_proposals)
    feasible = ok[proposal, column].all(axis=1)
    for offer in range(n_offers):
        here = combos == offer
        feasible &= here.sum(axis=1) <= caps[offer]
        feasible &= (here * hours).sum(axis=1) <= budget[offer]
    totals = value[proposal, column].sum(axis=1)
    return float(totals[feasible].max())


@st.composite
def small_instances(draw: st.DrawFn) -> dict[str, object]:
    n_proposals = draw(st.integers(0, 6))
    n_offers = draw(st.integers(0, 3))
    grid = st.integers(-3, 10).map(lambda tenth: tenth / 10)  # ties are common on purpose
    score = st.one_of(grid, st.floats(-0.5, 1.0), st.just(float("nan")))
    scores = draw(arrays(np.float64, (n_proposals, n_offers), elements=score))
    hours = draw(
        arrays(np.float64, n_proposals, elements=st.sampled_from([0.0, 1.0, 2.0, 5.0, 8.0]))
    )
    budget = draw(
        arrays(np.float64, n_offers, elements=st.sampled_from([0.0, 3.0, 6.0, 10.0, float("inf")]))
    )
    caps = draw(arrays(np.int64, n_offers, elements=st.integers(0, 3)))
    eligible = draw(st.none() | arrays(np.bool_, (n_proposals, n_offers)))
    min_score = draw(st.none() | st.sampled_from([0.0, 0.2, 0.5]))
    return {
        "scores": scores,
        "hours_needed": hours,
        "hours_budget": budget,
        "max_projects": caps,
        "eligible": eligible,
        "min_score": min_score,
    }


def _check_args(case: dict[str, object]) -> tuple[np.ndarray, ...]:
    return (
        case["scores"],
        case["hours_needed"],
        case["hours_budget"],
        case["max_projects"],
    )  # type: ignore[return-value]


@SETTINGS
@given(case=small_instances())
def test_exact_is_feasible_and_matches_brute_force(case: dict[str, object]) -> None:
    scores, hours, budget, caps = _check_args(case)
    eligible, min_score = case["eligible"], case["min_score"]
    result = allocate(
        scores, hours, budget, caps, eligible=eligible, min_score=min_score, mode="exact"
    )
    assert_valid(result, scores, hours, budget, caps, eligible, min_score)
    optimum = brute_force(scores, hours, budget, caps, eligible, min_score)
    assert result.objective <= optimum + 1e-9
    assert result.objective >= optimum * (1 - MIP_REL_GAP) - 1e-9
    if optimum > 0:
        assert result.status == "optimal"
        assert result.bound >= optimum - 1e-6


@SETTINGS
@given(case=small_instances())
def test_sparse_is_feasible_and_its_bound_holds(case: dict[str, object]) -> None:
    scores, hours, budget, caps = _check_args(case)
    eligible, min_score = case["eligible"], case["min_score"]
    result = allocate(
        scores,
        hours,
        budget,
        caps,
        eligible=eligible,
        min_score=min_score,
        mode="sparse",
        candidates_per_proposal=1,
    )
    assert_valid(result, scores, hours, budget, caps, eligible, min_score)
    optimum = brute_force(scores, hours, budget, caps, eligible, min_score)
    assert result.objective <= optimum + 1e-9
    assert result.bound >= optimum - 1e-6  # an upper bound over all allowed pairs


@SETTINGS
@given(case=small_instances(), weight=st.sampled_from([0.0, 0.2, 1.0]), data=st.data())
def test_equity_options_stay_feasible(
    case: dict[str, object], weight: float, data: st.DataObject
) -> None:
    scores, hours, budget, caps = _check_args(case)
    eligible, min_score = case["eligible"], case["min_score"]
    priority = data.draw(arrays(np.bool_, scores.shape[0]))
    plain = allocate(scores, hours, budget, caps, eligible=eligible, min_score=min_score)
    for options in (
        {"equity": "priority", "priority": priority, "equity_weight": weight},
        {"equity": "maxmin"},
    ):
        result = allocate(
            scores, hours, budget, caps, eligible=eligible, min_score=min_score, **options
        )
        assert_valid(result, scores, hours, budget, caps, eligible, min_score)
        assert result.equity_cost is not None and result.equity_cost >= 0
        assert result.plain_assignment is not None
        np.testing.assert_array_equal(result.plain_assignment, plain.assignment)
    # Max-min serves as many proposals as the plain optimum, and its worst-off no worse.
    assert result.assigned_count >= plain.assigned_count
    if plain.assigned_count:
        assert result.min_assigned_score >= plain.min_assigned_score


def test_sparse_never_beats_exact_and_reports_a_consistent_gap() -> None:
    case = realistic(40, 8, seed=3)
    exact = allocate(**case, mode="exact")
    sparse = allocate(**case, mode="sparse", candidates_per_proposal=3)
    assert exact.status == "optimal" and exact.mode == "exact"
    assert sparse.mode == "sparse"
    assert_valid(sparse, case["scores"], *list(case.values())[1:])
    assert sparse.objective <= exact.objective + 1e-9
    assert sparse.bound >= exact.objective - 1e-9
    assert sparse.gap >= 0
    assert sparse.gap == pytest.approx((sparse.bound - sparse.objective) / sparse.bound)
    assert sparse.objective >= 0.9 * exact.objective  # the heuristic is not far off


def test_sparse_accepts_candidate_pairs_instead_of_a_matrix() -> None:
    case = realistic(120, 15, seed=4)
    scores = case.pop("scores")
    rows, cols = np.nonzero(scores > 0.3)
    # Listed in a shuffled order: the solver sorts them, so the answer cannot depend on it.
    order = np.random.default_rng(0).permutation(rows.size)
    listed = (rows[order], cols[order], scores[rows, cols][order])
    from_pairs = allocate(None, **case, mode="sparse", candidates=listed)
    from_matrix = allocate(scores, **case, mode="sparse", min_score=0.3)
    np.testing.assert_array_equal(from_pairs.assignment, from_matrix.assignment)
    assert from_pairs.allowed_edges == from_matrix.allowed_edges


def test_auto_mode_switches_on_the_number_of_allowed_pairs() -> None:
    small = allocate(**realistic(20, 5, seed=5))
    assert small.mode == "exact" and small.allowed_edges <= AUTO_EXACT_EDGE_LIMIT
    large = allocate(**realistic(300, 12, seed=5))
    assert large.mode == "sparse" and large.allowed_edges > AUTO_EXACT_EDGE_LIMIT


def test_priority_equity_serves_the_under_resourced_lab_at_a_reported_cost() -> None:
    # One offer with room for one project; the well-resourced lab's proposal scores higher.
    scores = np.array([[0.60], [0.55]])
    hours, budget, caps = np.array([100.0, 100.0]), np.array([100.0]), np.array([1])
    priority = np.array([False, True])
    plain = allocate(scores, hours, budget, caps)
    fair = allocate(scores, hours, budget, caps, equity="priority", priority=priority)
    assert plain.assignment.tolist() == [0, -1]
    assert fair.assignment.tolist() == [-1, 0]
    assert fair.objective == pytest.approx(0.55)
    assert fair.equity_cost == pytest.approx(0.05)
    assert fair.plain_assignment is not None and fair.plain_assignment.tolist() == [0, -1]
    assert fair.optimised_objective == pytest.approx(0.55 * 1.2)


def test_maxmin_raises_the_worst_off_assigned_score() -> None:
    # Plain: p0 -> o0 (0.9) and p1 -> o1 (0.15): total 1.05, worst 0.15.
    # Max-min: p1 -> o0 (0.45) and p0 -> o1 (0.4): both served, worst 0.4, total 0.85.
    scores = np.array([[0.9, 0.4], [0.45, 0.15]])
    hours, budget, caps = np.zeros(2), np.array([10.0, 10.0]), np.array([1, 1])
    plain = allocate(scores, hours, budget, caps)
    fair = allocate(scores, hours, budget, caps, equity="maxmin")
    assert plain.assignment.tolist() == [0, 1] and plain.min_assigned_score == 0.15
    assert fair.assignment.tolist() == [1, 0]
    assert fair.min_assigned_score == pytest.approx(0.4)
    assert fair.assigned_count == plain.assigned_count
    assert fair.equity_cost == pytest.approx(0.2)


def test_maxmin_in_sparse_mode_keeps_the_guarantee() -> None:
    case = realistic(60, 10, seed=6)
    plain = allocate(**case, mode="sparse")
    fair = allocate(**case, mode="sparse", equity="maxmin")
    assert_valid(fair, case["scores"], *list(case.values())[1:])
    assert fair.assigned_count >= plain.assigned_count
    assert fair.min_assigned_score >= plain.min_assigned_score
    assert fair.equity_cost >= 0


def test_priority_equity_moves_hours_to_under_resourced_labs() -> None:
    case = realistic(300, 40, seed=7)
    priority = np.random.default_rng(7).random(300) < 0.3
    fair = allocate(**case, equity="priority", priority=priority, equity_weight=0.5)
    assert fair.plain_assignment is not None
    hours = case["hours_needed"]

    def priority_hours(assignment: np.ndarray) -> float:
        return float(hours[(assignment >= 0) & priority].sum())

    assert priority_hours(fair.assignment) > priority_hours(fair.plain_assignment)
    assert fair.equity_cost > 0


@pytest.mark.parametrize(
    ("n_proposals", "n_offers", "change"),
    [
        (0, 3, None),
        (4, 0, None),
        (0, 0, None),
        (3, 2, "ineligible"),
        (3, 2, "nan"),
        (3, 2, "negative"),
        (3, 2, "min_score"),
        (3, 2, "no_capacity"),
    ],
)
def test_degenerate_inputs_are_empty_not_errors(
    n_proposals: int, n_offers: int, change: str | None
) -> None:
    scores = np.full((n_proposals, n_offers), 0.5)
    hours = np.full(n_proposals, 10.0)
    budget = np.full(n_offers, 100.0)
    caps = np.full(n_offers, 2)
    options: dict[str, object] = {}
    if change == "ineligible":
        options["eligible"] = np.zeros((n_proposals, n_offers), dtype=bool)
    elif change == "nan":
        scores[:] = np.nan
    elif change == "negative":
        scores[:] = -0.1
    elif change == "min_score":
        options["min_score"] = 0.9
    elif change == "no_capacity":
        caps[:] = 0
    for mode in ("auto", "exact", "sparse"):
        result = allocate(scores, hours, budget, caps, mode=mode, **options)
        assert result.status == "empty"
        assert result.assignment.tolist() == [-1] * n_proposals
        assert result.objective == 0.0
        assert result.hours_used.shape == (n_offers,)
    fair = allocate(scores, hours, budget, caps, equity="maxmin", **options)
    assert fair.status == "empty" and fair.equity_cost == 0.0


def test_nan_scores_are_never_assigned() -> None:
    scores = np.array([[np.nan, 0.2], [0.9, np.nan]])
    result = allocate(scores, np.zeros(2), np.full(2, 5.0), np.array([1, 1]))
    assert result.assignment.tolist() == [1, 0]


def test_pairs_scoring_zero_or_less_are_left_unassigned() -> None:
    scores = np.array([[0.0], [-0.2], [0.3]])
    result = allocate(scores, np.zeros(3), np.array([10.0]), np.array([3]))
    assert result.assignment.tolist() == [-1, -1, 0]


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"hours_needed": np.ones(4)}, "hours_needed"),
        ({"hours_budget": np.ones(3)}, "hours_budget"),
        ({"max_projects": np.ones(3)}, "max_projects"),
        ({"scores": np.ones(6)}, "scores"),
        ({"hours_needed": np.array([1.0, -1.0, 2.0])}, "hours_needed"),
        ({"hours_budget": np.array([-5.0, 1.0])}, "hours_budget"),
        ({"max_projects": np.array([1.5, 1.0])}, "max_projects"),
        ({"eligible": np.ones((2, 3), dtype=bool)}, "eligible"),
        ({"equity": "priority", "priority": np.ones(2, dtype=bool)}, "priority"),
        ({"equity": "priority"}, "priority"),
        ({"mode": "fast"}, "mode"),
        ({"equity": "lottery"}, "equity"),
        ({"candidates_per_proposal": 0}, "candidates_per_proposal"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_argument(
    arguments: dict[str, object], name: str
) -> None:
    call: dict[str, object] = {
        "scores": np.full((3, 2), 0.5),
        "hours_needed": np.ones(3),
        "hours_budget": np.ones(2),
        "max_projects": np.ones(2),
    }
    call.update(arguments)
    with pytest.raises(ValueError, match=name):
        allocate(**call)  # type: ignore[arg-type]


def test_same_input_gives_the_same_allocation() -> None:
    case = realistic(300, 50, seed=8)
    first = allocate(**case, mode="sparse")
    second = allocate(**case, mode="sparse")
    np.testing.assert_array_equal(first.assignment, second.assignment)
    assert first.objective == second.objective and first.bound == second.bound
    tied = {
        "scores": np.full((5, 2), 0.5),
        "hours_needed": np.ones(5),
        "hours_budget": np.full(2, 2.0),
        "max_projects": np.array([2, 2]),
    }
    runs = [allocate(**tied, mode=mode).assignment.tolist() for mode in ("exact", "exact")]
    assert runs[0] == runs[1]


def test_utilisation_reports_shares_and_unassigned_proposals() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, np.nan]])
    hours, budget, caps = np.array([60.0, 50.0, 0.0]), np.array([100.0, 0.0]), np.array([2, 3])
    result = allocate(scores, hours, budget, caps)
    report = utilisation(result, budget, caps)
    assert result.unassigned.tolist() == [1]
    np.testing.assert_allclose(report.hours_share, [0.6, 0.0])
    np.testing.assert_allclose(report.projects_share, [2 / 2, 0.0])
    assert report.unassigned.tolist() == [1]
    with pytest.raises(ValueError, match="hours_budget"):
        utilisation(result, np.ones(3), caps)


def test_a_time_limit_returns_the_best_allocation_found() -> None:
    case = realistic(300, 40, seed=9)
    sparse = allocate(**case, mode="sparse")
    for mode in ("exact", "sparse"):
        limited = allocate(**case, mode=mode, time_limit=1.0)
        assert_valid(limited, case["scores"], *list(case.values())[1:])
        assert limited.status == "feasible"
        assert limited.objective >= sparse.objective - 1e-9  # never worse than the heuristic
        assert limited.bound >= limited.objective
