"""`matching.affinity` with the real model: shape, ranking, aggregation and caching."""

from __future__ import annotations

import numpy as np
import pytest

from matching import Encoder, affinity, aggregate_profiles
from matching.affinity import soft_maximum

RL = "Deep reinforcement learning agents that learn robot locomotion policies in simulation."
PROTEIN = "Protein structure prediction with graph neural networks on molecular data."


def test_shape_and_dtype(encoder: Encoder) -> None:
    scores = affinity(["a query", "another query", "third"], [[RL], [PROTEIN, RL]], encoder=encoder)
    assert scores.shape == (3, 2)
    assert scores.dtype == np.float32
    assert np.all(scores <= 1.0 + 1e-5) and np.all(scores >= -1.0 - 1e-5)


@pytest.mark.semantic
def test_related_text_ranks_above_unrelated(encoder: Encoder) -> None:
    queries = [
        "Training legged robots to walk with policy-gradient reinforcement learning.",
        "Predicting how proteins fold using deep learning on amino-acid sequences.",
    ]
    scores = affinity(queries, [[RL], [PROTEIN]], encoder=encoder)
    assert scores[0, 0] > scores[0, 1]
    assert scores[1, 1] > scores[1, 0]


@pytest.mark.semantic
def test_profile_aggregation_uses_every_text(encoder: Encoder) -> None:
    query = ["Reinforcement learning for robot control."]
    only_rl = affinity(query, [[RL]], encoder=encoder, how="mean")[0, 0]
    mixed_mean = affinity(query, [[RL, PROTEIN]], encoder=encoder, how="mean")[0, 0]
    mixed_max = affinity(query, [[RL, PROTEIN]], encoder=encoder, how="max")[0, 0]
    assert mixed_mean < only_rl
    assert mixed_max == pytest.approx(only_rl, abs=1e-5)


def test_empty_inputs(encoder: Encoder) -> None:
    assert affinity([], [[RL]], encoder=encoder).shape == (0, 1)
    assert affinity([RL], [], encoder=encoder).shape == (1, 0)
    assert affinity([RL], [[], [RL]], encoder=encoder)[0, 0] == 0.0


def test_aggregate_profiles_arithmetic() -> None:
    similarities = np.array([[0.1, 0.5, 0.3, 0.9]], dtype=np.float32)
    sizes = [3, 0, 1]
    np.testing.assert_allclose(aggregate_profiles(similarities, sizes, "max"), [[0.5, 0.0, 0.9]])
    np.testing.assert_allclose(aggregate_profiles(similarities, sizes, "mean"), [[0.3, 0.0, 0.9]])
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_profiles(similarities, sizes, "median")  # type: ignore[arg-type]


def test_embeddings_are_unit_length(encoder: Encoder) -> None:
    vectors = encoder.encode([RL, PROTEIN, "short"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unchanged_texts_are_never_encoded_twice(fresh_encoder: Encoder) -> None:
    first = fresh_encoder.encode([RL, PROTEIN, RL])
    assert fresh_encoder.encoded_count == 2
    again = fresh_encoder.encode([PROTEIN, RL])
    assert fresh_encoder.encoded_count == 2
    np.testing.assert_array_equal(again, first[[1, 0]])
    fresh_encoder.encode([RL, PROTEIN + " Edited."])
    assert fresh_encoder.encoded_count == 3


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1], [0, 2, 1, 5]])
def test_soft_maximum_into_reused_buffers_equals_a_fresh_result(sizes: list[int]) -> None:
    """Buffers holding an earlier block's numbers change nothing; one text per profile
    (its sum skipped) gives that text's cosine, as the mean-of-exponentials form does."""
    rng = np.random.default_rng(3)
    texts = rng.normal(size=(sum(sizes), 16)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    queries = rng.normal(size=(6, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    fresh = soft_maximum(texts, queries, sizes)
    out = np.full((len(sizes), 6), 7.0, dtype=np.float32)
    scratch = np.full(sum(sizes) * 6 + 5, 7.0, dtype=np.float32)
    reused = soft_maximum(texts, queries, sizes, scratch=scratch, out=out)
    assert reused is out
    np.testing.assert_array_equal(reused, fresh)
    expected = aggregate_profiles(queries @ texts.T, sizes, "lse").T
    np.testing.assert_allclose(fresh, expected, atol=1e-6)
    assert (fresh[np.array(sizes) == 0] == 0.0).all()
