"""Cross-validated development-benchmark loss of `matching.affinity` and of every variant tried.

The workplace's expertise benchmark (`../shared/eval/goldstandard.py` and its data, outside this
repository and never copied into it) has 27 development researchers who rated their expertise on
3-10 papers each. Choosing the best of many variants on those same 27 researchers chose noise
(issue 16), so every variant here is judged on researchers it was not chosen on:

- A *family* is one idea with a small grid of settings (two or three; nine where two settings are
  crossed). In each of 100 repeated 2-fold splits of the researchers, the family's setting with
  the lowest loss on one half is scored on the other half, and the other way round. A researcher's
  held-out error is averaged over the repeats; the held-out loss is the rating-weighted share of
  wrongly ordered pairs, as in the harness. "vs mean" is the paired difference to the plain mean
  of the profile cosines (no setting to choose), on the same researchers; intervals are 95%
  bootstrap intervals over researchers (the harness's resamples). Leave-one-researcher-out is
  printed beside it.
- "dev" is the loss of the family's best setting on all 27 researchers (in-sample, optimistic).
- "the whole choice" picks among every setting of the candidate families in each training half:
  the held-out loss of the procedure that picks the product's default.

Lab variants (sentence and passage matching, BM25 over key phrases, recency, ...) are computed
here from the same cached vectors; only what wins on held-out folds moves into `matching`.

- "poolings": the default's family and the mean with each pooling of the product's encoder
  (`TANDEM_ENCODER_POOLING`), on the backend this run uses, on the same folds; `--poolings-only`
  prints that table alone (it embeds only the ~605 whole texts, once per pooling).

Embeddings are cached on disk (`TANDEM_DEVLOSS_CACHE`, default /tmp/tandem-devloss): a cold run
embeds about 7,000 texts, sentences and passages (about 6 minutes on two cores), a warm one
takes a minute or two.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devloss_cheap import cheap_families  # noqa: E402 - bench/, beside this script

from matching.affinity import affinity, aggregate_profiles  # noqa: E402
from matching.embeddings import (  # noqa: E402
    POOLINGS,
    Encoder,
    default_encoder,
    encoder_backend,
    make_encoder,
)
from matching.lexical import TfidfSimilarity  # noqa: E402

HARNESS = ROOT.parent / "shared" / "eval" / "goldstandard.py"
DATA_DIR = ROOT.parent / "shared" / "data" / "goldstandard-dev"
CACHE_DIR = Path(os.environ.get("TANDEM_DEVLOSS_CACHE", "/tmp/tandem-devloss"))
REPEATS = 100
DEFAULT_FAMILY = "soft maximum (log-sum-exp), temperature"
BOOTSTRAP = 1000


# ----------------------------------------------------------------------------- data and cache
def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("goldstandard", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["goldstandard"] = module
    spec.loader.exec_module(module)
    return module


class DiskStore:
    """An `EmbeddingStore` in one SQLite file outside the repository (vectors of dev texts)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors "
            "(model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))"
        )

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                [model_name, *chunk],
            )
            found.update((h, np.frombuffer(blob, dtype=np.float32)) for h, blob in rows)
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
            [(model_name, h, np.asarray(v, np.float32).tobytes()) for h, v in vectors.items()],
        )
        self.db.commit()


def sentences(text: str) -> list[str]:
    """The title, then each sentence of the abstract (texts are "title\\nabstract")."""
    title, _, abstract = text.partition("\n")
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(])", abstract)
    return [title] + [part.strip() for part in parts if part.strip()]


def windows(text: str, max_words: int = 80) -> list[str]:
    """Passages of whole sentences of at most about `max_words` words, each after the title."""
    title, *body = sentences(text)
    passages: list[list[str]] = []
    for sentence in body:
        if passages and sum(len(s.split()) for s in passages[-1]) + len(sentence.split()) <= (
            max_words
        ):
            passages[-1].append(sentence)
        else:
            passages.append([sentence])
    return [f"{title}\n{' '.join(p)}" for p in passages] or [title]


