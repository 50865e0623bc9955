"""Top-k selection over score matrices."""

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
    # the k-th place. For large matrices use `matching.topk.top_k_similar`.
    column_ids = np.broadcast_to(np.arange(cols), scores.shape)
    indices = np.lexsort((column_ids, -scores), axis=1)[:, :k]
    return indices, np.take_along_axis(scores, indices, axis=1)
