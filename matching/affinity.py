"""Semantic affinity between texts and profiles (sets of texts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from matching.embeddings import EmbeddingStore, Encoder, default_encoder

Aggregate = Literal["max", "mean"]


def aggregate_profiles(
    similarities: np.ndarray, profile_sizes: Sequence[int], how: Aggregate = "mean"
) -> np.ndarray:
    """Collapse per-text similarities into one score per profile.

    `similarities` is (n_queries, sum(profile_sizes)) with each profile's texts in consecutive
    columns; returns (n_queries, len(profile_sizes)). An empty profile scores 0.0 (no evidence).
    """
    sizes = np.asarray(profile_sizes, dtype=np.int64)
    result = np.zeros((similarities.shape[0], len(sizes)), dtype=np.float32)
    nonempty = np.flatnonzero(sizes > 0)
    if similarities.shape[0] == 0 or nonempty.size == 0:
        return result
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[nonempty]
    if how == "max":
        result[:, nonempty] = np.maximum.reduceat(similarities, starts, axis=1)
    elif how == "mean":
        sums = np.add.reduceat(similarities, starts, axis=1)
        result[:, nonempty] = sums / sizes[nonempty]
    else:
        raise ValueError(f"unknown aggregation {how!r}; use 'max' or 'mean'")
    return result


def affinity(
    queries: Sequence[str],
    profiles: Sequence[Sequence[str]],
    *,
    encoder: Encoder | None = None,
    store: EmbeddingStore | None = None,
    how: Aggregate = "mean",
) -> np.ndarray:
    """Cosine affinity of each query text to each profile, shape (len(queries), len(profiles)).

    A profile is a sequence of texts (an offer's texts, or an academic's publications); the
    query's cosine similarity to each of them is aggregated (`how`: mean by default, which
    scores 0.261 on the expertise benchmark against 0.302 for max; see bench/README.md).
    Values lie in [-1, 1]; higher means a better fit. Uses the production encoder unless one
    is given.
    """
    encoder = encoder or default_encoder()
    flat = [text for profile in profiles for text in profile]
    query_vectors = encoder.encode(list(queries), store=store)
    profile_vectors = encoder.encode(flat, store=store)
    similarities = query_vectors @ profile_vectors.T
    return aggregate_profiles(similarities, [len(profile) for profile in profiles], how)
