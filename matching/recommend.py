"""Top-k selection over score matrices, and the first weighted score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from matching.affinity import affinity
from matching.embeddings import EmbeddingStore, Encoder

ALGORITHM_VERSION = "semantic-v1"

# Weights of the score components; they sum to 1 so the total stays a cosine-like value.
DEFAULT_WEIGHTS: Mapping[str, float] = {"proposal": 0.7, "publications": 0.3}


@dataclass(frozen=True)
class PairScores:
    """Scores of every (proposal, offer) pair: `total` and each component, all (P, O)."""

    total: np.ndarray
    components: dict[str, np.ndarray]
    weights: Mapping[str, float]
    version: str = ALGORITHM_VERSION


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row, best first: (indices, values), each (rows, min(k, cols)).

    Ties are broken by the lower column index, so the result is deterministic.
    """
    rows, cols = scores.shape
    k = max(0, min(k, cols))
    if k == 0 or rows == 0:
        return np.zeros((rows, k), dtype=np.int64), np.zeros((rows, k), dtype=scores.dtype)
    if k < cols:
        candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(cols), (rows, cols))
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    indices = np.take_along_axis(candidates, order, axis=1)
    return indices, np.take_along_axis(scores, indices, axis=1)


def score_pairs(
    proposal_texts: Sequence[str],
    offer_texts: Sequence[str],
    author_publications: Sequence[Sequence[str]],
    *,
    encoder: Encoder | None = None,
    store: EmbeddingStore | None = None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> PairScores:
    """Score every proposal against every offer.

    `author_publications[p]` holds the texts of the publications of proposal p's author. The
    components, each (P, O) cosine in [-1, 1], higher is better:
    - `proposal`: the proposal text against the offer text;
    - `publications`: the offer text against the author's publications, averaged (equal to
      `proposal` when the author has listed none, so a missing profile costs nothing).
    """
    offer_profiles = [[text] for text in offer_texts]
    by_proposal = affinity(proposal_texts, offer_profiles, encoder=encoder, store=store)
    by_publications = affinity(offer_texts, author_publications, encoder=encoder, store=store).T
    has_profile = np.array([len(p) > 0 for p in author_publications], dtype=bool)
    by_publications = np.where(has_profile[:, None], by_publications, by_proposal)
    components = {"proposal": by_proposal, "publications": by_publications}
    total = sum(weights[name] * components[name] for name in components)
    return PairScores(
        total=np.asarray(total, dtype=np.float32), components=components, weights=dict(weights)
    )
