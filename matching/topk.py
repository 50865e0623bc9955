"""The k most similar items of every query, in row chunks of bounded memory.

A full (queries x items) score matrix does not fit in memory at scale (100,000 x 100,000 float32
is 40 GB). Here each chunk of query rows is scored against every item with one BLAS matrix
product, reduced to its k best items and dropped, so the scratch memory depends on the chunk and
the number of items, never on the number of queries.

Selection per chunk, without a Python loop over rows: the columns are dealt into groups; the
k-th largest of the groups' maxima is a lower bound of the row's k-th best score, so the true
top k lie in the groups whose maximum reaches it (about k groups of m / 512 items each). Those
candidates are ranked exactly; a chunk where they are too many (massive ties, heavy masking)
falls back to an exact selection over the whole chunk. Both give the same result: best first,
ties by the lower item index, as `matching.recommend.top_k` orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# Scratch bytes per (query, item) pair of one chunk, rounded up for the small per-row arrays:
# the float32 scores (4), a mask and its complement (2), then the larger of the two selection
# paths (at most 7, the exact fallback; the usual path needs about 1.5).
BYTES_PER_PAIR = 16
DEFAULT_MEMORY_BUDGET = 256 * 2**20
# Rows per chunk when the budget allows more: from about 512 rows on, the time per pair is flat
# (bench/matching.py, 2-core machine), so more rows would only take more memory.
PREFERRED_CHUNK_ROWS = 1024
# Groups of columns per row whose maxima bound the k-th best score from below (at least 4 k):
# more groups, a tighter bound but a longer partition of the maxima.
GROUPS = 512

MaskFn = Callable[[int, int], np.ndarray]

_LOWEST = np.float32(np.finfo(np.float32).min)


def chunk_rows_for(n_items: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Query rows per chunk so that a chunk's scratch, `BYTES_PER_PAIR * rows * n_items` bytes,
    fits in `memory_budget` bytes; capped at `PREFERRED_CHUNK_ROWS`, and at least 1."""
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget}")
    by_budget = memory_budget // (BYTES_PER_PAIR * max(n_items, 1))
    return int(max(1, min(PREFERRED_CHUNK_ROWS, by_budget)))