@dataclass
class Bench:
    """The dev data as the harness reads it, with every score matrix the variants need.

    Score matrices are (papers, profiles): profile column v * R + r is researcher r's profile in
    profile set v, as the harness lays them out.
    """

    gs: ModuleType
    encoder: Encoder
    store: DiskStore

    @cached_property
    def ds(self):  # noqa: ANN201 - the harness's Dataset
        return self.gs.load_dataset(str(DATA_DIR))

    @cached_property
    def pairs(self):  # noqa: ANN201 - the harness's PairTable
        return self.gs.build_pairs(self.ds)

    @property
    def n_researchers(self) -> int:
        return len(self.ds.reviewers)

    @cached_property
    def queries(self) -> list[str]:
        return [self.ds.paper_text[p] for p in self.ds.papers]

    @cached_property
    def profiles(self) -> list[list[str]]:
        return [self.ds.profiles[v][r] for v in self.ds.versions for r in self.ds.reviewers]

    @cached_property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.profiles]

    @cached_property
    def flat(self) -> list[str]:
        return [text for profile in self.profiles for text in profile]

    @cached_property
    def starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(list(texts), store=self.store)

    @cached_property
    def cosines(self) -> np.ndarray:
        """Whole-text cosines (papers, profile texts), as `matching.affinity` computes them."""
        return self.encode(self.queries) @ self.encode(self.flat).T

    def aggregate(self, similarities: np.ndarray, how: str, **options: float) -> np.ndarray:
        return aggregate_profiles(similarities, self.sizes, how, **options).astype(np.float64)  # type: ignore[arg-type]

    def product(self, **keywords: object) -> np.ndarray:
        """`matching.affinity` itself, with `keywords`: the function the product calls."""
        return affinity(
            self.queries, self.profiles, encoder=self.encoder, store=self.store, **keywords
        ).astype(np.float64)  # type: ignore[arg-type]

    @cached_property
    def years(self) -> np.ndarray:
        """Publication year of every profile text, in `flat` order (read from the archives)."""
        years: list[int] = []
        for version in self.ds.versions:
            for researcher in self.ds.reviewers:
                path = (
                    DATA_DIR / "evaluation_datasets" / version / "archives" / f"~{researcher}.jsonl"
                )
                if path.exists():
                    for line in path.read_text(encoding="utf-8").splitlines():
                        if line.strip():
                            years.append(int(json.loads(line)["content"].get("year") or 0))
        assert len(years) == len(self.flat)
        return np.asarray(years, dtype=np.float64)

    def errors(self, scores: np.ndarray) -> np.ndarray:
        """Each researcher's rating-weighted wrongly ordered pairs, mean over profile sets: (R,)."""
        per_set = []
        n = self.n_researchers
        for v in range(len(self.ds.versions)):
            column = v * n + self.pairs.rev
            wrong, _ = self.gs.per_reviewer_loss(
                self.pairs, scores[self.pairs.a, column], scores[self.pairs.b, column], n
            )
            per_set.append(wrong)
        return np.mean(per_set, axis=0)

    @cached_property
    def weights(self) -> np.ndarray:
        """Each researcher's total pair weight (the loss's denominator): (R,)."""
        _, total = self.gs.per_reviewer_loss(
            self.pairs,
            np.zeros(len(self.pairs.rev)),
            np.zeros(len(self.pairs.rev)),
            self.n_researchers,
        )
        return total


# ----------------------------------------------------------------------------- lab signals
def weighted_lse(
    bench: Bench, similarities: np.ndarray, text_weights: np.ndarray, t: float
) -> np.ndarray:
    """Soft maximum with a weight per profile text: t * log(sum w exp(s / t) / sum w)."""
    exp = np.exp((similarities - 1.0) / t) * text_weights
    numerator = np.add.reduceat(exp, bench.starts, axis=1)
    return 1.0 + t * np.log(numerator / np.add.reduceat(text_weights, bench.starts))


