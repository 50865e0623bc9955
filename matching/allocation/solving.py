"""Solving: HiGHS over a set of pairs, the heuristic, and how each mode combines them."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from matching.allocation.heuristic import _dive, _edges_of, _improve
from matching.allocation.prices import _working_set
from matching.allocation.problem import _TINY, _Problem
from matching.allocation.result import SolvedMode, Status

logger = logging.getLogger(__name__)

MIP_REL_GAP = 1e-4
"""HiGHS's relative MIP gap (its default): `exact` answers are optimal up to this gap."""


@dataclass(frozen=True)
class _Solved:
    """An allocation as edge indices into the problem, its weight and an upper bound."""

    chosen: np.ndarray
    value: float
    bound: float
    status: Status
    message: str = ""
    edges: int = 0


def _constraints(
    problem: _Problem, subset: np.ndarray, min_count: int | None = None
) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """`lower <= A x <= upper` over the edges in `subset`, leaving out rows that cannot bind.

    Rows: one per proposal with several edges (at most one offer), one per offer whose
    candidates could exceed its budget (scaled: coefficients hours / budget, right side 1), one
    per offer with more candidates than its cap, and optionally `sum x >= min_count`.
    """
    n = subset.size
    rows, cols, coef = problem.rows[subset], problem.cols[subset], problem.hour_coef[subset]
    variables = np.arange(n, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    offset = 0

    def add(group: np.ndarray, member: np.ndarray, data: np.ndarray, rhs: np.ndarray) -> None:
        nonlocal offset
        kept = np.flatnonzero(rhs < np.inf)
        index = np.full(group.size, -1, dtype=np.int64)
        index[kept] = offset + np.arange(kept.size)
        mask = index[member] >= 0
        parts.append((index[member][mask], variables[mask], data[mask]))
        lower.append(np.full(kept.size, -np.inf))
        upper.append(rhs[kept])
        offset += kept.size

    per_proposal = np.bincount(rows, minlength=problem.n_proposals)
    add(
        per_proposal,
        rows,
        np.ones(n),
        np.where(per_proposal > 1, 1.0, np.inf),
    )
    demand = np.bincount(cols, weights=coef, minlength=problem.n_offers)
    add(demand, cols, coef, np.where(demand > 1 + _TINY, 1.0, np.inf))
    count = np.bincount(cols, minlength=problem.n_offers)
    add(count, cols, np.ones(n), np.where(count > problem.caps, problem.caps * 1.0, np.inf))
    if min_count is not None:
        parts.append((np.full(n, offset, dtype=np.int64), variables, np.ones(n)))
        lower.append(np.array([float(min_count)]))
        upper.append(np.array([np.inf]))
        offset += 1
    matrix = sp.csr_array(
        (
            np.concatenate([p[2] for p in parts]),
            (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
        ),
        shape=(offset, n),
    )
    return matrix, np.concatenate(lower), np.concatenate(upper)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.perf_counter(), 0.1)


def _solve_mip(
    problem: _Problem,
    weights: np.ndarray,
    subset: np.ndarray,
    deadline: float | None,
    *,
    min_count: int | None = None,
    mip_rel_gap: float = MIP_REL_GAP,
) -> _Solved:
    """Maximise `weights` over the edges in `subset` with HiGHS."""
    if subset.size == 0:
        if min_count:
            return _Solved(subset, 0.0, 0.0, "infeasible", "no pair can serve the proposals")
        return _Solved(subset, 0.0, 0.0, "optimal")
    matrix, lower, upper = _constraints(problem, subset, min_count)
    options: dict[str, object] = {"disp": False, "presolve": True, "mip_rel_gap": mip_rel_gap}
    remaining = _remaining(deadline)
    if remaining is not None:
        options["time_limit"] = remaining
    result = milp(
        -weights[subset],
        integrality=np.ones(subset.size),
        bounds=Bounds(0, 1),
        constraints=[LinearConstraint(matrix, lower, upper)] if matrix.shape[0] else None,
        options=options,
    )
    if result.x is None:
        if result.status == 2:
            return _Solved(subset[:0], 0.0, 0.0, "infeasible", str(result.message), subset.size)
        status: Status = "feasible" if result.status == 1 else "error"
        return _Solved(subset[:0], 0.0, math.inf, status, str(result.message), subset.size)
    chosen = subset[result.x > 0.5]
    value = float(weights[chosen].sum())
    dual_bound = getattr(result, "mip_dual_bound", None)
    bound = -float(dual_bound) if dual_bound is not None and np.isfinite(dual_bound) else value
    status = "optimal" if result.status == 0 else "feasible"
    message = "" if result.status == 0 else str(result.message)
    return _Solved(chosen, value, max(bound, value), status, message, subset.size)


def _heuristic(problem: _Problem, weights: np.ndarray, k: int) -> tuple[_Solved, np.ndarray]:
    """The sparse-mode allocation and the candidate edges it used."""
    subset, prices, bound = _working_set(problem, weights, k)
    assignment = _dive(problem, weights, subset, prices)
    assignment = _improve(problem, weights, subset, assignment)
    chosen = _edges_of(problem, assignment)
    value = float(weights[chosen].sum())
    return _Solved(chosen, value, max(bound, value), "feasible", "", subset.size), subset


def _best(first: _Solved, second: _Solved) -> _Solved:
    """The better allocation of two solves, with the tighter of their valid bounds."""
    winner = second if second.value > first.value + _TINY else first
    bound = min(first.bound, second.bound)
    return _Solved(
        winner.chosen,
        winner.value,
        max(bound, winner.value),
        winner.status,
        winner.message,
        max(first.edges, second.edges),
    )


def _solve(
    problem: _Problem, weights: np.ndarray, mode: SolvedMode, k: int, deadline: float | None
) -> _Solved:
    """Solve in `mode` (see the package docstring)."""
    heuristic, subset = _heuristic(problem, weights, k)
    if mode == "exact":
        everything = np.arange(problem.n_edges)
        exact = _solve_mip(problem, weights, everything, deadline)
        if exact.status == "optimal":
            return exact
        if exact.status == "error":
            logger.warning("allocation MILP failed (%s); keeping the heuristic", exact.message)
        return _best(heuristic, exact)
    if deadline is None:
        return heuristic
    polished = _solve_mip(problem, weights, subset, deadline)
    if polished.status in ("infeasible", "error"):
        return heuristic
    # A MILP bound over the candidates only does not bound the full problem: keep ours.
    polished = _Solved(
        polished.chosen, polished.value, heuristic.bound, "feasible", "", polished.edges
    )
    return _best(heuristic, polished)
