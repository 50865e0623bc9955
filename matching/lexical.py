"""Lexical similarity (TF-IDF) and the key terms two texts share.

The semantic signal (`matching.affinity`) says *that* two texts are close; the terms they share
say *why* in words a person recognises, which is what explanations show. Both use the same
weighting: scikit-learn's TF-IDF with English stop words removed and sublinear term frequency,
rows L2-normalised so that a dot product is a cosine similarity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted


class TfidfSimilarity(BaseEstimator):
    """Cosine similarity of TF-IDF vectors, with the vocabulary and IDF learnt by `fit`.

    Follows scikit-learn's estimator contract: `__init__` only stores the parameters (those of
    `TfidfVectorizer`), `fit` returns `self`, and the fitted state is `vectorizer_` and
    `n_terms_`. A corpus without a single term (empty texts, only stop words) fits an empty
    vocabulary: every similarity is then 0.0, meaning no lexical evidence.
    """

    def __init__(
        self,
        *,
        stop_words: str | list[str] | None = "english",
        sublinear_tf: bool = True,
        lowercase: bool = True,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        use_idf: bool = True,
        token_pattern: str = r"(?u)\b\w\w+\b",
    ) -> None:
        self.stop_words = stop_words
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.use_idf = use_idf
        self.token_pattern = token_pattern

    def fit(self, texts: Sequence[str], y: None = None) -> TfidfSimilarity:
        """Learn the vocabulary and IDF weights from `texts` (any number, duplicates allowed)."""
        vectorizer = TfidfVectorizer(
            stop_words=self.stop_words,
            sublinear_tf=self.sublinear_tf,
            lowercase=self.lowercase,
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            max_df=self.max_df,
            use_idf=self.use_idf,
            token_pattern=self.token_pattern,
            dtype=np.float32,
        )
        analyse = vectorizer.build_analyzer()
        texts = list(texts)
        if any(analyse(text) for text in texts):
            # The rows of the fitted texts are kept: `transform` looks them up instead of
            # tokenising them again (equal to a fresh transform, bit for bit).
            rows = sparse.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
            rows.sort_indices()
            self.n_terms_ = len(vectorizer.vocabulary_)
        else:
            rows = sparse.csr_matrix((len(texts), 0), dtype=np.float32)
            self.n_terms_ = 0
        self.vectorizer_ = vectorizer
        self.fitted_rows_ = rows
        self.fitted_row_of_ = {text: i for i, text in reversed(list(enumerate(texts)))}
        return self

    def extend(self, texts: Sequence[str]) -> TfidfSimilarity:
        """Learn the terms of `texts` the vocabulary lacks (new columns after the others) and
        return `self`. Only for a model whose weights do not depend on the other texts (no
        IDF, no document-frequency limits): every text's row then equals, term for term, its
        row under a model fitted on all texts, so similarities agree within float32 rounding
        (the columns are in another order) and a long-lived model need not be refitted."""
        check_is_fitted(self, "vectorizer_")
        if self.use_idf or self.min_df != 1 or self.max_df != 1.0:
            raise ValueError("extend needs use_idf=False, min_df=1 and max_df=1.0")
        known = getattr(self, "fitted_row_of_", {})
        texts = [text for text in texts if text not in known]
        vocabulary: dict[str, int] = dict(self.vectorizer_.vocabulary_) if self.n_terms_ else {}
        analyse = self.vectorizer_.build_analyzer()
        size = len(vocabulary)
        for text in texts:
            for term in analyse(text):
                vocabulary.setdefault(term, len(vocabulary))
        if len(vocabulary) == size:
            return self
        vectorizer = TfidfVectorizer(
            stop_words=self.stop_words,
            sublinear_tf=self.sublinear_tf,
            lowercase=self.lowercase,
            ngram_range=self.ngram_range,
            use_idf=False,
            token_pattern=self.token_pattern,
            vocabulary=vocabulary,
            dtype=np.float32,
        ).fit(texts)  # a fixed vocabulary without IDF: nothing is learnt but the shape
        rows = self.fitted_rows_
        self.fitted_rows_ = sparse.csr_matrix(
            (rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], len(vocabulary))
        )
        self.vectorizer_ = vectorizer
        self.n_terms_ = len(vocabulary)
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows of `texts`: sparse float32 (len(texts), n_terms_), each of unit or zero norm.

        Terms outside the fitted vocabulary are ignored.
        """
        check_is_fitted(self, "vectorizer_")
        if self.n_terms_ == 0:
            return sparse.csr_matrix((len(texts), 0), dtype=np.float32)
        texts = list(texts)
        known = getattr(self, "fitted_row_of_", {})
        at = np.array([known.get(text, -1) for text in texts], dtype=np.int64)
        new = np.flatnonzero(at < 0)
        if new.size == 0:
            return self.fitted_rows_[at]
        fresh = sparse.csr_matrix(
            self.vectorizer_.transform([texts[i] for i in new]), dtype=np.float32
        )
        if new.size == len(texts):
            return fresh
        old = np.flatnonzero(at >= 0)
        order = np.empty(len(texts), dtype=np.int64)
        order[old] = np.arange(old.size)
        order[new] = old.size + np.arange(new.size)
        return sparse.vstack([self.fitted_rows_[at[old]], fresh], format="csr")[order]

    def get_feature_names_out(self) -> np.ndarray:
        """The fitted terms, in column order of `transform`: (n_terms_,) array of str."""
        check_is_fitted(self, "vectorizer_")
        if self.n_terms_ == 0:
            return np.array([], dtype=object)
        return self.vectorizer_.get_feature_names_out()

    def similarity(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each query to each text: float32 (len(queries), len(texts)).

        Values lie in [0, 1] (TF-IDF weights are non-negative); higher means more, and rarer,
        words in common. A text with no known term scores 0.0 against everything.
        """
        products = self.transform(queries) @ self.transform(texts).T
        return np.asarray(products.toarray(), dtype=np.float32)


class LexicalIndex:
    """`TfidfSimilarity.similarity(queries, texts)` for many batches of queries against the
    same `texts` (a recompute's offers): the texts' rows are prepared once and split by
    term, the terms most texts use into a dense (terms x texts) matrix multiplied by BLAS,
    the rest kept sparse. Common terms are what make the all-sparse product slow (each
    shared common term touches most texts); equal to `similarity` within float32 rounding.
    """

    def __init__(self, model: TfidfSimilarity, texts: Sequence[str], *, dense_terms: int = 256):
        rows = model.transform(texts)
        self.model = model
        self.n_texts = rows.shape[0]
        frequency = np.bincount(rows.indices, minlength=rows.shape[1])
        # Dense only where it pays: a term in at least 1 text in 32.
        common = np.argsort(-frequency, kind="stable")[: min(dense_terms, rows.shape[1])]
        common = common[frequency[common] * 32 >= max(self.n_texts, 1)]
        rare = np.setdiff1d(np.arange(rows.shape[1]), common)
        self.common, self.rare = common, rare
        self.common_rows = np.ascontiguousarray(rows[:, common].toarray().T)
        self.rare_rows = rows[:, rare].T.tocsr()
        self._buffers = threading.local()

    def similarity(self, queries: Sequence[str], *, out: np.ndarray | None = None) -> np.ndarray:
        """float32 (len(queries), len(texts)): each query's cosine to each text.

        `out`, a C-contiguous float32 array of that shape, receives the scores (a caller
        scoring block after block reuses one instead of faulting in a fresh one each time);
        the dense part then goes through a buffer this index keeps per thread."""
        rows = self.model.transform(queries)
        shape = (rows.shape[0], self.n_texts)
        rare = rows[:, self.rare] @ self.rare_rows
        if out is None or out.shape != shape or out.dtype != np.float32 or rare.dtype != np.float32:
            scores = rare.toarray()
            if self.common.size:
                scores += rows[:, self.common].toarray() @ self.common_rows
            return np.asarray(scores, dtype=np.float32)
        rare.toarray(out=out)
        if self.common.size:
            size = shape[0] * shape[1]
            buffer = getattr(self._buffers, "dense", None)
            if buffer is None or buffer.size < size:
                buffer = self._buffers.dense = np.empty(size, dtype=np.float32)
            common = buffer[:size].reshape(shape)
            np.matmul(rows[:, self.common].toarray(), self.common_rows, out=common)
            out += common
        return out


def shared_terms(
    text_a: str,
    text_b: str,
    *,
    top: int = 8,
    vectorizer: TfidfSimilarity | TfidfVectorizer | None = None,
) -> list[str]:
    """The `top` key terms that both texts contain, most important first.

    A term's importance is its contribution to the two texts' TF-IDF cosine similarity (the
    product of its weights in both), so frequent and rare-in-the-corpus terms come first; ties
    are broken alphabetically, so the result is deterministic. `vectorizer`, when given, is a
    fitted `TfidfSimilarity` or `TfidfVectorizer` whose vocabulary and IDF (from a larger
    corpus) are used; otherwise one is fitted on the two texts alone, which ranks shared terms
    by how often they occur. Stop words never appear (with the default settings). Returns
    fewer than `top` terms when the texts share fewer, and [] when they share none.
    """
    if top <= 0:
        return []
    if vectorizer is None:
        vectorizer = TfidfSimilarity().fit([text_a, text_b])
    if isinstance(vectorizer, TfidfSimilarity) and vectorizer.n_terms_ == 0:
        return []
    rows = sparse.csr_matrix(vectorizer.transform([text_a, text_b]))
    contribution = np.asarray(rows[0].multiply(rows[1]).toarray()).ravel()
    candidates = np.flatnonzero(contribution > 0)
    terms = vectorizer.get_feature_names_out()
    ranked = sorted(candidates, key=lambda column: (-contribution[column], terms[column]))
    return [str(terms[column]) for column in ranked[:top]]


# Words that every proposal and offer on the platform uses: they say nothing about why two
# texts fit, so explanations leave them out (scores are unaffected).
PLATFORM_STOP_WORDS: frozenset[str] = frozenset(
    """academic academics access ask available based build company compute data dataset datasets
    gpu gpus help hour hours include including industry lab labs large model models new offer
    open partner project projects proposal proposals provide research researchers results team
    use used using work working year years""".split()
)
# Words about the ask rather than the topic: quantities and time, the terms of a collaboration
# (publication, code, review) and generic modifiers. Two texts sharing "needed", "GB",
# "published" or "fine" tells a reader nothing about why they fit.
REQUEST_STOP_WORDS: frozenset[str] = frozenset(
    """need needed needs needing want wants wanted expect expected expects require requires
    required requirement requirements gb tb mb month months week weeks day days budget time
    publish published publishing publication publications paper papers preprint preprints
    openly jointly release released releases releasing share shared sharing code licence
    license licensed nda ip review reviewed reviews terms agreement outputs output findings
    multi mid single small long high real inside cover covers covering resulting built
    support supports supported run runs running fine tune tuned tuning plus make makes made
    hold holds request requests roughly aware owned confidential commercial publicly
    university universities""".split()
)
WORD_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"
# A term used by more than this share of all texts is common vocabulary on the platform, not a
# reason two texts fit (applied once the corpus has `COMMON_TERM_MIN_TEXTS` texts or more).
COMMON_TERM_SHARE = 0.2
COMMON_TERM_MIN_TEXTS = 20


def explanation_vectorizer(texts: Sequence[str]) -> TfidfSimilarity:
    """A TF-IDF model fitted on `texts` for naming shared terms: words only (no numbers),
    without English, platform and request stop words, and without the words that more than a
    fifth of the texts use, so the terms shown are the telling ones."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    texts = list(texts)
    stop_words = sorted(ENGLISH_STOP_WORDS | PLATFORM_STOP_WORDS | REQUEST_STOP_WORDS)
    common = COMMON_TERM_SHARE if len(texts) >= COMMON_TERM_MIN_TEXTS else 1.0
    terms = TfidfSimilarity(stop_words=stop_words, token_pattern=WORD_PATTERN, max_df=common)
    try:
        return terms.fit(texts)
    except ValueError:  # every term is common: name none rather than common ones
        return TfidfSimilarity(stop_words=stop_words, token_pattern=WORD_PATTERN).fit([])
