"""Top-k selection."""

from __future__ import annotations

import numpy as np
import pytest

from matching import top_k


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
