"""Semantic affinity between texts and profiles (sets of texts).

A profile (an academic's publications, an offer's texts) is scored against a query by first
comparing the query with each of its texts, then aggregating those similarities. The default is
a soft maximum (log-sum-exp at temperature 0.2), between the plain mean, which dilutes one
closely related paper among many unrelated ones, and the maximum, which trusts that one paper
alone. On the expertise benchmark (`bench/devloss.py`, bench/README.md) it beats the mean on
researchers it was not chosen on, but by less than 27 development researchers can establish:
held-out loss 0.244 against 0.261, paired difference -0.017 (95% CI -0.048 to +0.011). Sentence
and passage matching, BM25 over key phrases, recency weighting and the other signals measured
there did not beat it on held-out researchers, so none is part of the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse

from matching.embeddings import EmbeddingStore, Encoder, default_encoder
from matching.lexical import TfidfSimilarity

Aggregate = Literal["lse", "mean", "max", "topk", "power"]

AGGREGATES: tuple[str, ...] = ("lse", "mean", "max", "topk", "power")
DEFAULT_AGGREGATE: Aggregate = "lse"
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_K = 3
DEFAULT_EXPONENT = 3.0


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


def _segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive row segments of `values` ((sum(counts), n) -> (len(counts), n)):
    one sparse 0/1 indicator product, which adds each segment's rows in order (several times
    faster than np.add.reduceat over rows or per-segment gathers)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    indicator = sparse.csr_matrix(
        (np.ones(len(owner), dtype=values.dtype), (owner, np.arange(len(owner)))),
        shape=(len(counts), len(owner)),
    )
    return np.asarray(indicator @ values)


def soft_maximum(
    text_vectors: np.ndarray,
    query_vectors: np.ndarray,
    profile_sizes: Sequence[int] | np.ndarray,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    scratch: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The default affinity ("lse" of `aggregate_profiles`) from vectors, profile-major.

    `text_vectors` (sum(profile_sizes), d) holds each profile's texts in consecutive rows,
    `query_vectors` is (n_queries, d); returns float32 (len(profile_sizes), n_queries), row i
    the soft maximum `temperature * log(mean(exp(cos / temperature)))` over profile i's texts
    (0.0 for an empty profile). Equal to `affinity(...).T` within float32 rounding (about
    1e-7): one fp32 product with 1/temperature folded into the texts' vectors, the exponential
    in place and a segment sum. Unit vectors' cosines over the temperature cannot overflow
    or underflow exp (the vectors' norms bound them), so no maximum is subtracted unless the
    values may leave [-80, 80] (then one shift for the block, or one per profile when they
    span more than 80).

    `scratch`, a 1-D float32 array of at least sum(profile_sizes) x n_queries elements, holds
    the similarities instead of a new array: a caller scoring block after block reuses one
    (a fresh block of tens of MB costs its page faults on every call). Its contents are
    overwritten. `out`, a float32 array of the result's shape, receives the result instead
    of a new array.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    sizes = np.asarray(profile_sizes, dtype=np.int64)
    shape_out = (len(sizes), query_vectors.shape[0])
    if out is not None and out.shape == shape_out and out.dtype == np.float32:
        result = out
        result[sizes == 0] = 0.0
    else:
        result = np.zeros(shape_out, dtype=np.float32)
    nonempty = np.flatnonzero(sizes > 0)
    if nonempty.size == 0 or query_vectors.shape[0] == 0:
        return result
    counts = sizes[nonempty]
    scaled = np.asarray(text_vectors, dtype=np.float32) * np.float32(1.0 / temperature)
    queries = np.asarray(query_vectors, dtype=np.float32).T
    shape = (scaled.shape[0], queries.shape[1])
    if scratch is not None and scratch.dtype == np.float32 and scratch.size >= shape[0] * shape[1]:
        values = np.matmul(scaled, queries, out=scratch[: shape[0] * shape[1]].reshape(shape))
    else:
        values = scaled @ queries
    shift: float | np.ndarray = np.float32(0.0)

    # |cos / temperature| <= |t| |q| / temperature: with unit vectors the values are known
    # to stay far inside exp's range without two more passes over them.
    def largest_norm(rows: np.ndarray) -> float:
        return float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max()))

    bound = largest_norm(scaled) * largest_norm(queries.T)
    top, bottom = (bound, -bound) if bound < 80.0 else (float(values.max()), float(values.min()))
    if top - bottom >= 80.0:
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        shift = np.maximum.reduceat(values, starts, axis=0)
        values -= np.repeat(shift, counts, axis=0)
    elif top > 80.0 or bottom < -80.0:
        shift = np.float32(top)
        values -= shift
    np.exp(values, out=values)
    # One text per profile: its row is its sum (1 * x + 0 is exact).
    sums = values if (counts == 1).all() else _segment_sums(values, counts)
    sums /= counts[:, None].astype(np.float32)
    np.log(sums, out=sums)
    sums += shift
    sums *= np.float32(temperature)
    result[nonempty] = sums
    return result
