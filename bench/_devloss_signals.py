"""Lab signals and the families of variants for `bench/devloss.py`: sentence and passage
matching, BM25 over key phrases, recency, density and the rest, computed from the cached vectors
of a `Bench`; `families` lists every idea with its grid of settings.

Not a benchmark itself: `make bench` runs bench/*.py except files starting with `_`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _devloss_bench import Bench
from devloss_cheap import cheap_families
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from matching.affinity import aggregate_profiles
from matching.lexical import TfidfSimilarity


# ----------------------------------------------------------------------------- text units
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
