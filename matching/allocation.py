"""Capacity-constrained allocation of offers to proposals (allocation rounds).

For P proposals and O offers with a score s[p, o] (higher is better):

    maximise    the total score of the assigned (proposal, offer) pairs
    subject to  each proposal gets at most one offer;
                for each offer o, the GPU hours needed by its proposals <= hours_budget[o];
                for each offer o, the number of its proposals <= max_projects[o];
                only allowed pairs are assigned.

A pair is *allowed* when it is eligible, its score is finite, positive and at least
`min_score`, the proposal's hours fit in the offer's whole budget, and the offer takes at
least one project. Pairs scoring <= 0 are never assigned: leaving the proposal unassigned
scores 0, so such a pair can never raise the total, and it would use capacity.

This is a generalised assignment problem with knapsack (GPU-hour) constraints, NP-hard and, on
realistic data (a few large projects fill an offer's budget), hard for a generic MILP solver
to *prove* optimal: HiGHS needs 2-12 s for 100 proposals x 20 offers and does not close the
gap on 1k x 200 in minutes (see bench/allocation.py). Hence two modes:

- `exact`: a 0/1 programme over every allowed pair, solved by HiGHS through
  `scipy.optimize.milp` with sparse constraint matrices, to a relative gap of `MIP_REL_GAP`
  (status "optimal") or until `time_limit` (status "feasible", with HiGHS's gap). The
  heuristic below runs first and its allocation is kept if HiGHS does not beat it in time.
- `sparse`: each proposal's best `candidates_per_proposal` allowed pairs, grown by pricing
  (pairs that the Lagrangian prices say could improve are added), then an LP-guided heuristic:
  a smoothed Lagrangian dual gives offer prices and fractional assignments, a dive fixes the
  near-integral assignments and re-prices the rest, and a knapsack re-optimisation of each
  offer polishes the result. With a `time_limit`, HiGHS then searches the MILP over the
  candidate pairs for the time left and the better allocation is kept.
  `gap` is measured against an upper bound valid for *all* allowed pairs: the Lagrangian
  bound of the offer prices (`_lagrangian_bound`), which is never below the LP relaxation.
- `auto`: `exact` up to `AUTO_EXACT_EDGE_LIMIT` allowed pairs, `sparse` above.

Equity options (`equity=`):

- `"priority"`: proposals flagged in `priority` (self-declared under-resourced labs) have their
  scores multiplied by `1 + equity_weight` in the objective, which is maximised instead.
  `objective` stays in original scores; `equity_cost` = plain objective - `objective`, where
  the plain objective is the best original-score total known (the plain solve, or the equity
  allocation itself if that scores more), so the cost is >= 0.
- `"maxmin"`: lexicographic max-min fairness. Let n be the number of proposals the plain
  allocation serves. (1) Bisect over the distinct allowed scores for the highest threshold t
  at which an allocation serving at least n proposals with pairs scoring >= t is found;
  (2) among those, maximise the total score. The worst-off assigned proposal then scores >= t,
  which is >= the plain allocation's worst assigned score (that allocation witnesses its own
  threshold), and no fewer proposals are served. `equity_cost` is the loss in total score.

Results are deterministic for the same input: pairs are ordered by (proposal, offer), the
solver settings are fixed and every tie is broken by that order. Only a `time_limit` makes the
result depend on machine speed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp, minimize

try:  # installed with scikit-learn; optional, see `_single_threaded_blas`
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

logger = logging.getLogger(__name__)

Mode = Literal["auto", "exact", "sparse"]
SolvedMode = Literal["exact", "sparse"]
Status = Literal["optimal", "feasible", "empty", "infeasible", "error"]
Equity = Literal["priority", "maxmin"]

MIP_REL_GAP = 1e-4
"""HiGHS's relative MIP gap (its default): `exact` answers are optimal up to this gap."""

AUTO_EXACT_EDGE_LIMIT = 2_000
"""`mode="auto"` solves exactly up to this many allowed pairs. Measured on realistic random
instances (bench/allocation.py): HiGHS proves ~400 pairs (50 x 10) optimal in under a second
and ~1,600 pairs (100 x 20) in 2-12 s; 150k pairs (1k x 200) not in minutes. The sparse
heuristic is typically within 1-2 % of optimal (its gap is against a looser bound)."""

