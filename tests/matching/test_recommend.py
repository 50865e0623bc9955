"""Top-k selection."""

from __future__ import annotations

import numpy as np
import pytest

from matching import top_k
from matching.recommend import top_k_desc, top_k_rows


@pytest.mark.parametrize("k", [1, 3, 7, 10, 15])
def test_top_k_agrees_with_a_full_sort(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(20, 10)).astype(np.float32)
    indices, values = top_k(scores, k)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, 10)]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))


def test_top_k_breaks_ties_by_lower_index() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]])
    indices, _ = top_k(scores, 3)
    assert indices.tolist() == [[1, 3, 0]]


def test_top_k_of_nothing() -> None:
    assert top_k(np.zeros((3, 0)), 5)[0].shape == (3, 0)
    assert top_k(np.zeros((0, 4)), 2)[0].shape == (0, 2)


def test_top_k_is_deterministic_when_ties_straddle_the_cut() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, size=(500, 12)).astype(np.float32)
    indices, _ = top_k(scores, 4)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(indices, expected)


# `top_k_desc` keeps each row's k best (value, id) pairs, as the engine's streaming merge needs;
# these cases came over from the tests of the chunked retrieval module it replaced.


def reference_top_k(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row by row in plain Python: finite values only, best first, ties by lower id, padded."""
    best_values = np.full((len(values), k), -np.inf, dtype=values.dtype)
    best_ids = np.full((len(values), k), -1, dtype=np.int64)
    for row, (row_values, row_ids) in enumerate(zip(values.tolist(), ids.tolist(), strict=True)):
        kept = sorted(
            (-value, id_)
            for value, id_ in zip(row_values, row_ids, strict=True)
            if np.isfinite(value)
        )[:k]
        best_values[row, : len(kept)] = [-value for value, _ in kept]
        best_ids[row, : len(kept)] = [id_ for _, id_ in kept]
    return best_values, best_ids


def column_ids(values: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.arange(values.shape[1]), values.shape)


def assert_same_top_k(
    found: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]
) -> None:
    np.testing.assert_array_equal(found[1], expected[1])
    np.testing.assert_array_equal(found[0], expected[0])


@pytest.mark.parametrize(("items", "k"), [(300, 10), (300, 1), (12, 10)])
def test_top_k_desc_agrees_with_a_full_sort(items: int, k: int) -> None:
    rng = np.random.default_rng(items + k)
    values = rng.normal(size=(40, items)).astype(np.float32)
    found = top_k_desc(values, column_ids(values), k)
    assert found[0].shape == found[1].shape == (40, k)
    assert_same_top_k(found, reference_top_k(values, column_ids(values), k))


def test_top_k_desc_keeps_the_lower_id_first_among_equal_values() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 3, size=(60, 40)).astype(np.float32)  # ties by the dozen
    ids = np.stack([rng.permutation(1000)[:40] for _ in range(60)])  # ids not in column order
    best_values, best_ids = top_k_desc(values, ids, 10)
    assert_same_top_k((best_values, best_ids), reference_top_k(values, ids, 10))
    tied = best_values[:, 1:] == best_values[:, :-1]
    assert (best_ids[:, 1:][tied] > best_ids[:, :-1][tied]).all()


def test_top_k_desc_a_few_tied_items_among_many() -> None:
    rng = np.random.default_rng(5)
    values = rng.uniform(-1, 0.9, size=(3, 4000)).astype(np.float32)
    values[0, [3999, 100, 2500]] = 1.0  # the best item three times over, far apart
    _, best_ids = top_k_desc(values, column_ids(values), 5)
    assert best_ids[0, :3].tolist() == [100, 2500, 3999]


@pytest.mark.parametrize("allowed_share", [0.5, 0.01])
def test_top_k_desc_never_returns_excluded_pairs(allowed_share: float) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(size=(90, 200)).astype(np.float32)
    allowed = rng.random(values.shape) < allowed_share
    allowed[0] = False  # a row with nothing allowed at all
    masked = np.where(allowed, values, -np.inf).astype(np.float32)
    masked[1, 0] = np.nan  # not a number is excluded too
    best_values, best_ids = top_k_desc(masked, column_ids(masked), 8)
    assert_same_top_k((best_values, best_ids), reference_top_k(masked, column_ids(masked), 8))
    rows, slots = np.nonzero(best_ids >= 0)
    assert (
        allowed[rows, best_ids[rows, slots]].all() and np.isfinite(best_values[rows, slots]).all()
    )
    padded = best_ids < 0
    assert padded[0].all() and (best_values[padded] == -np.inf).all()
    finite = np.isfinite(masked).sum(axis=1)
    assert (padded.sum(axis=1) == np.maximum(0, 8 - finite)).all()


def test_top_k_desc_pads_every_row_when_more_are_wanted_than_there_are() -> None:
    values = np.array([[0.2, 0.7, 0.1], [0.3, 0.3, 0.9]], dtype=np.float32)
    best_values, best_ids = top_k_desc(values, column_ids(values), 5)
    assert best_ids.tolist() == [[1, 0, 2, -1, -1], [2, 0, 1, -1, -1]]
    assert (best_values[:, 3:] == -np.inf).all()


def test_top_k_desc_nothing_in_nothing_out() -> None:
    empty_rows = np.zeros((0, 4), dtype=np.float32)
    assert top_k_desc(empty_rows, column_ids(empty_rows), 3)[1].shape == (0, 3)
    no_items = np.zeros((2, 0), dtype=np.float32)
    best_values, best_ids = top_k_desc(no_items, column_ids(no_items), 3)
    assert best_ids.shape == (2, 3) and (best_ids == -1).all() and (best_values == -np.inf).all()
    values = np.ones((2, 4), dtype=np.float32)
    assert top_k_desc(values, column_ids(values), 0)[1].shape == (2, 0)


@pytest.mark.parametrize("columns", [3, 130, 700, 2000])
@pytest.mark.parametrize("k", [1, 5, 12])
def test_top_k_rows_equals_top_k_desc(columns: int, k: int) -> None:
    """The bounded search finds what a full ranking does: ties by the lower column, rows
    with fewer than k (or no) allowed values padded, NaN never chosen."""
    rng = np.random.default_rng(columns * 100 + k)
    values = rng.integers(0, 40, size=(50, columns)).astype(np.float32) / 8  # many ties
    values[rng.random(values.shape) < 0.8] = -np.inf
    values[0] = -np.inf
    values[1, 2:] = -np.inf
    values[2, :: max(1, columns // 7)] = 9.0  # the best value in several groups
    values[3, 0] = np.nan
    expected = top_k_desc(values, column_ids(values), k)
    assert_same_top_k(top_k_rows(values, k), expected)
    assert_same_top_k(top_k_rows(np.asfortranarray(values), k), expected)
