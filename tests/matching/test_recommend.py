"""Top-k selection and pair scoring."""

from __future__ import annotations

import numpy as np
import pytest

from matching import Encoder, score_pairs, top_k


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


def test_score_pairs_weights_components_and_falls_back_without_publications(
    encoder: Encoder,
) -> None:
    proposals = [
        "Reinforcement learning for warehouse robot picking.",
        "Speech recognition for low-resource African languages.",
    ]
    offers = [
        "GPU hours for robotics and embodied AI research.",
        "Multilingual speech corpus with transcripts in twelve languages.",
    ]
    publications = [["Sim-to-real transfer of grasping policies for robot arms."], []]
    scores = score_pairs(proposals, offers, publications, encoder=encoder)
    assert scores.total.shape == (2, 2)
    expected = 0.7 * scores.components["proposal"] + 0.3 * scores.components["publications"]
    np.testing.assert_allclose(scores.total, expected, rtol=1e-5)
    np.testing.assert_array_equal(
        scores.components["publications"][1], scores.components["proposal"][1]
    )
    assert scores.total[0, 0] > scores.total[0, 1]
    assert scores.total[1, 1] > scores.total[1, 0]
