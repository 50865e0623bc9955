"""Matching: embeddings, affinity, eligibility, fit, scoring, recommendation and allocation.

Pure computation over strings and numpy arrays; never imports Flask, `app` or `models`.
"""

from matching.affinity import AGGREGATES, DEFAULT_AGGREGATE, affinity, aggregate_profiles
from matching.allocation import Allocation, Utilisation, allocate, utilisation
from matching.eligibility import (
    CONSTRAINTS,
    Check,
    Eligibility,
    OfferFacts,
    ProposalFacts,
    check_eligibility,
)
from matching.embeddings import (
    EmbeddingStore,
    Encoder,
    content_hash,
    default_encoder,
    load_model,
    resolve_model,
)
from matching.engine import Corpus, Explanation, Matcher, Recommendations
from matching.fit import FitInputs, resource_fit
from matching.lexical import TfidfSimilarity, shared_terms
from matching.recommend import top_k
from matching.scoring import COMPONENTS, ScoreWeights, combine, strength
from matching.stand_in import StandInEncoder

__all__ = [
    "AGGREGATES",
    "Allocation",
    "Utilisation",
    "allocate",
    "utilisation",
    "COMPONENTS",
    "CONSTRAINTS",
    "DEFAULT_AGGREGATE",
    "Check",
    "Corpus",
    "Eligibility",
    "EmbeddingStore",
    "Encoder",
    "Explanation",
    "FitInputs",
    "Matcher",
    "OfferFacts",
    "ProposalFacts",
    "Recommendations",
    "ScoreWeights",
    "StandInEncoder",
    "TfidfSimilarity",
    "affinity",
    "aggregate_profiles",
    "check_eligibility",
    "combine",
    "content_hash",
    "default_encoder",
    "load_model",
    "resolve_model",
    "resource_fit",
    "shared_terms",
    "strength",
    "top_k",
]