def sentence_level(bench: Bench) -> dict[str, np.ndarray]:
    """Matching at the level of sentences: each text's title and abstract sentences."""
    query_sentences = [sentences(q) for q in bench.queries]
    text_sentences = [sentences(t) for t in bench.flat]
    every = list(dict.fromkeys(s for group in query_sentences + text_sentences for s in group))
    vectors = bench.encode(every)
    position = {s: i for i, s in enumerate(every)}

    def rows(groups: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        index = np.array([position[s] for group in groups for s in group])
        return index, np.repeat(np.arange(len(groups)), [len(g) for g in groups])

    q_index, q_owner = rows(query_sentences)
    t_index, t_owner = rows(text_sentences)
    query_vectors = bench.encode(bench.queries)
    text_vectors = bench.encode(bench.flat)

    def pooled(index: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
        sums = np.zeros((n, vectors.shape[1]))
        np.add.at(sums, owner, vectors[index])
        return sums / np.linalg.norm(sums, axis=1, keepdims=True)

    out: dict[str, np.ndarray] = {}
    # (a) a text's vector is the normalised mean of its sentences' vectors
    pooled_cosines = (
        pooled(q_index, q_owner, len(bench.queries)) @ pooled(t_index, t_owner, len(bench.flat)).T
    )
    out["pooled"] = pooled_cosines
    # (b) the profile as a bag of sentences: the whole query against every profile sentence
    by_sentence = query_vectors @ vectors[t_index].T
    text_starts = np.concatenate(([0], np.cumsum([len(g) for g in text_sentences])[:-1]))
    out["best sentence"] = np.maximum.reduceat(by_sentence, text_starts, axis=1)
    profile_of_text = np.repeat(np.arange(len(bench.profiles)), bench.sizes)
    out["bag sizes"] = np.bincount(profile_of_text[t_owner], minlength=len(bench.profiles))
    out["bag"] = by_sentence
    # (c) coverage: each query sentence against the whole profile texts
    out["query sentences"] = vectors[q_index] @ text_vectors.T
    out["query owner"] = q_owner
    return out


def passage_level(bench: Bench, max_words: int = 80) -> np.ndarray:
    """Cosines of texts pooled from passages of ~`max_words` words (title + whole sentences),
    inside the 128 word pieces the model was trained on, instead of one truncated pass."""
    every = list(dict.fromkeys(bench.queries + bench.flat))
    passages = {text: windows(text, max_words) for text in every}
    unique = list(dict.fromkeys(p for text in every for p in passages[text]))
    vectors = bench.encode(unique)
    position = {p: i for i, p in enumerate(unique)}

    def pooled(texts: list[str]) -> np.ndarray:
        rows = np.stack([vectors[[position[p] for p in passages[t]]].mean(axis=0) for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return pooled(bench.queries) @ pooled(bench.flat).T


WORD = re.compile(r"[a-z][a-z0-9\-]*[a-z0-9]|[a-z]")


def key_phrases(text: str) -> list[list[str]]:
    """RAKE-style candidate key phrases: runs of words between stop words and punctuation."""
    phrases: list[list[str]] = []
    for clause in re.split(r"[.,;:!?()\[\]{}\"\n]|\s-\s", text.lower()):
        run: list[str] = []
        for word in WORD.findall(clause):
            if word in ENGLISH_STOP_WORDS or len(word) < 2:
                if run:
                    phrases.append(run)
                run = []
            else:
                run.append(word)
        if run:
            phrases.append(run)
    return phrases


def phrase_terms(text: str, kind: str) -> list[str]:
    """Terms of `text`: "words+bigrams" of its key phrases, "bigrams" only, or whole "phrases"."""
    phrases = key_phrases(text)
    bigrams = [f"{a} {b}" for p in phrases for a, b in zip(p, p[1:], strict=False)]
    if kind == "bigrams":
        return bigrams
    if kind == "phrases":
        return [" ".join(p) for p in phrases if len(p) > 1]
    return [w for p in phrases for w in p] + bigrams


def bm25_cosines(
    queries: list[str], texts: list[str], kind: str, k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """Cosine of BM25-weighted key-phrase vectors (IDF over the distinct texts of the call)."""
    every = list(dict.fromkeys(queries + texts))
    bags = {t: Counter(phrase_terms(t, kind)) for t in every}
    df = Counter(term for t in every for term in bags[t])
    vocabulary = {term: i for i, term in enumerate(df)}
    idf = {term: math.log(1 + (len(every) - n + 0.5) / (n + 0.5)) for term, n in df.items()}
    mean_length = max(np.mean([sum(bags[t].values()) for t in every]), 1.0)

    def vectors(group: list[str]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for i, text in enumerate(group):
            length = sum(bags[text].values())
            for term, f in bags[text].items():
                rows.append(i)
                cols.append(vocabulary[term])
                vals.append(
                    idf[term] * f * (k1 + 1) / (f + k1 * (1 - b + b * length / mean_length))
                )
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(group), len(vocabulary)))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix

    return (vectors(queries) @ vectors(texts).T).toarray()


# ----------------------------------------------------------------------------- variants
Scorer = Callable[[], np.ndarray]


@dataclass
class Family:
    """One idea and its grid of settings (label -> scorer), simplest first (ties pick it)."""

    name: str
    settings: dict[str, Scorer]
    candidate: bool = False  # among the product's choice ("the whole choice")


def families(bench: Bench) -> list[Family]:
    cos = lambda: bench.cosines  # noqa: E731
    agg = bench.aggregate
    lse = lambda s, t=0.2: agg(s, "lse", temperature=t)  # noqa: E731
    sent = cached(lambda: sentence_level(bench))
    passage = cached(lambda: passage_level(bench))
    bm25 = {
        k: cached(lambda k=k: bm25_cosines(bench.queries, bench.flat, k))
        for k in ("words+bigrams", "bigrams")
    }
    tf_only = cached(
        lambda: np.asarray(
            TfidfSimilarity(use_idf=False)
            .fit(list(dict.fromkeys(bench.queries + bench.flat)))
            .similarity(bench.queries, bench.flat)
        )
    )
    bm25_profile = cached(
        lambda: bm25_cosines(bench.queries, ["\n".join(p) for p in bench.profiles], "words+bigrams")
    )

    def coverage(t: float) -> np.ndarray:
        s = sent()
        per_sentence = agg(s["query sentences"], "lse", temperature=t)
        out = np.zeros((len(bench.queries), per_sentence.shape[1]))
        np.add.at(out, s["query owner"], per_sentence)
        return out / np.bincount(s["query owner"])[:, None]

    def bag(t: float) -> np.ndarray:
        s = sent()
        return aggregate_profiles(s["bag"], s["bag sizes"], "lse", temperature=t).astype(np.float64)

    def recency(tau: float) -> np.ndarray:
        newest = np.repeat(
            [
                max(bench.years[s : s + n], default=0)
                for s, n in zip(bench.starts, bench.sizes, strict=True)
            ],
            bench.sizes,
        )
        return weighted_lse(bench, bench.cosines, np.exp(-(newest - bench.years) / tau), 0.2)

    def density(t: float) -> np.ndarray:
        vectors = bench.encode(bench.flat)
        return np.concatenate(
            [
                np.exp(vectors[s : s + n] @ vectors[s : s + n].T / t).sum(axis=1)
                for s, n in zip(bench.starts, bench.sizes, strict=True)
            ]
        )

    def centred() -> np.ndarray:
        q, t = bench.encode(bench.queries), bench.encode(bench.flat)
        mean = np.vstack([q, bench.encode(list(dict.fromkeys(bench.flat)))]).mean(axis=0)
        q, t = q - mean, t - mean
        return (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
            t / np.linalg.norm(t, axis=1, keepdims=True)
        ).T

    def centrality() -> np.ndarray:
        texts = bench.encode(list(dict.fromkeys(bench.flat)))
        return (bench.encode(bench.queries) @ texts.T).mean(axis=1, keepdims=True)

    return [
        Family("mean of cosines (baseline)", {"mean": lambda: bench.product(how="mean")}, True),
        Family(
            "soft maximum (log-sum-exp), temperature",
            {
                f"t={t}": (lambda t=t: bench.product(how="lse", temperature=t))
                for t in (0.1, 0.2, 0.3)
            },
            True,
        ),
        Family("maximum", {"max": lambda: bench.product(how="max")}, True),
        Family(
            "mean of the top k cosines",
            {f"k={k}": (lambda k=k: bench.product(how="topk", k=k)) for k in (3, 5)},
            True,
        ),
        Family(
            "soft max t=0.2 alone (t chosen earlier on these researchers: optimistic)",
            {"t=0.2": lambda: bench.product()},
        ),
        Family(
            "soft max + TF-IDF max (existing option), temperature x weight",
            {
                f"t={t} w={w}": (
                    lambda t=t, w=w: bench.product(
                        temperature=t, lexical_weight=w, lexical_how="max"
                    )
                )
                for t in (0.1, 0.2, 0.3)
                for w in (0.1, 0.2, 0.3)
            },
        ),
        Family(
            "soft max t=0.2 + TF-IDF max (existing option), weight",
            {
                f"w={w}": (lambda w=w: bench.product(lexical_weight=w, lexical_how="max"))
                for w in (0.1, 0.2, 0.3)
            },
        ),
        Family(
            "soft max t=0.2 + term-frequency max without IDF (the product's lexical), weight",
            {
                f"w={w}": (lambda w=w: (1 - w) * lse(cos()) + w * agg(tf_only(), "max"))
                for w in (0.1, 0.2, 0.3)
            },
        ),
        *word_rarity_family(bench),
        Family(
            "sentences: text vector = mean of its sentences', soft max",
            {"t=0.2": lambda: lse(sent()["pooled"])},
        ),
        Family(
            "passages of <=80 words (+title), pooled, soft max",
            {f"t={t}": (lambda t=t: lse(passage(), t)) for t in (0.2, 0.3)},
        ),
        Family(
            "passages pooled, averaged with whole-text cosine, soft max",
            {"t=0.2": lambda: lse((passage() + cos()) / 2)},
        ),
        Family(
            "sentences: profile as a bag of sentences, soft max",
            {f"t={t}": (lambda t=t: bag(t)) for t in (0.1, 0.2)},
        ),
        Family(
            "sentences: query-sentence coverage (mean of soft max)",
            {f"t={t}": (lambda t=t: coverage(t)) for t in (0.1, 0.2)},
        ),
        Family(
            "sentences: whole cosine averaged with best profile sentence",
            {"t=0.2": lambda: lse((cos() + sent()["best sentence"]) / 2)},
        ),
        Family(
            "soft max t=0.2 + BM25 key phrases (words+bigrams) max, weight",
            {
                f"w={w}": (
                    lambda w=w: (1 - w) * lse(cos()) + w * agg(bm25["words+bigrams"](), "max")
                )
                for w in (0.1, 0.2, 0.3)
            },
        ),
        Family(
            "soft max t=0.2 + BM25 key-phrase bigrams max, weight",
            {
                f"w={w}": (lambda w=w: lse(cos()) + w * agg(bm25["bigrams"](), "max"))
                for w in (0.1, 0.2, 0.3)
            },
        ),
        Family(
            "soft max t=0.2 + BM25 key phrases, profile as one document, weight",
            {
                f"w={w}": (lambda w=w: (1 - w) * lse(cos()) + w * bm25_profile())
                for w in (0.1, 0.2, 0.3)
            },
        ),
        Family(
            "recency-weighted soft max, weight exp(-age / tau years)",
            {f"tau={tau}": (lambda tau=tau: recency(tau)) for tau in (2.0, 5.0)},
        ),
        Family(
            "facets: soft max weighting each text by 1 / its density in the profile",
            {
                f"t={t}": (lambda t=t: weighted_lse(bench, cos(), 1.0 / density(t), 0.2))
                for t in (0.1, 0.2)
            },
        ),
        Family(
            "core: soft max weighting each text by its density in the profile",
            {
                f"t={t}": (lambda t=t: weighted_lse(bench, cos(), density(t), 0.2))
                for t in (0.1, 0.2)
            },
        ),
        Family(
            "soft max t=0.2 + centrality prior (query's mean cosine to every profile text)",
            {f"b={b}": (lambda b=b: lse(cos()) + b * centrality()) for b in (0.25, 0.5)},
        ),
        Family("soft max of cosines of mean-centred vectors", {"t=0.2": lambda: lse(centred())}),
        *(Family(name, settings) for name, settings in cheap_families(bench, cached)),
    ]


def word_rarity_family(bench: Bench) -> list[Family]:
    """Soft max + a lexical cosine whose term weights are fixed (rarity in general English from
    the `wordfreq` package) instead of learnt from the corpus, so no score depends on other
    texts. Measured only where `wordfreq` is installed (it is not a dependency of the project)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    def similarities() -> np.ndarray:
        vectorizer = TfidfVectorizer(
            stop_words="english", sublinear_tf=True, use_idf=False, norm=None
        ).fit(list(dict.fromkeys(bench.queries + bench.flat)))
        rarity = [
            max(0.0, 8.0 - zipf_frequency(t, "en")) for t in vectorizer.get_feature_names_out()
        ]

        def rows(texts: list[str]) -> sparse.csr_matrix:
            return normalize(vectorizer.transform(texts) @ sparse.diags(rarity))

        return (rows(bench.queries) @ rows(bench.flat).T).toarray()

    lexical = cached(similarities)
    lse = bench.aggregate(bench.cosines, "lse", temperature=0.2)
    return [
        Family(
            "soft max t=0.2 + word-rarity-weighted lexical max (wordfreq), weight",
            {
                f"w={w}": (lambda w=w: (1 - w) * lse + w * bench.aggregate(lexical(), "max"))
                for w in (0.1, 0.2, 0.3)
            },
        )
    ]


def cached(make: Callable[[], object]) -> Callable[[], object]:
    box: list[object] = []

    def get() -> object:
        if not box:
            box.append(make())
        return box[0]

    return get


# ----------------------------------------------------------------------------- choice procedure
def held_out(
    errors: np.ndarray, weights: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated per-researcher error of choosing the lowest-loss setting on each training
    part: `errors` is (settings, R); returns (R,) held-out errors (mean over the splits where a
    researcher was held out) and how often each setting was chosen."""
    total = np.zeros(errors.shape[1])
    times = np.zeros(errors.shape[1])
    picks = np.zeros(errors.shape[0])
    for train, test in splits:
        best = int(np.argmin(errors[:, train].sum(axis=1) / weights[train].sum()))
        picks[best] += 1
        total[test] += errors[best, test]
        times[test] += 1
    return total / times, picks / picks.sum()


def two_fold_splits(n: int, repeats: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        order = rng.permutation(n)
        first, second = order[: n // 2], order[n // 2 :]
        splits += [(first, second), (second, first)]
    return splits


def leave_one_out(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.delete(np.arange(n), i), np.array([i])) for i in range(n)]


def interval(values: np.ndarray) -> str:
    low, high = np.percentile(values, [2.5, 97.5])
    return f"[{low:+.3f}; {high:+.3f}]"


@dataclass
class Judge:
    """Scores a family's choice procedure on held-out researchers against two references."""

    weights: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    loo: list[tuple[np.ndarray, np.ndarray]]
    counts: np.ndarray  # bootstrap resamples of the researchers (the harness's)
    baseline: np.ndarray  # the mean's per-researcher errors (nothing to choose)
    default: np.ndarray | None = None  # the default family's held-out per-researcher errors

    def report(self, name: str, labels: list[str], errors: np.ndarray) -> np.ndarray:
        weights, counts = self.weights, self.counts
        total = weights.sum()
        cv, picks = held_out(errors, weights, self.splits)
        cv_loo, _ = held_out(errors, weights, self.loo)
        low, high = np.percentile((counts @ cv) / (counts @ weights), [2.5, 97.5])
        versus_mean = (cv - self.baseline).sum() / total
        mean_ci = interval((counts @ (cv - self.baseline)) / (counts @ weights))
        if self.default is None or name == DEFAULT_FAMILY:
            versus_default = "(the default)"
        else:
            difference = (cv - self.default).sum() / total
            ci = interval((counts @ (cv - self.default)) / (counts @ weights))
            versus_default = f"{difference:+.3f} {ci}"
        chosen = ", ".join(
            f"{label} {share:.0%}"
            for label, share in zip(labels, picks, strict=True)
            if share >= 0.05
        )
        print(
            f"{name:<80} {(errors.sum(axis=1) / total).min():6.3f} {cv.sum() / total:8.3f} "
            f"{f'[{low:.3f}; {high:.3f}]':>15} {versus_mean:+8.3f} {mean_ci:>17} "
            f"{(cv_loo - self.baseline).sum() / total:+7.3f} {versus_default:>26}  {chosen}",
            flush=True,
        )
        return cv


TEMPERATURES = (0.1, 0.2, 0.3)


def pooling_section(bench: Bench, judge: Judge) -> None:
    """The mean baseline and the default's family (soft maximum, t chosen in the training half)
    with each pooling of the product's encoder, on this run's backend and the same folds.
    'vs mean' is against the same pooling's mean; 'vs default' against today's default (mean
    pooling, the default's family); a last line gives each family against the mean-pooled mean."""
    backend = bench.encoder.backend
    errors: dict[str, dict[str, np.ndarray]] = {}
    for pooling in POOLINGS:
        encoder = (
            bench.encoder
            if bench.encoder.pooling == pooling
            else make_encoder(backend=backend, pooling=pooling)
        )
        other = Bench(bench.gs, encoder, bench.store)
        other.__dict__.update(ds=bench.ds, pairs=bench.pairs)  # the same researchers and pairs
        errors[pooling] = {
            "mean": other.errors(other.product(how="mean"))[None],
            "lse": np.stack(
                [other.errors(other.product(how="lse", temperature=t)) for t in TEMPERATURES]
            ),
        }
    today, _ = held_out(errors["mean"]["lse"], judge.weights, judge.splits)
    print(
        f"\npoolings of the encoder on backend {backend} ({bench.encoder.backend_reason}); "
        "'vs mean': against the same pooling's mean; 'vs default': against the mean pooling's "
        "soft maximum family"
    )
    held: dict[tuple[str, str], np.ndarray] = {}
    for pooling in POOLINGS:
        pooled = replace(judge, baseline=errors[pooling]["mean"][0], default=today)
        held[pooling, "mean"] = pooled.report(
            f"pooling {pooling} ({backend}): mean of cosines (baseline)",
            ["mean"],
            errors[pooling]["mean"],
        )
        held[pooling, "lse"] = pooled.report(
            f"pooling {pooling} ({backend}): soft maximum, t in {{0.1, 0.2, 0.3}}",
            [f"t={t}" for t in TEMPERATURES],
            errors[pooling]["lse"],
        )
    total = judge.weights.sum()
    reference = errors["mean"]["mean"][0]
    for (pooling, family), cv in held.items():
        if (pooling, family) == ("mean", "mean"):
            continue
        ci = interval((judge.counts @ (cv - reference)) / (judge.counts @ judge.weights))
        print(
            f"  pooling {pooling}, {'soft maximum' if family == 'lse' else 'mean'}: held-out "
            f"{(cv - reference).sum() / total:+.3f} {ci} vs the mean-pooled mean of cosines"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="repeated 2-fold splits")
    parser.add_argument(
        "--poolings-only",
        action="store_true",
        help="only the default and the mean under each pooling (embeds whole texts only)",
    )
    arguments = parser.parse_args()
    repeats = arguments.repeats
    if not HARNESS.exists() or not DATA_DIR.exists():
        print(f"development benchmark: harness or data not found ({HARNESS}); nothing measured")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    gs = load_harness()
    bench = Bench(gs, default_encoder(), DiskStore(CACHE_DIR / "embeddings.sqlite"))
    n = bench.n_researchers

    result = gs.evaluate_matrix(bench.ds, bench.pairs, bench.product(), BOOTSTRAP, 0)
    backend, why = encoder_backend()
    print(
        f"development split: {n} researchers, {len(bench.ds.papers)} papers, "
        f"{len(bench.ds.versions)} profile sets; encoder backend {backend} ({why}), pooling "
        f"{bench.encoder.pooling} (vectors cached as {bench.encoder.model_name}; "
        f"TANDEM_ENCODER_BACKEND=torch gives the fp32 vectors bench/README.md reports)"
    )
    print(
        f"development-split loss of the default matching.affinity() (in-sample): "
        f"{result['loss']:.4f} 95% CI [{result['ci95'][0]:.3f}; {result['ci95'][1]:.3f}], "
        f"easy-pair accuracy {result['easy_acc']:.3f}, hard-pair accuracy {result['hard_acc']:.3f}"
    )
    judge = Judge(
        weights=bench.weights,
        splits=two_fold_splits(n, repeats),
        loo=leave_one_out(n),
        counts=gs.bootstrap_counts(n, BOOTSTRAP, 0),
        baseline=bench.errors(bench.product(how="mean")),
    )
    print(
        f"\nheld-out: settings chosen on one half, scored on the other, {repeats} repeated 2-fold "
        f"splits of the researchers; LOO: leave one researcher out; dev: best setting in-sample;"
        f"\nintervals: 95% bootstrap over researchers; 'vs mean' and 'vs default' are paired "
        f"differences of held-out loss (negative: better)"
    )
    print(
        f"{'family (settings)':<80} {'dev':>6} {'held-out':>8} {'95% CI':>15} {'vs mean':>8} "
        f"{'95% CI':>17} {'LOO':>7} {'vs default, 95% CI':>26}  chosen in training halves"
    )
    if arguments.poolings_only:
        pooling_section(bench, judge)
        print(f"\ntime {time.perf_counter() - started:.0f} s (embeddings cached in {CACHE_DIR})")
        return
    candidates: list[np.ndarray] = []
    labels: list[str] = []
    every_family = families(bench)
    errors_of = {
        family.name: np.stack([bench.errors(score()) for score in family.settings.values()])
        for family in every_family
    }
    judge.default, _ = held_out(errors_of[DEFAULT_FAMILY], judge.weights, judge.splits)
    for family in every_family:
        errors = errors_of[family.name]
        if family.candidate:
            candidates.append(errors)
            labels += [
                f"{family.name.split(' (')[0].split(',')[0]} {label}" for label in family.settings
            ]
        judge.report(family.name, list(family.settings), errors)
    everything = np.concatenate(candidates)
    print()
    judge.report(
        "the whole choice: every setting of the candidate aggregations (*)", labels, everything
    )
    chosen = labels[int(np.argmin(everything.sum(axis=1)))]
    print(f"(*) mean, soft maximum, maximum, top k; chosen on all {n} researchers: {chosen}")
    pooling_section(bench, judge)
    print(
        "families named 'soft max t=0.2 ...' keep t=0.2, which was chosen earlier on these same "
        "researchers:\ncompare them with 'soft max t=0.2 alone', whose 'vs default' is what that "
        "earlier choice alone is worth here"
    )
    print(f"\ntime {time.perf_counter() - started:.0f} s (embeddings cached in {CACHE_DIR})")


if __name__ == "__main__":
    main()
