"""A fast, deterministic stand-in for the embedding model, for tests and benchmarks only.

It is NOT semantic: a text's vector is its hashed words and word bigrams (English stop words
removed), projected to `dimension` by a fixed random Gaussian matrix drawn from `seed`, then
L2-normalised. A random projection keeps inner products roughly intact, so two texts that
share words have a higher cosine than two that share none; synonyms, paraphrases and other
languages get no credit at all. That is enough for plausible rankings in tests and for
benchmarks to exercise the whole pipeline at scale in seconds, and never enough to match real
proposals and offers: choose it explicitly, never by default.

`StandInEncoder` is an `Encoder` (same cache, store and counting), over `HashingModel`
instead of a sentence-transformers model, and its `model_name` differs from every real
model's, so the vectors it caches (keyed by model name) never mix with real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from matching.embeddings import Encoder

STAND_IN_MODEL = "stand-in-hashing-v1"
DEFAULT_DIMENSION = 384  # all-MiniLM-L6-v2's, so stored vectors have the production shape
DEFAULT_FEATURES = 2**14
DEFAULT_SEED = 0


def stand_in_model_name(
    dimension: int = DEFAULT_DIMENSION,
    n_features: int = DEFAULT_FEATURES,
    seed: int = DEFAULT_SEED,
) -> str:
    """The cache key of the stand-in's vectors: one name per set of parameters, so vectors
    made with other parameters are never read back as these."""
    if (dimension, n_features, seed) == (DEFAULT_DIMENSION, DEFAULT_FEATURES, DEFAULT_SEED):
        return STAND_IN_MODEL
    return f"{STAND_IN_MODEL}-d{dimension}-f{n_features}-s{seed}"


class HashingModel:
    """The part of a sentence-transformers model an `Encoder` uses (`encode`,
    `get_embedding_dimension`), computed from hashed words instead of a network.

    Stateless apart from the projection matrix (n_features x dimension float32, 25 MB at the
    defaults), which is drawn from `seed` on first use: the same text gives the same vector in
    every process."""

    def __init__(
        self,
        *,
        dimension: int = DEFAULT_DIMENSION,
        n_features: int = DEFAULT_FEATURES,
        seed: int = DEFAULT_SEED,
    ) -> None:
        if dimension < 1 or n_features < 1:
            raise ValueError("dimension and n_features must be positive")
        self.dimension = dimension
        self.n_features = n_features
        self.seed = seed
        self._vectorizer = HashingVectorizer(
            n_features=n_features,
            ngram_range=(1, 2),
            stop_words="english",
            alternate_sign=False,
            norm="l2",
            dtype=np.float32,
        )
        self._projection: np.ndarray | None = None

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def _matrix(self) -> np.ndarray:
        if self._projection is None:
            rng = np.random.default_rng(self.seed)
            self._projection = rng.standard_normal(
                (self.n_features, self.dimension), dtype=np.float32
            )
        return self._projection

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        """Unit-length float32 vectors, shape (len(texts), dimension). A text without a
        single counted word (empty, only stop words) gets a fixed unit vector, not zeros, so
        every row has norm 1 as the real model's do. Keyword arguments the real model takes
        (batch size, normalisation, progress bar) are accepted and ignored."""
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        hashed = self._vectorizer.transform(list(texts))
        vectors = np.asarray(hashed @ self._matrix(), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        vectors[empty] = 0.0
        vectors[empty, 0] = 1.0
        norms[empty] = 1.0
        return vectors / norms


class StandInEncoder(Encoder):
    """An `Encoder` over `HashingModel`: same interface, same caching, not semantic.

    Its `model_name` (`stand_in_model_name`) is never a real model's, so the embedding cache
    keeps its vectors apart from the production model's."""

    def __init__(
        self,
        *,
        dimension: int = DEFAULT_DIMENSION,
        n_features: int = DEFAULT_FEATURES,
        seed: int = DEFAULT_SEED,
        batch_size: int = 4096,
        memory_limit: int = 200_000,
    ) -> None:
        super().__init__(
            HashingModel(dimension=dimension, n_features=n_features, seed=seed),  # type: ignore[arg-type]
            model_name=stand_in_model_name(dimension, n_features, seed),
            batch_size=batch_size,
            memory_limit=memory_limit,
        )
