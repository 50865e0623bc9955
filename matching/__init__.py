"""Matching: embeddings, affinity, scoring and top-k recommendation.

Pure computation over strings and numpy arrays; never imports Flask, `app` or `models`.
"""

from matching.affinity import affinity, aggregate_profiles
from matching.embeddings import (
    EmbeddingStore,
    Encoder,
    content_hash,
    default_encoder,
    load_model,
    resolve_model,
)
from matching.recommend import ALGORITHM_VERSION, DEFAULT_WEIGHTS, PairScores, score_pairs, top_k

__all__ = [
    "ALGORITHM_VERSION",
    "DEFAULT_WEIGHTS",
    "EmbeddingStore",
    "Encoder",
    "PairScores",
    "affinity",
    "aggregate_profiles",
    "content_hash",
    "default_encoder",
    "load_model",
    "resolve_model",
    "score_pairs",
    "top_k",
]
