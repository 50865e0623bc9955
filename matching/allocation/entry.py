"""The public entry, `allocate`: checks the options, builds the problem, solves it (with the
equity option asked for) and turns the chosen pairs into an `Allocation`."""

from __future__ import annotations

import contextlib
import time
from typing import cast

import numpy as np
from threadpoolctl import threadpool_limits

from matching.allocation.equity import _solve_maxmin
from matching.allocation.problem import (
    _TINY,
    _edges_from_candidates,
    _edges_from_dense,
    _make_problem,
    _Problem,
    _validate,
)
from matching.allocation.result import Allocation, Equity, Mode, SolvedMode
from matching.allocation.solving import _solve, _Solved

AUTO_EXACT_EDGE_LIMIT = 2_000
"""`mode="auto"` solves exactly up to this many allowed pairs. Measured on realistic random
instances (bench/allocation.py): HiGHS proves ~400 pairs (50 x 10) optimal in under a second
and ~1,600 pairs (100 x 20) in 2-12 s; 150k pairs (1k x 200) not in minutes. The sparse
heuristic is typically within 1-2 % of optimal (its gap is against a looser bound)."""

DEFAULT_CANDIDATES = 20
"""Initial candidate pairs per proposal in sparse mode."""

DEFAULT_EQUITY_WEIGHT = 0.2


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    """Keep BLAS to one thread while solving.

    The BLAS calls here (inside L-BFGS-B) are on vectors of a few thousand entries; OpenBLAS
    threads them anyway, and on a busy two-core machine that made the whole solve 5-8x slower.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _repair(problem: _Problem, chosen: np.ndarray) -> tuple[np.ndarray, bool]:
    """Drop the lowest-scoring pairs until every constraint holds exactly (solver tolerance)."""
    chosen = np.sort(chosen)
    repaired = False
    rows = problem.rows[chosen]
    if np.unique(rows).size != rows.size:
        order = np.lexsort((-problem.scores[chosen], rows))
        first = np.ones(order.size, dtype=bool)
        first[1:] = rows[order][1:] != rows[order][:-1]
        chosen = np.sort(chosen[order][first])
        repaired = True
    hours_used = np.bincount(
        problem.cols[chosen],
        weights=problem.hours[problem.rows[chosen]],
        minlength=problem.n_offers,
    )
    projects_used = np.bincount(problem.cols[chosen], minlength=problem.n_offers)
    over = np.flatnonzero((hours_used > problem.budget) | (projects_used > problem.caps))
    for offer in over.tolist():
        mine = chosen[problem.cols[chosen] == offer]
        mine = mine[np.argsort(-problem.scores[mine], kind="stable")]
        used = np.cumsum(problem.hours[problem.rows[mine]])
        fits = (used <= problem.budget[offer]) & (np.arange(mine.size) < problem.caps[offer])
        keep = np.cumprod(fits).astype(bool)
        chosen = np.setdiff1d(chosen, mine[~keep])
        repaired = True
    return chosen, repaired


def _assignment(problem: _Problem, chosen: np.ndarray) -> np.ndarray:
    assignment = np.full(problem.n_proposals, -1, dtype=np.int64)
    assignment[problem.rows[chosen]] = problem.cols[chosen]
    return assignment


def _result(
    problem: _Problem,
    solved: _Solved,
    weights: np.ndarray,
    mode: SolvedMode,
    started: float,
    *,
    plain: _Solved | None = None,
) -> Allocation:
    chosen, repaired = _repair(problem, solved.chosen)
    assignment = _assignment(problem, chosen)
    hours_used = np.bincount(
        problem.cols[chosen],
        weights=problem.hours[problem.rows[chosen]],
        minlength=problem.n_offers,
    ).astype(np.float64)
    projects_used = np.bincount(problem.cols[chosen], minlength=problem.n_offers)
    value = float(weights[chosen].sum())
    objective = float(problem.scores[chosen].sum())
    bound = max(solved.bound, value)
    gap = (bound - value) / max(abs(bound), _TINY) if np.isfinite(bound) else 1.0
    status, message = solved.status, solved.message
    if repaired:
        status = "feasible" if status == "optimal" else status
        message = (message + "; " if message else "") + "dropped pairs over a capacity"
    equity_cost = plain_objective = plain_assignment = None
    if plain is not None:
        plain_chosen, _ = _repair(problem, plain.chosen)
        plain_assignment = _assignment(problem, plain_chosen)
        plain_objective = max(float(problem.scores[plain_chosen].sum()), objective)
        equity_cost = plain_objective - objective
    return Allocation(
        assignment=assignment,
        objective=objective,
        status=status,
        gap=float(max(gap, 0.0)),
        mode=mode,
        hours_used=hours_used,
        projects_used=projects_used.astype(np.int64),
        equity_cost=equity_cost,
        solve_seconds=time.perf_counter() - started,
        message=message,
        bound=float(bound),
        optimised_objective=value,
        plain_objective=plain_objective,
        plain_assignment=plain_assignment,
        min_assigned_score=float(problem.scores[chosen].min()) if chosen.size else None,
        allowed_edges=problem.n_edges,
        solver_edges=solved.edges,
    )


def allocate(
    scores: np.ndarray | None,
    hours_needed: np.ndarray,
    hours_budget: np.ndarray,
    max_projects: np.ndarray,
    *,
    eligible: np.ndarray | None = None,
    min_score: float | None = None,
    mode: Mode = "auto",
    candidates_per_proposal: int | None = None,
    equity: Equity | None = None,
    priority: np.ndarray | None = None,
    equity_weight: float = DEFAULT_EQUITY_WEIGHT,
    time_limit: float | None = None,
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Allocation:
    """Give each proposal at most one offer, maximising the total score under capacity.

    Arguments (P proposals, O offers):
    - `scores`: (P, O) floats, higher means a better pair (e.g. a cosine-like match score);
      NaN means not allowed. None when `candidates` is given.
    - `hours_needed`: (P,) GPU hours each proposal needs, >= 0 (0 for a data-only need).
    - `hours_budget`: (O,) GPU hours each offer can still give, >= 0 (inf: unlimited).
    - `max_projects`: (O,) whole number of projects each offer can still take, >= 0.
    - `eligible`: optional (P, O) bool; False pairs are never assigned.
    - `min_score`: pairs scoring below it are never assigned (pairs scoring <= 0 never are).
    - `mode`: "exact", "sparse" or "auto"; `candidates_per_proposal`: initial candidate pairs
      per proposal in sparse mode (default 20). See the package docstring.
    - `equity`: None, "priority" (needs `priority`, a (P,) bool marking under-resourced labs,
      whose scores count `1 + equity_weight` times) or "maxmin".
    - `time_limit`: seconds for the whole call; on expiry the best allocation found so far is
      returned with status "feasible". It also lets sparse mode try HiGHS after the heuristic.
    - `candidates`: instead of `scores`, the allowed pairs as a (rows, cols, values) triple of
      1-D arrays (proposal index, offer index, score), for instances too large for a dense
      matrix; pairs not listed are not allowed, and `gap` is relative to the listed pairs.

    Raises ValueError, naming the argument, for shapes that do not match, negative or
    non-finite hours, negative or fractional project caps and unknown options. Empty or
    degenerate inputs (no proposals, no offers, nothing allowed) give status "empty".
    """
    started = time.perf_counter()
    if mode not in ("auto", "exact", "sparse"):
        raise ValueError(f"mode must be 'auto', 'exact' or 'sparse', got {mode!r}")
    if equity not in (None, "priority", "maxmin"):
        raise ValueError(f"equity must be None, 'priority' or 'maxmin', got {equity!r}")
    if equity == "priority" and priority is None:
        raise ValueError("priority is required with equity='priority'")
    if equity != "priority" and priority is not None:
        raise ValueError("priority is only used with equity='priority'")
    if not (np.isfinite(equity_weight) and equity_weight >= 0):
        raise ValueError("equity_weight must be a non-negative number")
    k = DEFAULT_CANDIDATES if candidates_per_proposal is None else int(candidates_per_proposal)
    if k < 1:
        raise ValueError("candidates_per_proposal must be at least 1")
    if time_limit is not None and not time_limit > 0:
        raise ValueError("time_limit must be a positive number of seconds")
    if min_score is not None and not np.isfinite(min_score):
        raise ValueError("min_score must be a finite number")

    hours, budget, caps = _validate(
        scores, hours_needed, hours_budget, max_projects, eligible, priority, candidates
    )
    if scores is not None:
        rows, cols, values = _edges_from_dense(scores, hours, budget, caps, eligible, min_score)
    else:
        assert candidates is not None
        rows, cols, values = _edges_from_candidates(candidates, hours, budget, caps, min_score)
    problem = _make_problem(rows, cols, values, hours, budget, caps)
    used_mode: SolvedMode
    if mode == "auto":
        used_mode = "exact" if problem.n_edges <= AUTO_EXACT_EDGE_LIMIT else "sparse"
    else:
        used_mode = cast(SolvedMode, mode)
    if problem.n_edges == 0:
        reason = (
            "no proposals"
            if problem.n_proposals == 0
            else "no offers"
            if problem.n_offers == 0
            else "no allowed pair"
        )
        return Allocation(
            assignment=np.full(problem.n_proposals, -1, dtype=np.int64),
            objective=0.0,
            status="empty",
            gap=0.0,
            mode=used_mode,
            hours_used=np.zeros(problem.n_offers),
            projects_used=np.zeros(problem.n_offers, dtype=np.int64),
            equity_cost=0.0 if equity is not None else None,
            solve_seconds=time.perf_counter() - started,
            message=reason,
            plain_objective=0.0 if equity is not None else None,
            plain_assignment=(
                np.full(problem.n_proposals, -1, dtype=np.int64) if equity is not None else None
            ),
        )
    deadline = None if time_limit is None else started + float(time_limit)

    with _single_threaded_blas():
        plain = _solve(problem, problem.scores, used_mode, k, deadline)
        if equity is None or plain.status in ("infeasible", "error"):
            return _result(problem, plain, problem.scores, used_mode, started)
        if equity == "priority":
            flags = np.asarray(priority, dtype=bool)
            weights = problem.scores * np.where(flags[problem.rows], 1.0 + equity_weight, 1.0)
            fair = _solve(problem, weights, used_mode, k, deadline)
        else:
            weights = problem.scores
            fair = _solve_maxmin(problem, plain, used_mode, k, deadline)
    return _result(problem, fair, weights, used_mode, started, plain=plain)
