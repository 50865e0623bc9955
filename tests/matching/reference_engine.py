"""The FROZEN REFERENCE engine for the equality test (tests/matching/test_engine_equivalence.py).

A verbatim copy of `matching.engine.Matcher.block` and `.recommend` as they stood before the
engine was vectorised for issue 15 (main at c97d8d9), with the helpers they called, copied
verbatim too: `aggregate_profiles`, `_title` and `affinity` (matching/affinity.py),
`top_k_desc` (matching/recommend.py), `combine` (matching/scoring.py), `_overlaps` and
`check_eligibility` (matching/eligibility.py). Only imports were adjusted. Do not edit it to
follow the engine: it is what the engine's results must stay equal to. Plain data classes and
code this work did not touch (`Corpus`, facts, `Eligibility`, `resource_fit`, `TfidfSimilarity`,
weights) are imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Literal

import numpy as np
from scipy import sparse

from matching.eligibility import (
    PUBLICATION_RANK,
    Eligibility,
    OfferFacts,
    ProposalFacts,
    with_parent_domains,
)
from matching.embeddings import EmbeddingStore, Encoder, default_encoder
from matching.engine import Block, Corpus, Recommendations
from matching.fit import resource_fit
from matching.lexical import TfidfSimilarity
from matching.scoring import COMPONENTS, ScoreWeights

Aggregate = Literal["lse", "mean", "max", "topk", "power"]

AGGREGATES: tuple[str, ...] = ("lse", "mean", "max", "topk", "power")
DEFAULT_AGGREGATE: Aggregate = "lse"
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_K = 3
DEFAULT_EXPONENT = 3.0
DEFAULT_CHUNK_ROWS = 2048


def aggregate_profiles(
    similarities: np.ndarray,
    profile_sizes: Sequence[int],
    how: Aggregate = "mean",
    *,
    k: int = DEFAULT_TOP_K,
    temperature: float = DEFAULT_TEMPERATURE,
    exponent: float = DEFAULT_EXPONENT,
) -> np.ndarray:
    """Collapse per-text similarities into one score per profile.

    `similarities` is (n_queries, sum(profile_sizes)) with each profile's texts in consecutive
    columns; returns float32 (n_queries, len(profile_sizes)). An empty profile scores 0.0 (no
    evidence). For a profile of similarities s_1..s_n:
    - "mean": their mean; "max": their maximum;
    - "topk": the mean of the `k` largest (all of them when n <= k);
    - "lse": the soft maximum `temperature * log(mean(exp(s_i / temperature)))`, which moves
      from the mean (large temperature) to the maximum (temperature near 0); same units as s;
    - "power": the power mean `mean(max(s_i, 0) ** exponent) ** (1 / exponent)` (negative
      similarities count as 0).
    Every aggregate lies between the profile's minimum (0 for "power") and its maximum, so
    cosines stay in [-1, 1]. Vectorised over queries and profiles (no loop over either).
    """
    sizes = np.asarray(profile_sizes, dtype=np.int64)
    result = np.zeros((similarities.shape[0], len(sizes)), dtype=np.float32)
    nonempty = np.flatnonzero(sizes > 0)
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATES)}")
    if how == "topk" and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if how == "lse" and not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if how == "power" and not exponent > 0:
        raise ValueError(f"exponent must be positive, got {exponent}")
    if similarities.shape[0] == 0 or nonempty.size == 0:
        return result
    values = np.asarray(similarities, dtype=np.float64)
    counts = sizes[nonempty]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    owner = np.repeat(np.arange(nonempty.size), counts)
    if how == "max":
        aggregated = np.maximum.reduceat(values, starts, axis=1)
    elif how == "mean":
        aggregated = np.add.reduceat(values, starts, axis=1) / counts
    elif how == "lse":
        peak = np.maximum.reduceat(values, starts, axis=1)
        weights = np.exp((values - peak[:, owner]) / temperature)
        aggregated = peak + temperature * np.log(np.add.reduceat(weights, starts, axis=1) / counts)
    elif how == "topk":
        order = np.lexsort((-values, np.broadcast_to(owner, values.shape)), axis=1)
        ranked = np.take_along_axis(values, order, axis=1)
        rank_in_profile = np.arange(owner.size) - starts[owner]
        kept = np.where(rank_in_profile < k, ranked, 0.0)
        aggregated = np.add.reduceat(kept, starts, axis=1) / np.minimum(counts, k)
    else:
        powered = np.clip(values, 0.0, None) ** exponent
        aggregated = (np.add.reduceat(powered, starts, axis=1) / counts) ** (1.0 / exponent)
    result[:, nonempty] = aggregated
    return result


def _title(text: str) -> str:
    """The first line of a "title\\nabstract" text (the whole text when it has one line)."""
    return text.split("\n", 1)[0]


def affinity(
    queries: Sequence[str],
    profiles: Sequence[Sequence[str]],
    *,
    encoder: Encoder | None = None,
    store: EmbeddingStore | None = None,
    how: Aggregate = DEFAULT_AGGREGATE,
    k: int = DEFAULT_TOP_K,
    temperature: float = DEFAULT_TEMPERATURE,
    exponent: float = DEFAULT_EXPONENT,
    lexical_weight: float = 0.0,
    lexical_how: Aggregate | None = None,
    title_weight: float = 0.0,
) -> np.ndarray:
    """Affinity of each query text to each profile: float32 (len(queries), len(profiles)).

    A profile is a sequence of texts (an offer's texts, or an academic's publications). The
    query's cosine similarity to each text (production encoder unless one is given) is
    aggregated over the profile by `how` (see `aggregate_profiles`; `k`, `temperature` and
    `exponent` are its parameters). Values lie in [-1, 1]; higher means a better fit; an empty
    profile scores 0.0. For a one-text profile every aggregation is that text's cosine.

    Loss on the expertise benchmark (bench/README.md; lower is better, 0.5 is random), each
    family's setting chosen on half the development researchers and scored on the other half:
    "lse" 0.244 (in-sample at temperature 0.2, the default: 0.236); "topk" 0.257; "mean" 0.261;
    "max" 0.302.

    Options measured there and off by default:
    - `lexical_weight` w in [0, 1]: blend `(1 - w) * semantic + w * lexical`, where lexical is
      the TF-IDF cosine (`TfidfSimilarity`, fitted on the distinct texts of this call)
      aggregated by `lexical_how` (default: `how`, with the same parameters). With "max" it
      has the lowest held-out loss measured (0.236, temperature and weight chosen in the
      training half), 0.008 below the default, which is within noise (95% CI -0.023 to
      +0.007); its IDF makes a score depend on the other texts of the call, and it adds a
      TF-IDF pass over every publication to each recompute (about twice the semantic part);
    - `title_weight` a in [0, 1]: each text-to-text cosine becomes `(1 - a) * cos(full texts)
      + a * cos(titles)`, the title being a text's first line (texts are "title\\nabstract").
    """
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError(f"lexical_weight must lie in [0, 1], got {lexical_weight}")
    if not 0.0 <= title_weight <= 1.0:
        raise ValueError(f"title_weight must lie in [0, 1], got {title_weight}")
    encoder = encoder or default_encoder()
    queries = list(queries)
    flat = [text for profile in profiles for text in profile]
    sizes = [len(profile) for profile in profiles]
    options = {"k": k, "temperature": temperature, "exponent": exponent}
    similarities = encoder.encode(queries, store=store) @ encoder.encode(flat, store=store).T
    if title_weight > 0.0:
        query_titles = encoder.encode([_title(text) for text in queries], store=store)
        text_titles = encoder.encode([_title(text) for text in flat], store=store)
        similarities = (1.0 - title_weight) * similarities + title_weight * (
            query_titles @ text_titles.T
        )
    scores = aggregate_profiles(similarities, sizes, how, **options)
    if lexical_weight > 0.0:
        lexical = TfidfSimilarity().fit(list(dict.fromkeys(queries + flat)))
        lexical_scores = aggregate_profiles(
            lexical.similarity(queries, flat), sizes, lexical_how or how, **options
        )
        scores = (1.0 - lexical_weight) * scores + lexical_weight * lexical_scores
    return np.asarray(scores, dtype=np.float32)


def top_k_desc(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest finite `values` with their `ids`, best first, ties by lower id;
    padded with (-inf, -1). Both inputs are (rows, n)."""
    order = np.lexsort((ids, -values), axis=1)[:, :k]
    best_values = np.take_along_axis(values, order, axis=1)
    best_ids = np.take_along_axis(ids, order, axis=1)
    best_ids = np.where(np.isfinite(best_values), best_ids, -1)
    best_values = np.where(best_ids >= 0, best_values, -np.inf)
    if best_ids.shape[1] < k:
        pad = k - best_ids.shape[1]
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1)
        best_values = np.pad(best_values, ((0, 0), (0, pad)), constant_values=-np.inf)
    return best_values, best_ids