DEFAULT_CANDIDATES = 20
"""Initial candidate pairs per proposal in sparse mode."""

DEFAULT_EQUITY_WEIGHT = 0.2

_TINY = 1e-9
_PRICING_ROUNDS = 2
_DUAL_TEMPERATURES = (0.02, 0.003)
_DUAL_ITERATIONS = 200
_DIVE_ROUNDS = 30
_DIVE_THRESHOLD = 0.7
_KNAPSACK_UNITS = 256
_KNAPSACK_SWEEPS = 3


@dataclass(frozen=True)
class Allocation:
    """The result of `allocate` (P proposals, O offers).

    - `assignment`: (P,) int64, the offer index given to each proposal, or -1.
    - `objective`: total original score of the assigned pairs.
    - `status`: "optimal" (proven up to `MIP_REL_GAP`), "feasible" (a valid allocation without
      that proof: sparse mode, or a time limit), "empty" (no proposal, no offer or no allowed
      pair), "infeasible" or "error" (see `message`; nothing is assigned).
    - `gap`: (bound - optimised objective) / max(bound, tiny) >= 0, where `bound` is an upper
      bound on the optimised objective over all allowed pairs.
    - `optimised_objective`: what the solver maximised: `objective`, except with
      `equity="priority"` (weighted scores).
    - `mode`: the mode used, "exact" or "sparse".
    - `hours_used`: (O,) GPU hours given out per offer; `projects_used`: (O,) int64.
    - `equity_cost`: with an equity option, `plain_objective - objective` (original scores,
      >= 0); None otherwise. `plain_assignment` is the allocation without equity (P,), so a
      review can show what equity changed.
    - `min_assigned_score`: the lowest original score among assigned pairs (None if none).
    - `solve_seconds`: wall-clock seconds for the whole call.
    - `allowed_edges`: allowed pairs; `solver_edges`: the most pairs one solver stage (the
      heuristic's candidate set, or HiGHS's programme) worked on.
    """

    assignment: np.ndarray
    objective: float
    status: Status
    gap: float
    mode: SolvedMode
    hours_used: np.ndarray
    projects_used: np.ndarray
    equity_cost: float | None = None
    solve_seconds: float = 0.0
    message: str = ""
    bound: float = 0.0
    optimised_objective: float = 0.0
    plain_objective: float | None = None
    plain_assignment: np.ndarray | None = None
    min_assigned_score: float | None = None
    allowed_edges: int = 0
    solver_edges: int = 0

    @property
    def unassigned(self) -> np.ndarray:
        """Indices of the proposals that got no offer, ascending (int64)."""
        return np.flatnonzero(self.assignment < 0)

    @property
    def assigned_count(self) -> int:
        """Number of proposals that got an offer."""
        return int(np.count_nonzero(self.assignment >= 0))


@dataclass(frozen=True)
class Utilisation:
    """Per-offer use of capacity, all (O,) arrays, and the unassigned proposals.

    `hours_share` and `projects_share` are used / available, in [0, 1] (0 where nothing was
    available); `unassigned` holds proposal indices.
    """

    hours_used: np.ndarray
    hours_budget: np.ndarray
    hours_share: np.ndarray
    projects_used: np.ndarray
    max_projects: np.ndarray
    projects_share: np.ndarray
    unassigned: np.ndarray


def utilisation(
    allocation: Allocation, hours_budget: np.ndarray, max_projects: np.ndarray
) -> Utilisation:
    """How much of each offer's GPU-hour budget (O,) and project cap (O,) is allocated."""
    budget = np.asarray(hours_budget, dtype=np.float64)
    caps = np.asarray(max_projects, dtype=np.int64)
    if budget.shape != allocation.hours_used.shape:
        raise ValueError(f"hours_budget must have shape {allocation.hours_used.shape}")
    if caps.shape != allocation.projects_used.shape:
        raise ValueError(f"max_projects must have shape {allocation.projects_used.shape}")
    positive_budget = np.where(budget > 0, budget, 1.0)
    hours_share = np.where(budget > 0, allocation.hours_used / positive_budget, 0.0)
    projects_share = np.where(caps > 0, allocation.projects_used / np.maximum(caps, 1), 0.0)
    return Utilisation(
        hours_used=allocation.hours_used,
        hours_budget=budget,
        hours_share=hours_share,
        projects_used=allocation.projects_used,
        max_projects=caps,
        projects_share=projects_share,
        unassigned=allocation.unassigned,
    )


