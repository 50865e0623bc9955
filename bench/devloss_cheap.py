"""Cheap signals for `bench/devloss.py` (issue 16, second pass): each fits a recompute's budget.

The TF-IDF max blend had the lowest held-out loss of `bench/devloss.py`, but as a sparse
product per chunk it costs about twice the semantic part. Here the lexical side is made dense
and small, so that it becomes one more fp32 product like the embedding one:

- LSA: TF-IDF (the product's weighting: English stop words, sublinear term frequency) reduced
  by a truncated SVD to `k` dimensions, rows normalised; its cosine replaces the TF-IDF cosine.
  The IDF and the SVD are fitted either on every distinct text of the call (as the TF-IDF
  option does) or on the profile texts alone (the catalogue's publications, fitted at full
  recompute and kept, with queries only projected).
- "one product": the blend inside the cosine, `(1 - w) cos + w lexical_cos`, which is the cosine
  of the concatenated vectors `[sqrt(1 - w) e, sqrt(w) l]`: the soft maximum then runs once,
  over a product of 384 + k dimensions instead of 384 (no second aggregation pass).
- Hashing + random projection: the same TF-IDF hashed into 2^16 columns and projected onto `k`
  Gaussian directions (no vocabulary or SVD to fit; the IDF is the call's, the profile texts'
  or none). Its cosine is the TF-IDF cosine plus noise of about 1 / sqrt(k), so each is also
  measured with other random projections (seeds).
- TF-IDF with its IDF fitted on the profile texts alone (not the call's queries): whether the
  exact blend needs the query side of the IDF.
- Titles embedded separately: `affinity(title_weight=a)`, the existing option.
- Other poolings of the same forward pass (no extra model run, still 384 dimensions, so the
  scoring costs the same): max over tokens, the first token (CLS), and the normalised sums of
  the mean-pooled vector with either (an ensemble of two poolings). "mean" alone reproduces
  the default (a check of this code).

Each returns `(name, {label: scorer})`; `bench/_devloss_signals.py` turns them into families.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize

Scorer = Callable[[], np.ndarray]


def tfidf(fit_texts: list[str]) -> TfidfVectorizer:
    """The product's lexical weighting (`matching.lexical.TfidfSimilarity`), fitted."""
    return TfidfVectorizer(stop_words="english", sublinear_tf=True, dtype=np.float32).fit(fit_texts)


def lsa(fit_texts: list[str], texts: list[str], k: int) -> np.ndarray:
    """Unit LSA vectors of `texts`: TF-IDF and a `k`-dimensional truncated SVD, both fitted on
    `fit_texts`."""
    vectorizer = tfidf(fit_texts)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=0)
    svd.fit(vectorizer.transform(fit_texts))
    return normalize(svd.transform(vectorizer.transform(texts))).astype(np.float32)


