"""Top-k selection over score matrices (deterministic: ties go to the lower index)."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row, best first: (indices, values), each (rows, min(k, cols)).

    Ties are broken by the lower column index, so the result is deterministic.
    """
    rows, cols = scores.shape
    k = max(0, min(k, cols))
    if k == 0 or rows == 0:
        return np.zeros((rows, k), dtype=np.int64), np.zeros((rows, k), dtype=scores.dtype)
    # A full stable ordering: argpartition alone would pick arbitrarily among scores tied at
    # the k-th place.
    column_ids = np.broadcast_to(np.arange(cols), scores.shape)
    indices = np.lexsort((column_ids, -scores), axis=1)[:, :k]
    return indices, np.take_along_axis(scores, indices, axis=1)


def top_k_desc(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest finite `values` with their `ids`, best first, ties by lower id;
    padded with (-inf, -1). Both inputs are (rows, n)."""
    order = np.lexsort((ids, -values), axis=1)[:, :k]
    best_values = np.take_along_axis(values, order, axis=1)
    best_ids = np.take_along_axis(ids, order, axis=1)
    best_ids = np.where(np.isfinite(best_values), best_ids, -1)
    best_values = np.where(best_ids >= 0, best_values, -np.inf)
    if best_ids.shape[1] < k:
        pad = k - best_ids.shape[1]
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1)
        best_values = np.pad(best_values, ((0, 0), (0, pad)), constant_values=-np.inf)
    return best_values, best_ids


def top_k_rows(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k_desc(values, positions, k)` without sorting whole rows: per row, the k largest
    finite values and their column positions, best first, ties by lower position, padded with
    (-inf, -1). One np.partition per row finds the k-th largest value; the values above it
    are kept, and only rows with a tie at the k-th value (including rows with fewer than k
    finite values) choose among the values equal to it, by lower position."""
    rows, cols = values.shape
    kk = max(0, min(k, cols))
    if kk == 0 or rows == 0:
        return top_k_desc(values[:, :0], np.zeros((rows, 0), dtype=np.int64), k)
    # Partitioning the negated values is several times faster than asking for the
    # (cols - k)-th of many equal -inf values.
    kth = -np.partition(-values, kk - 1, axis=1)[:, kk - 1]
    keep = values >= kth[:, None]
    tied = np.flatnonzero(np.count_nonzero(keep, axis=1) > kk)
    if tied.size:
        sub = values[tied]
        above = sub > kth[tied, None]
        equal = sub == kth[tied, None]
        room = kk - np.count_nonzero(above, axis=1)
        keep[tied] = above | (equal & (np.cumsum(equal, axis=1) <= room[:, None]))
    chosen = np.nonzero(keep)[1].reshape(rows, kk).astype(np.int64, copy=False)
    return top_k_desc(np.take_along_axis(values, chosen, axis=1), chosen, k)


def merge_top_k(
    best_values: np.ndarray,
    best_ids: np.ndarray,
    values: np.ndarray,
    ids: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold a new block into running per-column top-k lists, in place.

    `best_values`/`best_ids` (n_columns, k) are each column's best so far (as `top_k_desc`
    leaves them: best first, (-inf, -1) padded); `values` is the new block (n_rows, n_columns)
    whose row i has id `ids[i]`, every id larger than every id already kept (so a tie keeps
    the earlier one). Only entries above their column's k-th value can enter: they are found
    with one comparison over the block, then each touched column's candidates and current
    list are ranked together (by value, then lower id); while most entries qualify (the first
    blocks) each column's block top-k is found by `top_k_rows` first."""
    above = values > best_values[:, -1][None, :]
    if np.count_nonzero(above) > 4 * k * values.shape[1]:
        # Early blocks: most entries beat an empty list, so rank each column's block first.
        _, best = top_k_rows(np.ascontiguousarray(values.T), k)
        columns, place = np.nonzero(best >= 0)
        rows = best[columns, place]
    else:
        rows, columns = np.nonzero(above)
    if rows.size == 0:
        return best_values, best_ids
    touched = np.unique(columns)
    column = np.concatenate([np.repeat(touched, k), columns])
    value = np.concatenate([best_values[touched].ravel(), values[rows, columns]])
    owner = np.concatenate([best_ids[touched].ravel(), ids[rows]])
    order = np.lexsort((owner, -value, column))
    column, value, owner = column[order], value[order], owner[order]
    starts = np.searchsorted(column, touched)
    rank = np.arange(column.size) - np.repeat(starts, np.diff(np.append(starts, column.size)))
    keep = rank < k
    best_values[column[keep], rank[keep]] = value[keep]
    best_ids[column[keep], rank[keep]] = np.where(np.isfinite(value[keep]), owner[keep], -1)
    return best_values, best_ids
