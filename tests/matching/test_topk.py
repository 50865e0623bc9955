"""Chunked top-k retrieval: same answer as a full sort, masks, padding, ties and memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest

from matching.topk import iter_top_k, top_k_similar

MaskFn = Callable[[int, int], np.ndarray]


def unit_rows(rng: np.random.Generator, rows: int, dimension: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def signed_axes(rng: np.random.Generator, rows: int, dimension: int) -> np.ndarray:
    """Unit vectors +-e_j: every cosine with them is one coordinate of the other vector, exact
    in any summation order, so equal scores are truly equal (ties by the hundred)."""
    vectors = np.zeros((rows, dimension), dtype=np.float32)
    vectors[np.arange(rows), rng.integers(0, dimension, rows)] = rng.choice([-1.0, 1.0], rows)
    return vectors


def full_sort(
    queries: np.ndarray, items: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every score, sorted best first with ties by lower index, then padded."""
    scores = queries @ items.T
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, order, axis=1)
    order = np.where(best == -np.inf, -1, order)
    missing = k - order.shape[1]
    order = np.pad(order, ((0, 0), (0, missing)), constant_values=-1)
    best = np.pad(best, ((0, 0), (0, missing)), constant_values=-np.inf)
    return order, best


def assert_same(
    found: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]
) -> None:
    indices, scores = found
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(indices, expected[0])
    np.testing.assert_allclose(scores, expected[1], atol=1e-6)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 500])
@pytest.mark.parametrize(("items", "k"), [(3000, 10), (3000, 1), (300, 10), (12, 10)])
def test_agrees_with_a_full_sort(chunk_rows: int, items: int, k: int) -> None:
    rng = np.random.default_rng(items + k)
    queries, catalogue = unit_rows(rng, 130, 24), unit_rows(rng, items, 24)
    found = top_k_similar(queries, catalogue, k, chunk_rows=chunk_rows)
    assert found[0].shape == (130, k)
    assert_same(found, full_sort(queries, catalogue, k))


@pytest.mark.parametrize("chunk_rows", [3, 50])
@pytest.mark.parametrize("items", [40, 3000])
def test_equal_scores_keep_the_lower_index_first(chunk_rows: int, items: int) -> None:
    rng = np.random.default_rng(items)
    queries, catalogue = unit_rows(rng, 60, 6), signed_axes(rng, items, 6)
    found = top_k_similar(queries, catalogue, 10, chunk_rows=chunk_rows)
    assert_same(found, full_sort(queries, catalogue, 10))
    tied = catalogue[found[0][0]]
    assert (np.diff(found[0][0])[(tied[1:] == tied[:-1]).all(axis=1)] > 0).all()


def test_a_few_tied_items_among_many() -> None:
    rng = np.random.default_rng(5)
    queries, catalogue = unit_rows(rng, 40, 16), unit_rows(rng, 4000, 16)
    catalogue[[100, 2500, 3999]] = queries[0]  # the best item three times over, far apart
    indices, scores = top_k_similar(queries, catalogue, 5, chunk_rows=16)
    assert indices[0, :3].tolist() == [100, 2500, 3999]
    assert_same((indices, scores), full_sort(queries, catalogue, 5))


