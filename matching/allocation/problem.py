"""The problem: checked inputs and the allowed (proposal, offer) pairs as edge arrays.

Edges are sorted by (proposal, offer); the helpers here reduce over each proposal's edges
without a Python loop over proposals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-9
"""Slack for comparing floating-point totals: a change smaller than this is no improvement."""


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