def combine(components: Mapping[str, np.ndarray], weights: ScoreWeights) -> np.ndarray:
    """Weighted total of the components (each (P, O)); returns a float32 (P, O) array."""
    shares = weights.normalised()
    first = next(iter(components.values()))
    total = np.zeros(np.shape(first), dtype=np.float32)
    for name in COMPONENTS:
        if shares[name]:
            total += np.float32(shares[name]) * np.asarray(components[name], dtype=np.float32)
    return total


def _overlaps(left: Sequence[frozenset[str]], right: Sequence[frozenset[str]]) -> np.ndarray:
    """(len(left), len(right)) bool: do the two token sets share any token? One sparse
    product, so the cost grows with the number of tokens, not with a Python loop over pairs."""
    vocabulary: dict[str, int] = {}
    for tokens in (*left, *right):
        for token in tokens:
            vocabulary.setdefault(token, len(vocabulary))

    def incidence(sets: Sequence[frozenset[str]]) -> sparse.csr_matrix:
        rows = [i for i, tokens in enumerate(sets) for _ in tokens]
        cols = [vocabulary[token] for tokens in sets for token in tokens]
        values = np.ones(len(rows), dtype=np.int32)
        return sparse.csr_matrix((values, (rows, cols)), shape=(len(sets), max(1, len(vocabulary))))

    return (incidence(left) @ incidence(right).T).toarray() > 0


