"""Offer prices and the upper bound.

A smoothed Lagrangian dual of the capacity constraints gives offer prices and fractional
assignments; the prices bound any allocation from above, and in sparse mode they choose which
pairs join the candidate set (pricing).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import Bounds, minimize

from matching.allocation.problem import (
    _TINY,
    _Problem,
    _row_max,
    _row_starts,
    _top_per_proposal,
)

logger = logging.getLogger(__name__)

_PRICING_ROUNDS = 2
_DUAL_TEMPERATURES = (0.02, 0.003)
_DUAL_ITERATIONS = 200


def _reduced(
    problem: _Problem, weights: np.ndarray, prices: np.ndarray, subset: np.ndarray | None = None
) -> np.ndarray:
    """Weight minus priced capacity of each edge (or of `subset`): `prices` = (hour, project)
    prices per offer, stacked (2O,), hours priced per unit of the offer's whole budget."""
    n = problem.n_offers
    if subset is None:
        cols, coef, weight = problem.cols, problem.hour_coef, weights
    else:
        cols, coef, weight = problem.cols[subset], problem.hour_coef[subset], weights[subset]
    return weight - coef * prices[:n][cols] - prices[n:][cols]


def _lagrangian_bound(problem: _Problem, prices: np.ndarray, reduced: np.ndarray) -> float:
    """An upper bound on the total weight of any allocation, for any prices >= 0.

    Relaxing the hours and project constraints with prices (pi, z) >= 0 gives
    sum_p max(0, max_o w[p, o] - hour_coef[p, o] pi_o - z_o) + sum_o (pi_o + caps_o z_o),
    where `reduced` (E,) holds w - hour_coef pi - z for every allowed pair; minimised over the
    prices it equals the LP relaxation, so it is never below it.
    """
    best = np.maximum(_row_max(problem.rows, reduced, problem.n_proposals), 0.0)
    n = problem.n_offers
    return float(best.sum() + prices[:n].sum() + (prices[n:] * problem.caps).sum())


def _smoothed_dual(
    rows: np.ndarray,
    cols: np.ndarray,
    coef: np.ndarray,
    weights: np.ndarray,
    hour_units: np.ndarray,
    slots: np.ndarray,
    start: np.ndarray,
    temperatures: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Offer prices minimising a smoothed Lagrangian dual, and fractional assignments.

    The max over a proposal's options (its edges and "unassigned") is replaced by a
    log-sum-exp at each temperature in turn, which makes the dual smooth, so L-BFGS-B solves
    it in a few hundred cheap iterations. Returns the prices (2O,) and, per edge, the share of
    its proposal the smoothed solution puts on it (an approximate LP solution).
    """
    n_offers = hour_units.size
    present, starts = _row_starts(rows)
    line = np.searchsorted(present, rows)
    capacity = np.concatenate((hour_units, slots.astype(np.float64)))

    def shares(prices: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        value = (weights - coef * prices[:n_offers][cols] - prices[n_offers:][cols]) / temperature
        top = np.maximum(np.maximum.reduceat(value, starts), 0.0)
        exp = np.exp(value - top[line])
        total = np.exp(-top) + np.add.reduceat(exp, starts)
        return exp / total[line], temperature * (top + np.log(total))

    prices = start
    if rows.size == 0:
        return np.zeros_like(start), np.zeros(0)
    for temperature in temperatures:

        def dual(
            candidate: np.ndarray, temperature: float = temperature
        ) -> tuple[float, np.ndarray]:
            share, softmax = shares(candidate, temperature)
            used = np.concatenate(
                (
                    np.bincount(cols, weights=share * coef, minlength=n_offers),
                    np.bincount(cols, weights=share, minlength=n_offers),
                )
            )
            return float(softmax.sum() + (capacity * candidate).sum()), capacity - used

        result = minimize(
            dual,
            prices,
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(0.0, np.inf),
            options={"maxiter": _DUAL_ITERATIONS},
        )
        prices = np.maximum(result.x, 0.0)
    return prices, shares(prices, temperatures[-1])[0]


def _working_set(
    problem: _Problem, weights: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Candidate edges (sorted indices), offer prices (2O,) and the bound over all edges.

    Starts from each proposal's top-k edges and, for a few rounds, adds the edges outside the
    set whose reduced weight beats their proposal's best candidate: the ones the prices say
    could improve the relaxation (column generation).
    """
    in_set = _top_per_proposal(problem.rows, weights, k)
    prices = np.zeros(2 * problem.n_offers)
    reduced = weights
    for round_ in range(_PRICING_ROUNDS):
        subset = np.flatnonzero(in_set)
        prices, _ = _smoothed_dual(
            problem.rows[subset],
            problem.cols[subset],
            problem.hour_coef[subset],
            weights[subset],
            np.ones(problem.n_offers),
            problem.caps,
            prices,
            _DUAL_TEMPERATURES if round_ == 0 else _DUAL_TEMPERATURES[-1:],
        )
        reduced = _reduced(problem, weights, prices)
        inside = np.where(in_set, reduced, -np.inf)
        best_inside = np.maximum(_row_max(problem.rows, inside, problem.n_proposals), 0.0)
        improving = ~in_set & (reduced > best_inside[problem.rows] + _TINY)
        logger.debug("allocation pricing round %d: %d improving pairs", round_, improving.sum())
        if not np.any(improving):
            break
        in_set |= _top_per_proposal(problem.rows, reduced, max(1, k // 2), improving)
    return np.flatnonzero(in_set), prices, _lagrangian_bound(problem, prices, reduced)
