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


# Columns per group when bounding a row's k-th value from below (see `top_k_rows`).
GROUP_COLUMNS = 128


def top_k_rows(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k_desc(values, positions, k)` without sorting whole rows: per row, the k largest
    finite values and their column positions, best first, ties by lower position, padded with
    (-inf, -1).

    A row's k-th largest value is bounded from below by the k-th largest of the maxima of its
    groups of `GROUP_COLUMNS` columns (k groups hold k values at least that large), so only
    the values at or above that bound (a few per row) are found with one comparison over the
    block and ranked; rows with fewer than k groups, or fewer than k finite values, rank all
    their finite values (NaN counts as missing, as in `top_k_desc`)."""
    rows, cols = values.shape
    kk = max(0, min(k, cols))
    if kk == 0 or rows == 0:
        return top_k_desc(values[:, :0], np.zeros((rows, 0), dtype=np.int64), k)
    lowest = np.finfo(values.dtype).min  # the bound never admits -inf
    groups = cols // GROUP_COLUMNS
    if groups >= kk:
        grouped = values[:, : groups * GROUP_COLUMNS].reshape(rows, groups, GROUP_COLUMNS)
        maxima = grouped.max(axis=2)
        maxima *= -1
        bound = -np.partition(maxima, kk - 1, axis=1)[:, kk - 1]
        np.fmax(bound, lowest, out=bound)  # NaN maxima (no NaN scores expected) bound nothing
    else:
        bound = np.full(rows, lowest, dtype=values.dtype)
    # A flat index: np.nonzero over two dimensions is an order of magnitude slower.
    row, column = np.divmod(np.flatnonzero(values >= bound[:, None]), cols)
    found = values[row, column]
    order = np.lexsort((column, -found, row))
    row, column, found = row[order], column[order], found[order]
    rank = np.arange(row.size) - np.searchsorted(row, row)
    top = rank < k
    best_values = np.full((rows, k), -np.inf, dtype=values.dtype)
    best_ids = np.full((rows, k), -1, dtype=np.int64)
    best_values[row[top], rank[top]] = found[top]
    best_ids[row[top], rank[top]] = column[top]
    return best_values, best_ids


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
        rows, columns = np.divmod(np.flatnonzero(above), values.shape[1])
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