# ------------------------------------------------------------------------------ the problem


@dataclass(frozen=True)
class _Problem:
    """Allowed pairs as edge arrays sorted by (proposal, offer), and the capacities.

    `hour_coef[e]` is the proposal's hours over the offer's budget, so every hours constraint
    reads `sum(hour_coef * x) <= 1` (0 for a data-only need or an unlimited budget).
    """

    n_proposals: int
    n_offers: int
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    hours: np.ndarray
    budget: np.ndarray
    caps: np.ndarray
    hour_coef: np.ndarray

    @property
    def n_edges(self) -> int:
        return int(self.rows.size)

    def restrict(self, keep: np.ndarray) -> _Problem:
        """The same problem over the edges where the boolean (E,) `keep` holds."""
        return _Problem(
            self.n_proposals,
            self.n_offers,
            self.rows[keep],
            self.cols[keep],
            self.scores[keep],
            self.hours,
            self.budget,
            self.caps,
            self.hour_coef[keep],
        )


def _as_vector(value: np.ndarray, name: str, length: int | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers") from exc
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        expected = f"({length},)" if length is not None else "one-dimensional"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    return array


def _validate(
    scores: np.ndarray | None,
    hours_needed: np.ndarray,
    hours_budget: np.ndarray,
    max_projects: np.ndarray,
    eligible: np.ndarray | None,
    priority: np.ndarray | None,
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes and values; returns hours (P,), budget (O,) and integer caps (O,)."""
    if scores is None and candidates is None:
        raise ValueError("scores is required unless candidates are given")
    if scores is not None and candidates is not None:
        raise ValueError("pass either scores or candidates, not both")
    n_proposals: int | None = None
    n_offers: int | None = None
    if scores is not None:
        shape = np.shape(scores)
        if len(shape) != 2:
            raise ValueError(f"scores must be a (P, O) array, got shape {shape}")
        n_proposals, n_offers = int(shape[0]), int(shape[1])
    hours = _as_vector(hours_needed, "hours_needed", n_proposals)
    budget = _as_vector(hours_budget, "hours_budget", n_offers)
    n_proposals, n_offers = hours.shape[0], budget.shape[0]
    caps_float = _as_vector(max_projects, "max_projects", n_offers)
    if not np.all(np.isfinite(hours)):
        raise ValueError("hours_needed must be finite GPU hours")
    if np.any(hours < 0):
        raise ValueError("hours_needed must be non-negative GPU hours")
    if np.any(np.isnan(budget)):
        raise ValueError("hours_budget must not be NaN")
    if np.any(budget < 0):
        raise ValueError("hours_budget must be non-negative GPU hours")
    if not np.all(np.isfinite(caps_float)) or np.any(caps_float != np.round(caps_float)):
        raise ValueError("max_projects must be whole numbers")
    if np.any(caps_float < 0):
        raise ValueError("max_projects must be non-negative")
    if eligible is not None:
        if candidates is not None:
            raise ValueError("eligible cannot be combined with candidates: list allowed pairs")
        if np.shape(eligible) != (n_proposals, n_offers):
            raise ValueError(
                f"eligible must have shape ({n_proposals}, {n_offers}), got {np.shape(eligible)}"
            )
    if priority is not None and np.shape(priority) != (n_proposals,):
        raise ValueError(f"priority must have shape ({n_proposals},), got {np.shape(priority)}")
    return hours, budget, caps_float.astype(np.int64)


def _edges_from_dense(
    scores: np.ndarray,
    hours: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
    eligible: np.ndarray | None,
    min_score: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    matrix = np.asarray(scores)
    with np.errstate(invalid="ignore"):
        allowed = np.asarray(matrix > 0)  # False for NaN
        if min_score is not None:
            allowed &= matrix >= min_score
    allowed &= np.isfinite(matrix)
    if eligible is not None:
        allowed &= np.asarray(eligible, dtype=bool)
    allowed &= hours[:, None] <= budget[None, :]
    allowed &= (caps > 0)[None, :]
    rows, cols = np.nonzero(allowed)
    values = np.asarray(matrix[allowed], dtype=np.float64)
    return rows.astype(np.int64, copy=False), cols.astype(np.int64, copy=False), values


def _edges_from_candidates(
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
    hours: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
    min_score: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(candidates) != 3:
        raise ValueError("candidates must be a (rows, cols, values) triple")
    rows = np.asarray(candidates[0])
    cols = np.asarray(candidates[1])
    values = np.asarray(candidates[2], dtype=np.float64)
    if rows.ndim != 1 or rows.shape != cols.shape or rows.shape != values.shape:
        raise ValueError("candidates rows, cols and values must be 1-D arrays of equal length")
    for name, index, limit in (("rows", rows, hours.shape[0]), ("cols", cols, budget.shape[0])):
        if index.size and not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"candidates {name} must be integer indices")
        if index.size and (index.min() < 0 or index.max() >= limit):
            raise ValueError(f"candidates {name} must lie in [0, {limit})")
    rows = rows.astype(np.int64)
    cols = cols.astype(np.int64)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(values) & (values > 0)
        if min_score is not None:
            keep &= values >= min_score
    keep &= hours[rows] <= budget[cols]
    keep &= caps[cols] > 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    if rows.size > 1 and np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])):
        raise ValueError("candidates must not repeat a (proposal, offer) pair")
    return rows, cols, values


def _make_problem(
    rows: np.ndarray,
    cols: np.ndarray,
    scores: np.ndarray,
    hours: np.ndarray,
    budget: np.ndarray,
    caps: np.ndarray,
) -> _Problem:
    usable = np.isfinite(budget) & (budget > 0)
    per_hour = np.zeros(budget.shape[0])
    per_hour[usable] = 1.0 / budget[usable]
    coef = hours[rows] * per_hour[cols]
    return _Problem(hours.shape[0], budget.shape[0], rows, cols, scores, hours, budget, caps, coef)


def _row_starts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted `rows`: the proposals present and where each one's edges start."""
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    first = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    return rows[first], first


def _row_max(rows: np.ndarray, values: np.ndarray, n_proposals: int) -> np.ndarray:
    """Maximum of `values` over each proposal's edges (sorted `rows`), -inf without edges."""
    result = np.full(n_proposals, -np.inf)
    present, starts = _row_starts(rows)
    if present.size:
        result[present] = np.maximum.reduceat(values, starts)
    return result


def _top_per_proposal(
    rows: np.ndarray, values: np.ndarray, k: int, keep: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of each proposal's `k` highest `values` (among the edges where `keep`).

    `rows` is sorted; ties go to the earlier edge (lower offer index), so it is deterministic.
    """
    selected = np.zeros(rows.size, dtype=bool)
    index = None if keep is None else np.flatnonzero(keep)
    sub_rows = rows if index is None else rows[index]
    if sub_rows.size == 0 or k <= 0:
        return selected
    _, starts = _row_starts(sub_rows)
    counts = np.diff(np.append(starts, sub_rows.size))
    if np.any(counts <= k):
        small = np.repeat(counts <= k, counts)
        index = np.arange(sub_rows.size) if index is None else index
        selected[index[small]] = True
        index, sub_rows = index[~small], sub_rows[~small]
        if sub_rows.size == 0:
            return selected
        _, starts = _row_starts(sub_rows)
        counts = np.diff(np.append(starts, sub_rows.size))
    # Pad each remaining proposal's values into one row of a matrix and partition it.
    width = int(counts.max())
    flat = np.arange(sub_rows.size)
    flat += np.repeat(np.arange(starts.size) * width - starts, counts)
    padded = np.full(starts.size * width, -np.inf)
    padded[flat] = values if index is None else values[index]
    padded = padded.reshape(starts.size, width)
    kth = np.partition(padded, width - k, axis=1)[:, width - k]
    # Keep everything tied with the k-th value, then order by (value desc, slot) to cut.
    c_line, c_slot = np.nonzero(padded >= kth[:, None])
    order = np.lexsort((c_slot, -padded[c_line, c_slot], c_line))
    c_line, c_slot = c_line[order], c_slot[order]
    _, c_starts = _row_starts(c_line)
    rank = np.arange(c_line.size) - np.repeat(c_starts, np.diff(np.append(c_starts, c_line.size)))
    chosen = rank < k
    positions = starts[c_line[chosen]] + c_slot[chosen]
    selected[positions if index is None else index[positions]] = True
    return selected


# ------------------------------------------------------------------- prices and the bound


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


# ----------------------------------------------------------------------- primal heuristic


class _Packing:
    """A partial allocation with the capacity each offer has left."""

    def __init__(self, problem: _Problem) -> None:
        self.problem = problem
        self.assignment = np.full(problem.n_proposals, -1, dtype=np.int64)
        self.hours_left = problem.budget.astype(np.float64).copy()
        self.slots_left = problem.caps.astype(np.int64).copy()

    def fits(self, edges: np.ndarray) -> np.ndarray:
        rows, cols = self.problem.rows[edges], self.problem.cols[edges]
        return (
            (self.assignment[rows] < 0)
            & (self.slots_left[cols] > 0)
            & (self.problem.hours[rows] <= self.hours_left[cols])
        )

    def add_in_order(self, edges: np.ndarray) -> int:
        """Assign the edges in the given order wherever they still fit; returns how many."""
        rows = self.problem.rows[edges].tolist()
        cols = self.problem.cols[edges].tolist()
        hours = self.problem.hours
        added = 0
        for proposal, offer in zip(rows, cols, strict=True):
            need = hours[proposal]
            if (
                self.assignment[proposal] < 0
                and self.slots_left[offer] > 0
                and need <= self.hours_left[offer]
            ):
                self.assignment[proposal] = offer
                self.slots_left[offer] -= 1
                self.hours_left[offer] -= need
                added += 1
        return added


def _dive(
    problem: _Problem, weights: np.ndarray, subset: np.ndarray, prices: np.ndarray
) -> np.ndarray:
    """LP-guided rounding: fix the assignments the smoothed dual is sure of, re-price, repeat.

    Each round solves the smoothed dual over what is left (unassigned proposals, remaining
    capacity) and fixes, in order of fractional value, the edges above a threshold that still
    fit; the threshold halves when a round fixes nothing. A final greedy pass by weight fills
    what capacity remains. Returns the assignment (P,).
    """
    packing = _Packing(problem)
    threshold = _DIVE_THRESHOLD
    budget = problem.budget
    scale = np.where(np.isfinite(budget) & (budget > 0), budget, 1.0)
    temperatures = _DUAL_TEMPERATURES[-1:]
    for _ in range(_DIVE_ROUNDS):
        edges = subset[packing.fits(subset)]
        if edges.size == 0:
            break
        hour_units = np.where(np.isfinite(budget), packing.hours_left / scale, 1.0)
        prices, share = _smoothed_dual(
            problem.rows[edges],
            problem.cols[edges],
            problem.hour_coef[edges],
            weights[edges],
            hour_units,
            packing.slots_left,
            prices,
            temperatures,
        )
        order = np.lexsort((np.arange(edges.size), -weights[edges], -share))
        confident = order[share[order] > threshold]
        if packing.add_in_order(edges[confident]) == 0:
            threshold /= 2
            if threshold < 0.05:
                break
    edges = subset[packing.fits(subset)]
    packing.add_in_order(edges[np.lexsort((edges, -weights[edges]))])
    return packing.assignment


def _knapsack(values: np.ndarray, weights: np.ndarray, capacity: int, count: int) -> list[int]:
    """Best subset of items by total value with integer `weights` <= `capacity` and at most
    `count` items (dynamic programme over (items, weight)); returns item indices."""
    table = np.full((count + 1, capacity + 1), -np.inf)
    table[0, :] = 0.0
    taken = np.zeros((values.size, count + 1, capacity + 1), dtype=bool)
    for item, (value, weight) in enumerate(zip(values.tolist(), weights.tolist(), strict=True)):
        if weight > capacity or count == 0:
            continue
        candidate = table[:-1, : capacity + 1 - weight] + value
        current = table[1:, weight:]
        better = candidate > current + _TINY
        taken[item, 1:, weight:] = better
        table[1:, weight:] = np.where(better, candidate, current)
    size = int(np.argmax(table[:, capacity]))
    room = capacity
    chosen: list[int] = []
    for item in range(values.size - 1, -1, -1):
        if size > 0 and taken[item, size, room]:
            chosen.append(item)
            size -= 1
            room -= int(weights[item])
    return chosen


def _knapsack_bound(values: np.ndarray, weights: np.ndarray, capacity: int, count: int) -> float:
    """A cheap upper bound on `_knapsack`'s value: the smaller of the best `count` values and
    the fractional (LP) knapsack over the weights."""
    best_count = float(-np.sort(-values)[:count].sum())
    order = np.lexsort((np.arange(values.size), -values / np.maximum(weights, _TINY)))
    used = np.cumsum(weights[order])
    whole = used <= capacity
    fractional = float(values[order][whole].sum())
    first_out = int(np.count_nonzero(whole))
    if first_out < values.size:
        room = capacity - (used[first_out - 1] if first_out else 0)
        fractional += float(values[order][first_out] * room / weights[order][first_out])
    return min(best_count, fractional)


def _improve(
    problem: _Problem, weights: np.ndarray, subset: np.ndarray, assignment: np.ndarray
) -> np.ndarray:
    """Re-pack each offer optimally given the others, until no offer improves.

    For an offer, the items are its current proposals (worth their weight) and the others
    with a candidate edge to it (worth the gain over where they are now); a knapsack over the
    offer's hours (rounded up to `_KNAPSACK_UNITS` steps, so the result always fits) and
    project cap picks the best set. A proposal that moves frees capacity at its old offer.
    Only offers next to a proposal that changed are revisited.
    """
    assignment = assignment.copy()
    rows, cols, weight = problem.rows[subset], problem.cols[subset], weights[subset]
    value_now = np.zeros(problem.n_proposals)
    current = assignment[rows] == cols
    value_now[rows[current]] = weight[current]
    proposal_starts = np.searchsorted(rows, np.arange(problem.n_proposals + 1))
    by_offer = np.argsort(cols, kind="stable")
    offer_starts = np.searchsorted(cols[by_offer], np.arange(problem.n_offers + 1))
    dirty = np.ones(problem.n_offers, dtype=bool)
    for _ in range(_KNAPSACK_SWEEPS):
        for offer in np.flatnonzero(dirty).tolist():
            dirty[offer] = False
            edges = by_offer[offer_starts[offer] : offer_starts[offer + 1]]
            proposals = rows[edges]
            member = assignment[proposals] == offer
            gain = np.where(member, weight[edges], weight[edges] - value_now[proposals])
            useful = gain > _TINY
            if not np.any(useful & ~member):
                continue
            edges, proposals, member, gain = (
                edges[useful],
                proposals[useful],
                member[useful],
                gain[useful],
            )
            budget = problem.budget[offer]
            if np.isfinite(budget) and budget > 0:
                units = np.ceil(problem.hours[proposals] / budget * _KNAPSACK_UNITS)
                item_units, capacity = units.astype(np.int64), _KNAPSACK_UNITS
            else:
                item_units, capacity = np.zeros(proposals.size, dtype=np.int64), 0
            count = int(min(problem.caps[offer], proposals.size))
            if _knapsack_bound(gain, item_units, capacity, count) <= gain[member].sum() + _TINY:
                continue
            chosen = _knapsack(gain, item_units, capacity, count)
            if gain[chosen].sum() <= gain[member].sum() + _TINY:
                continue
            leaving = proposals[member]
            assignment[leaving] = -1
            value_now[leaving] = 0.0
            assignment[proposals[chosen]] = offer
            value_now[proposals[chosen]] = weight[edges[chosen]]
            for proposal in np.union1d(leaving, proposals[chosen]).tolist():
                dirty[cols[proposal_starts[proposal] : proposal_starts[proposal + 1]]] = True
            dirty[offer] = False
        if not np.any(dirty):
            break
    return assignment


def _edges_of(problem: _Problem, assignment: np.ndarray) -> np.ndarray:
    """Edge indices (sorted) of an assignment (P,); every assigned pair must be an edge."""
    assigned = np.flatnonzero(assignment >= 0)
    keys = problem.rows * problem.n_offers + problem.cols
    wanted = assigned * problem.n_offers + assignment[assigned]
    return np.searchsorted(keys, wanted)


# ------------------------------------------------------------------------------- solving


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


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    """Keep BLAS to one thread while solving.

    The BLAS calls here (inside L-BFGS-B) are on vectors of a few thousand entries; OpenBLAS
    threads them anyway, and on a busy two-core machine that made the whole solve 5-8x slower.
    """
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


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
    """Solve in `mode` (see the module docstring)."""
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
    """Lexicographic max-min (see the module docstring)."""
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


# -------------------------------------------------------------------------- public entry


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
      per proposal in sparse mode (default 20). See the module docstring.
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
