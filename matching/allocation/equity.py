"""Lexicographic max-min fairness (`equity="maxmin"`, see the package docstring)."""

from __future__ import annotations

import numpy as np

from matching.allocation.prices import _working_set
from matching.allocation.problem import _Problem
from matching.allocation.result import SolvedMode, Status
from matching.allocation.solving import MIP_REL_GAP, _heuristic, _solve_mip, _Solved


def _serves(
    problem: _Problem,
    mode: SolvedMode,
    k: int,
    threshold: float,
    needed: int,
    deadline: float | None,
) -> _Solved | None:
    """An allocation serving >= `needed` proposals with pairs scoring >= `threshold`, if one
    is found (maximising the number served), else None."""
    keep = problem.scores >= threshold
    if np.unique(problem.rows[keep]).size < needed:
        return None
    sub = problem.restrict(keep)
    ones = np.ones(sub.n_edges)
    if mode == "exact":
        gap = min(MIP_REL_GAP, 0.5 / (needed + 1))
        solved = _solve_mip(sub, ones, np.arange(sub.n_edges), deadline, mip_rel_gap=gap)
    else:
        solved, _ = _heuristic(sub, ones, k)
    if solved.status in ("infeasible", "error") or solved.chosen.size < needed:
        return None
    return _Solved(np.flatnonzero(keep)[solved.chosen], 0.0, 0.0, "feasible")


def _solve_maxmin(
    problem: _Problem, plain: _Solved, mode: SolvedMode, k: int, deadline: float | None
) -> _Solved:
    """Lexicographic max-min (see the package docstring)."""
    needed = int(plain.chosen.size)
    if needed == 0:
        return plain
    levels = np.unique(problem.scores)
    low = int(np.searchsorted(levels, problem.scores[plain.chosen].min()))
    high = levels.size - 1
    witness = plain
    while low < high:
        middle = (low + high + 1) // 2
        found = _serves(problem, mode, k, float(levels[middle]), needed, deadline)
        if found is not None:
            low, witness = middle, found
        else:
            high = middle - 1
    keep = problem.scores >= levels[low]
    sub = problem.restrict(keep)
    if mode == "exact":
        everything = np.arange(sub.n_edges)
        solved = _solve_mip(sub, sub.scores, everything, deadline, min_count=needed)
    else:
        # Each pair is worth one more than its score, so serving more proposals comes first.
        solved, _ = _heuristic(sub, sub.scores + 1.0, k)
        bound = _working_set(sub, sub.scores, k)[2]
        solved = _Solved(solved.chosen, float(sub.scores[solved.chosen].sum()), bound, "feasible")
    best, bound = witness, plain.bound
    if solved.status in ("optimal", "feasible") and solved.chosen.size >= needed:
        chosen = np.flatnonzero(keep)[solved.chosen]
        if float(problem.scores[chosen].sum()) >= float(problem.scores[witness.chosen].sum()):
            best = _Solved(chosen, 0.0, 0.0, solved.status, solved.message, sub.n_edges)
            bound = min(bound, solved.bound)
    value = float(problem.scores[best.chosen].sum())
    # Both bounds hold: the max-min problem is the plain problem with fewer pairs allowed.
    status: Status = "optimal" if mode == "exact" and best.status == "optimal" else "feasible"
    return _Solved(best.chosen, value, max(bound, value), status, best.message, int(keep.sum()))