@pytest.mark.parametrize("allowed_share", [0.5, 0.01, 0.0005])
@pytest.mark.parametrize("items", [200, 3000])
def test_masked_pairs_never_appear(allowed_share: float, items: int) -> None:
    rng = np.random.default_rng(items)
    queries, catalogue = unit_rows(rng, 90, 16), unit_rows(rng, items, 16)
    allowed = rng.random((90, items)) < allowed_share
    allowed[0] = False  # a query with nothing allowed at all
    calls: list[tuple[int, int]] = []

    def mask_fn(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return allowed[start:stop]

    indices, scores = top_k_similar(queries, catalogue, 8, chunk_rows=32, mask_fn=mask_fn)
    assert calls == [(0, 32), (32, 64), (64, 90)]
    assert_same((indices, scores), full_sort(queries, catalogue, 8, allowed))
    rows, columns = np.nonzero(indices >= 0)
    assert allowed[rows, indices[rows, columns]].all()
    padded = indices < 0
    assert padded[0].all() and (scores[padded] == -np.inf).all()
    assert (padded.sum(axis=1) == np.maximum(0, 8 - allowed.sum(axis=1))).all()


def test_more_wanted_than_items_pads_every_row() -> None:
    rng = np.random.default_rng(1)
    queries, catalogue = unit_rows(rng, 5, 8), unit_rows(rng, 3, 8)
    indices, scores = top_k_similar(queries, catalogue, 5)
    assert (indices[:, 3:] == -1).all() and (scores[:, 3:] == -np.inf).all()
    assert_same((indices, scores), full_sort(queries, catalogue, 5))


def test_nothing_in_nothing_out() -> None:
    rng = np.random.default_rng(2)
    indices, scores = top_k_similar(np.zeros((0, 8), np.float32), unit_rows(rng, 4, 8), 3)
    assert indices.shape == scores.shape == (0, 3)
    indices, scores = top_k_similar(unit_rows(rng, 2, 8), np.zeros((0, 8), np.float32), 3)
    assert (indices == -1).all() and (scores == -np.inf).all()
    assert top_k_similar(unit_rows(rng, 2, 8), unit_rows(rng, 4, 8), 0)[0].shape == (2, 0)


def test_streaming_yields_consecutive_chunks() -> None:
    rng = np.random.default_rng(3)
    queries, catalogue = unit_rows(rng, 100, 16), unit_rows(rng, 2000, 16)
    chunks = list(iter_top_k(queries, catalogue, 4, chunk_rows=30))
    assert [(start, len(indices)) for start, indices, _ in chunks] == [
        (0, 30),
        (30, 30),
        (60, 30),
        (90, 10),
    ]
    streamed = (
        np.concatenate([indices for _, indices, _ in chunks]),
        np.concatenate([scores for _, _, scores in chunks]),
    )
    assert_same(streamed, full_sort(queries, catalogue, 4))


def scratch_peak(
    queries: np.ndarray, items: np.ndarray, budget: int, mask_fn: MaskFn | None
) -> int:
    """Peak bytes traced while ranking, less the (n, k) results themselves."""
    k = 10
    tracemalloc.start()
    try:
        top_k_similar(queries, items, k, memory_budget=budget, mask_fn=mask_fn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - len(queries) * k * (8 + 4)


@pytest.mark.parametrize("kind", ["random", "ties", "mask"])
def test_scratch_memory_is_bounded_whatever_the_number_of_queries(kind: str) -> None:
    rng = np.random.default_rng(4)
    budget = 4 * 2**20
    queries = unit_rows(rng, 3000, 16)
    catalogue = signed_axes(rng, 4000, 16) if kind == "ties" else unit_rows(rng, 4000, 16)
    allowed = rng.random((3000, 4000)) < 0.3
    mask_fn: MaskFn | None = (lambda a, b: allowed[a:b].copy()) if kind == "mask" else None
    fewer = scratch_peak(queries[:1000], catalogue, budget, mask_fn)
    more = scratch_peak(queries, catalogue, budget, mask_fn)  # a full matrix would take 48 MB
    assert more <= budget and fewer <= budget
    assert more <= fewer + 64 * 2**10


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(6)
    queries, catalogue = unit_rows(rng, 3, 8), unit_rows(rng, 5, 8)
    with pytest.raises(ValueError, match="dimension 8 but items have 4"):
        top_k_similar(queries, catalogue[:, :4], 2)
    with pytest.raises(ValueError, match="queries must be a 2-D array"):
        top_k_similar(queries[0], catalogue, 2)
    broken = catalogue.copy()
    broken[2, 1] = np.nan
    with pytest.raises(ValueError, match="items contains NaN"):
        top_k_similar(queries, broken, 2)
    with pytest.raises(ValueError, match="k must be >= 0"):
        iter_top_k(queries, catalogue, -1)
    with pytest.raises(ValueError, match=r"must return a bool array of shape \(3, 5\)"):
        top_k_similar(queries, catalogue, 2, mask_fn=lambda a, b: np.ones((b - a, 4), bool))