def hashed_projection(
    texts: list[str],
    k: int,
    idf_texts: list[str] | None = None,
    use_idf: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Unit vectors of `texts`: hashed sublinear TF-IDF (IDF of `idf_texts`, default `texts`;
    none when not `use_idf`) times a fixed Gaussian `k`-column matrix."""
    hashing = HashingVectorizer(
        stop_words="english", alternate_sign=False, norm=None, n_features=2**16
    )

    def sublinear(group: list[str]):  # noqa: ANN202 - a sparse matrix
        counts = hashing.transform(group)
        counts.data = 1.0 + np.log(counts.data)
        return counts

    transformer = TfidfTransformer(use_idf=use_idf).fit(sublinear(idf_texts or texts))
    weighted = transformer.transform(sublinear(texts))
    directions = np.random.default_rng(seed).standard_normal((2**16, k)).astype(np.float32)
    return normalize(np.asarray(weighted @ directions)).astype(np.float32)


def poolings(texts: list[str], cache: Path) -> dict[str, np.ndarray]:
    """Unit vectors of `texts` from the same forward pass of the packaged model (fp32 torch),
    pooled three ways: "mean" (what the product uses), "max" over tokens and "cls" (the first
    token). Cached in `cache` (a .npz file named by the texts' hash)."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"poolings-{digest}.npz"
    if path.exists():
        with np.load(path) as stored:
            return dict(stored)
    from matching.embeddings import load_model

    model = load_model()
    out: dict[str, list[np.ndarray]] = {"mean": [], "max": [], "cls": []}
    for tokens in model.encode(texts, output_value="token_embeddings", batch_size=32):
        tokens = np.asarray(tokens, dtype=np.float32)
        out["mean"].append(tokens.mean(axis=0))
        out["max"].append(tokens.max(axis=0))
        out["cls"].append(tokens[0])
    vectors = {name: normalize(np.stack(rows)).astype(np.float32) for name, rows in out.items()}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **vectors)
    return vectors


def cheap_families(bench: Any, cached: Callable[[Scorer], Scorer]) -> list[tuple[str, dict]]:
    """The families of this module for `bench` (a `bench/_devloss_bench.py` Bench)."""
    queries, flat = bench.queries, bench.flat
    call = list(dict.fromkeys(queries + flat))
    catalogue = list(dict.fromkeys(flat))
    agg = bench.aggregate
    lse = cached(lambda: agg(bench.cosines, "lse", temperature=0.2))

    def lsa_cosines(fit_texts: list[str], k: int) -> np.ndarray:
        return lsa(fit_texts, queries, k) @ lsa(fit_texts, flat, k).T

    by_call = {k: cached(lambda k=k: lsa_cosines(call, k)) for k in (100, 300)}
    by_catalogue = cached(lambda: lsa_cosines(catalogue, 300))

    def hashed(
        k: int, idf_texts: list[str] | None = None, use_idf: bool = True, seed: int = 0
    ) -> np.ndarray:
        vectors = hashed_projection(call, k, idf_texts, use_idf, seed)
        position = {text: i for i, text in enumerate(call)}
        return vectors[[position[q] for q in queries]] @ vectors[[position[t] for t in flat]].T

    hashed_cosines = {k: cached(lambda k=k: hashed(k)) for k in (128, 256)}
    hashed_catalogue = cached(lambda: hashed(256, catalogue))
    hashed_tf = cached(lambda: hashed(256, use_idf=False))
    hashed_seeds = {seed: cached(lambda seed=seed: hashed(256, seed=seed)) for seed in (1, 2, 3)}

    def one_product(lexical: Scorer, w: float) -> np.ndarray:
        return agg((1 - w) * bench.cosines + w * lexical(), "lse")

    def call_tfidf() -> np.ndarray:
        vectorizer = tfidf(call)
        return (vectorizer.transform(queries) @ vectorizer.transform(flat).T).toarray()

    exact_call = cached(call_tfidf)

    def catalogue_tfidf() -> np.ndarray:
        vectorizer = tfidf(catalogue)
        return (vectorizer.transform(queries) @ vectorizer.transform(flat).T).toarray()

    exact_catalogue = cached(catalogue_tfidf)
    cache = Path(os.environ.get("TANDEM_DEVLOSS_CACHE", "/tmp/tandem-devloss"))
    pooled = cached(lambda: poolings(call, cache))

    def pooled_cosines(how: str) -> np.ndarray:
        vectors = pooled()
        if how == "mean+max":
            vectors = {how: normalize(vectors["mean"] + vectors["max"])}
        elif how == "mean+cls":
            vectors = {how: normalize(vectors["mean"] + vectors["cls"])}
        position = {text: i for i, text in enumerate(call)}
        rows = vectors[how]
        return rows[[position[q] for q in queries]] @ rows[[position[t] for t in flat]].T

    weights = (0.1, 0.2, 0.3)

    def blend_max(lexical: Scorer, w: float) -> np.ndarray:
        return (1 - w) * lse() + w * agg(lexical(), "max")

    return [
        (
            "soft max t=0.2 + LSA max (IDF and SVD of the call's texts), k x weight",
            {
                f"k={k} w={w}": (lambda k=k, w=w: blend_max(by_call[k], w))
                for k in (100, 300)
                for w in weights
            },
        ),
        (
            "soft max t=0.2 + LSA max, k=300, IDF and SVD of the profile texts only, weight",
            {f"w={w}": (lambda w=w: blend_max(by_catalogue, w)) for w in weights},
        ),
        (
            "soft max t=0.2 over (1-w) cos + w LSA cos (one product, k=300, call), weight",
            {
                f"w={w}": (lambda w=w: agg((1 - w) * bench.cosines + w * by_call[300](), "lse"))
                for w in weights
            },
        ),
        (
            "soft max t=0.2 + hashed TF-IDF x random projection (k dims) max, k x weight",
            {
                f"k={k} w={w}": (lambda k=k, w=w: blend_max(hashed_cosines[k], w))
                for k in (128, 256)
                for w in weights
            },
        ),
        (
            "soft max t=0.2 over (1-w) cos + w hashed-projection cos (one product, k=256), weight",
            {
                f"w={w}": (
                    lambda w=w: agg((1 - w) * bench.cosines + w * hashed_cosines[256](), "lse")
                )
                for w in weights
            },
        ),
        (
            "the same, k=128, weight",
            {f"w={w}": (lambda w=w: one_product(hashed_cosines[128], w)) for w in weights},
        ),
        *(
            (
                f"the same, k=256, another random projection (seed {seed}), weight",
                {f"w={w}": (lambda w=w, s=seed: one_product(hashed_seeds[s], w)) for w in weights},
            )
            for seed in (1, 2, 3)
        ),
        (
            "the same, k=256, IDF of the profile texts only, weight",
            {f"w={w}": (lambda w=w: one_product(hashed_catalogue, w)) for w in weights},
        ),
        (
            "the same, k=256, no IDF (hashed sublinear term frequency), weight",
            {f"w={w}": (lambda w=w: one_product(hashed_tf, w)) for w in weights},
        ),
        (
            "soft max t=0.2 over (1-w) cos + w TF-IDF cos (exact, call's IDF), weight",
            {
                f"w={w}": (lambda w=w: agg((1 - w) * bench.cosines + w * exact_call(), "lse"))
                for w in weights
            },
        ),
        (
            "soft max t=0.2 + TF-IDF max, IDF of the profile texts only, weight",
            {f"w={w}": (lambda w=w: blend_max(exact_catalogue, w)) for w in weights},
        ),
        *(
            (
                f"pooling of the same forward pass: {how} (384 dims, one product), soft max t=0.2",
                {"t=0.2": (lambda how=how: agg(pooled_cosines(how), "lse"))},
            )
            for how in ("mean", "max", "mean+max", "mean+cls")
        ),
        (
            "pooling mean+cls, soft max, temperature (chosen in-fold, as the default's family)",
            {
                f"t={t}": (lambda t=t: agg(pooled_cosines("mean+cls"), "lse", temperature=t))
                for t in (0.1, 0.2, 0.3)
            },
        ),
        (
            "titles embedded separately: (1-a) cos(texts) + a cos(titles), soft max t=0.2",
            {f"a={a}": (lambda a=a: bench.product(title_weight=a)) for a in (0.1, 0.2, 0.3)},
        ),
    ]
