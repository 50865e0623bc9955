"""The primal heuristic: an LP-guided dive builds an allocation from the candidate pairs and
an exact knapsack re-packing of each offer polishes it."""

from __future__ import annotations

import numpy as np

from matching.allocation.prices import _DUAL_TEMPERATURES, _smoothed_dual
from matching.allocation.problem import _TINY, _Problem

_DIVE_ROUNDS = 30
_DIVE_THRESHOLD = 0.7
_KNAPSACK_UNITS = 256
_KNAPSACK_SWEEPS = 3


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