def check_eligibility(
    proposals: ProposalFacts, offers: OfferFacts, *, today: date | None = None
) -> Eligibility:
    """Evaluate every hard constraint for every (proposal, offer) pair, vectorised.

    Returns an `Eligibility` whose `mask` (P, O) is True exactly for the eligible pairs.
    """
    today = today or date.today()
    shape = (len(proposals), len(offers))
    ones = np.ones(shape, dtype=bool)
    prop, off = proposals, offers

    author = [with_parent_domains(tokens) for tokens in prop.identities]
    # The pair is "about compute" when the proposal needs GPU hours and the offer gives them.
    compute_pair = prop.needs_compute[:, None] & off.has_compute[None, :]
    data_pair = prop.needs_data[:, None] & off.has_data[None, :]
    needs_anything = (prop.needs_compute | prop.needs_data)[:, None]

    expired = (
        np.array([d is not None and d < today for d in off.deadline], dtype=bool) | ~off.is_open
    )
    mem_need = prop.gpu_memory_min_gb[:, None]
    mem_have = off.gpu_memory_gb[None, :]
    memory_known = ~np.isnan(mem_need) & ~np.isnan(mem_have)
    tier_known = (prop.gpu_tier[:, None] > 0) & (off.gpu_tier[None, :] > 0)
    full = (off.projects_left <= 0)[None, :] | (
        compute_pair & (prop.gpu_hours_needed[:, None] > off.hours_left[None, :])
    )

    failures = {
        "offer_open": np.broadcast_to(expired[None, :], shape).copy(),
        "provides_need": needs_anything & ~(compute_pair | data_pair),
        "publication_terms": prop.requires_open_publication[:, None]
        & (off.publication_rank[None, :] == PUBLICATION_RANK["not_allowed"]),
        "code_release": prop.requires_open_source[:, None] & ~off.code_release_allowed[None, :],
        "ip_terms": off.ip_rank[None, :] > prop.max_ip_rank[:, None],
        "hours_per_project": compute_pair
        & (prop.gpu_hours_needed[:, None] > off.max_hours_per_project[None, :]),
        "gpu_memory": compute_pair & memory_known & (mem_need > np.nan_to_num(mem_have)),
        "gpu_type": compute_pair & tier_known & (prop.gpu_tier[:, None] > off.gpu_tier[None, :]),
        "capacity_left": full,
        "same_organisation": _overlaps(author, off.identities),
        "excluded_by_offer": _overlaps(author, off.excluded),
        "excluded_by_proposal": _overlaps(
            prop.excluded, [with_parent_domains(t) for t in off.identities]
        ),
    }
    applies = {
        "offer_open": ones,
        "provides_need": np.broadcast_to(needs_anything, shape),
        "publication_terms": np.broadcast_to(prop.requires_open_publication[:, None], shape),
        "code_release": np.broadcast_to(prop.requires_open_source[:, None], shape),
        "ip_terms": ones,
        "hours_per_project": compute_pair,
        "gpu_memory": compute_pair & memory_known,
        "gpu_type": compute_pair & tier_known,
        "capacity_left": ones,
        "same_organisation": ones,
        "excluded_by_offer": ones,
        "excluded_by_proposal": ones,
    }
    return Eligibility(prop, off, failures, applies, today)