def top_k_similar(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    chunk_rows: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    mask_fn: MaskFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k items most similar to each query: (indices, scores), each of shape (n, k).

    `queries` (n, d) and `items` (m, d) are unit-length rows (as `Encoder.encode` returns), so a
    dot product is a cosine in [-1, 1]; higher means more similar. Row i of `indices` (int64)
    holds item indices, best first, ties broken by the lower item index; `scores` (float32)
    holds their cosines.

    `mask_fn(row_start, row_stop)` may return a bool array of shape (row_stop - row_start, m),
    True where the pair (query row_start + r, item j) is allowed; excluded pairs never appear.
    A query with fewer than k allowed items (or k > m) is padded at the end with index -1 and
    score -inf.

    Memory: besides the inputs and the (n, k) results, the scratch is at most
    `BYTES_PER_PAIR` (16) bytes per pair of one chunk, i.e. 16 * chunk_rows * m bytes, plus the
    mask `mask_fn` returns. `chunk_rows` defaults to `chunk_rows_for(m, memory_budget)`, which
    keeps that within `memory_budget` bytes (256 MiB by default) whenever one row fits.
    """
    chunks = iter_top_k(
        queries, items, k, chunk_rows=chunk_rows, memory_budget=memory_budget, mask_fn=mask_fn
    )
    indices = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    for start, chunk_indices, chunk_scores in chunks:
        stop = start + len(chunk_indices)
        indices[start:stop] = chunk_indices
        scores[start:stop] = chunk_scores
    return indices, scores


def iter_top_k(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    chunk_rows: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    mask_fn: MaskFn | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """`top_k_similar` one chunk at a time, for writing results out as they come.

    Yields (row_start, indices, scores) for consecutive chunks of query rows: `indices` and
    `scores` have shape (rows, k) and describe queries row_start .. row_start + rows - 1.
    The arrays are fresh on every step; the caller may keep them. Same memory bound.
    """
    queries = _unit_rows(queries, "queries")
    items = _unit_rows(items, "items")
    if queries.shape[1] != items.shape[1]:
        raise ValueError(
            f"queries have dimension {queries.shape[1]} but items have {items.shape[1]}"
        )
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    rows_per_chunk = (
        chunk_rows if chunk_rows is not None else chunk_rows_for(len(items), memory_budget)
    )
    if rows_per_chunk < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {rows_per_chunk}")
    return _chunks(queries, items, k, rows_per_chunk, mask_fn)


def _chunks(
    queries: np.ndarray, items: np.ndarray, k: int, rows_per_chunk: int, mask_fn: MaskFn | None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    n, m = len(queries), len(items)
    if n == 0:
        return
    buffer = np.empty((min(rows_per_chunk, n), m), dtype=np.float32)
    for start in range(0, n, rows_per_chunk):
        stop = min(start + rows_per_chunk, n)
        chunk = buffer[: stop - start]
        np.matmul(queries[start:stop], items.T, out=chunk)
        if mask_fn is not None:
            allowed = np.asarray(mask_fn(start, stop))
            if allowed.shape != chunk.shape or allowed.dtype != np.bool_:
                raise ValueError(
                    f"mask_fn({start}, {stop}) must return a bool array of shape {chunk.shape}, "
                    f"got {allowed.dtype} {allowed.shape}"
                )
            np.copyto(chunk, -np.inf, where=~allowed)
            del allowed
        yield (start, *_select(chunk, k))


def _unit_rows(vectors: np.ndarray, name: str) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, dimension), got shape {array.shape}")
    if not np.isfinite(np.sum(array, dtype=np.float64)):  # NaN and inf propagate to the sum
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _select(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row of `scores` (rows, m), where -inf marks an excluded pair."""
    rows, m = scores.shape
    if k == 0:
        return np.empty((rows, 0), dtype=np.int64), np.empty((rows, 0), dtype=np.float32)
    if m <= k:
        return _ranked(scores, np.broadcast_to(np.arange(m), (rows, m)), k)
    if m >= 2 * max(GROUPS, 4 * k):
        found = _select_by_groups(scores, k)
        if found is not None:
            return found
    return _ranked(scores, _exact_top_positions(scores, k), k)


def _select_by_groups(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Top k of each row among the members of its candidate groups; None where that would
    exceed the memory bound (ties or masks spread the candidates over too many groups).

    Column j belongs to group j % groups. The k-th largest of the groups' maxima is a lower
    bound of the row's k-th largest score (k distinct members reach it), so every score at or
    above the row's k-th largest lies in a group whose maximum reaches the bound.
    """
    rows, m = scores.shape
    groups = max(GROUPS, 4 * k)
    slabs, tail = divmod(m, groups)
    body = slabs * groups
    maxima = scores[:, :body].reshape(rows, slabs, groups).max(axis=1)
    if tail:
        np.maximum(maxima[:, :tail], scores[:, body:], out=maxima[:, :tail])
    bound = np.partition(maxima, groups - k, axis=1)[:, [groups - k]]
    np.maximum(bound, _LOWEST, out=bound)  # a group of excluded pairs (-inf) is never chosen
    chosen = maxima >= bound
    counts = np.count_nonzero(chosen, axis=1)
    members = slabs + (1 if tail else 0)
    width = max(int(counts.max()), -(-(k + 1) // members))
    if width * members * 8 > m:
        return None
    flat = np.flatnonzero(chosen)
    row_of, group = np.divmod(flat, groups)
    position = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    chosen_groups = np.full((rows, width), -1, dtype=np.int64)
    chosen_groups.reshape(-1)[row_of * width + position] = group
    # Member s of the w-th chosen group is column s * groups + group: read in (s, w) order, the
    # columns of a row ascend, so a lower position is a lower column (the tie rule).
    columns = np.arange(members)[None, :, None] * groups + chosen_groups[:, None, :]
    valid = (chosen_groups[:, None, :] >= 0) & (columns < m)
    columns = np.where(valid, columns, -1).reshape(rows, members * width)
    flat_index = np.maximum(columns, 0)
    flat_index += np.arange(0, rows * m, m)[:, None]
    values = scores.reshape(-1)[flat_index]
    values[columns < 0] = -np.inf
    positions = _exact_top_positions(values, k)
    return _ranked(values, np.take_along_axis(columns, positions, axis=1), k, positions)


def _exact_top_positions(values: np.ndarray, k: int) -> np.ndarray:
    """Positions (rows, k), ascending, of each row's k largest values, ties to the lower
    position. Needs k < values.shape[1] and no NaN; scratch at most 7 bytes per element."""
    rows, width = values.shape
    kth = np.partition(values, width - k, axis=1)[:, [width - k]]  # a copy, not a view
    take = values > kth
    tied = values == kth
    still_needed = (k - np.count_nonzero(take, axis=1)).astype(np.int32)
    rank_among_tied = tied.astype(np.int32)
    np.cumsum(rank_among_tied, axis=1, out=rank_among_tied)
    within = rank_among_tied <= still_needed[:, None]
    del rank_among_tied
    np.logical_and(tied, within, out=tied)
    np.logical_or(take, tied, out=take)
    return (np.flatnonzero(take) % width).reshape(rows, k)


def _ranked(
    values: np.ndarray, columns: np.ndarray, k: int, positions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Order the chosen `columns` (ascending within each row) best first, stably, so equal
    scores keep the lower column first; pad to k with (-1, -inf); mark excluded pairs -1."""
    chosen = np.take_along_axis(values, columns if positions is None else positions, axis=1)
    order = np.argsort(-chosen, axis=1, kind="stable")
    best_scores = np.take_along_axis(chosen, order, axis=1)
    best = np.take_along_axis(columns, order, axis=1).astype(np.int64, copy=True)
    best[best_scores == -np.inf] = -1
    rows, found = best.shape
    if found < k:
        best = np.hstack([best, np.full((rows, k - found), -1, dtype=np.int64)])
        best_scores = np.hstack([best_scores, np.full((rows, k - found), -np.inf, np.float32)])
    return best, best_scores.astype(np.float32, copy=False)