class ReferenceMatcher:
    """`Matcher` as it was (scoring and streaming only; no `explain`)."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        weights: ScoreWeights | None = None,
        lexical: TfidfSimilarity | None = None,
        terms: TfidfSimilarity | None = None,
        store: EmbeddingStore | None = None,
        today: date | None = None,
    ) -> None:
        self.encoder = encoder
        self.weights = weights or ScoreWeights()
        self.lexical = lexical
        self.terms = terms or lexical
        self.store = store
        self.today = today or date.today()

    def block(self, corpus: Corpus, rows: np.ndarray, columns: np.ndarray | None = None) -> Block:
        """Score proposals `rows` against offers `columns` (default: all offers)."""
        rows = np.asarray(rows, dtype=np.int64)
        columns = (
            np.arange(corpus.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
        )
        proposal_texts = [corpus.proposal_texts[i] for i in rows]
        offer_texts = [corpus.offer_texts[j] for j in columns]
        publications = [corpus.author_publications[i] for i in rows]

        proposal_vectors = self.encoder.encode(proposal_texts, store=self.store)
        offer_vectors = self.encoder.encode(offer_texts, store=self.store)
        by_proposal = proposal_vectors @ offer_vectors.T
        by_publications = affinity(
            offer_texts, publications, encoder=self.encoder, store=self.store
        ).T
        has_profile = np.array([len(p) > 0 for p in publications], dtype=bool)
        by_publications = np.where(has_profile[:, None], by_publications, by_proposal)
        if self.lexical is not None and self.weights.lexical > 0 and len(rows) and len(columns):
            lexical = np.asarray(self.lexical.similarity(proposal_texts, offer_texts))
        else:
            lexical = np.zeros_like(by_proposal)
        fit = resource_fit(corpus.fit.take(rows, columns), today=self.today)
        components = {
            "proposal": by_proposal.astype(np.float32),
            "publications": by_publications.astype(np.float32),
            "lexical": lexical.astype(np.float32),
            "fit": fit.fit,
        }
        eligibility = check_eligibility(
            corpus.proposals.take(rows), corpus.offers.take(columns), today=self.today
        )
        return Block(
            rows=rows,
            columns=columns,
            components=components,
            total=combine(components, self.weights),
            eligibility=eligibility,
            fit_parts=fit.parts,
            fit_applies=fit.applies,
        )

    def recommend(
        self,
        corpus: Corpus,
        k: int,
        *,
        rows: np.ndarray | None = None,
        columns: np.ndarray | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> Recommendations:
        """Top-k eligible offers per proposal and proposals per offer, among proposals `rows`
        and offers `columns` (corpus indices; default all), streaming over chunks of
        `chunk_rows` proposals: peak memory is O(chunk_rows * len(columns)) scores.

        A full recompute uses the defaults; an incremental refresh asks for a few rows (all
        offers) or a few columns (all proposals)."""
        n_proposals, n_offers = corpus.shape
        rows = np.arange(n_proposals) if rows is None else np.asarray(rows, dtype=np.int64)
        columns = np.arange(n_offers) if columns is None else np.asarray(columns, dtype=np.int64)
        by_proposal = np.full((len(rows), max(k, 0)), -1, dtype=np.int64)
        column_values = np.full((len(columns), max(k, 0)), -np.inf, dtype=np.float32)
        column_ids = np.full((len(columns), max(k, 0)), -1, dtype=np.int64)
        position = {int(c): j for j, c in enumerate(columns)} if corpus.set_aside else {}
        if len(columns) and k > 0:
            for start in range(0, len(rows), chunk_rows):
                chunk = rows[start : start + chunk_rows]
                scores = self.block(corpus, chunk, columns).masked()
                for i, p in enumerate(chunk):
                    for o in corpus.set_aside.get(int(p), ()):
                        if o in position:
                            scores[i, position[o]] = -np.inf
                _, by_proposal[start : start + len(chunk)] = top_k_desc(
                    scores, np.broadcast_to(columns, scores.shape), k
                )
                merged_values = np.concatenate([column_values, scores.T], axis=1)
                merged_ids = np.concatenate(
                    [column_ids, np.broadcast_to(chunk, (len(columns), len(chunk)))], axis=1
                )
                merged_ids = np.where(
                    np.isfinite(merged_values), merged_ids, np.iinfo(np.int64).max
                )
                column_values, column_ids = top_k_desc(merged_values, merged_ids, k)
        return Recommendations(by_proposal, column_ids, rows, columns)
