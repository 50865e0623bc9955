"""The matching engine: scores, eligibility, recommendations and explanations.

An encoder turns texts into vectors, `Matcher.block` scores a block of (proposals x offers)
with every component and constraint, `Matcher.recommend` streams over proposal chunks to keep
each proposal's k best eligible offers and each offer's k best eligible proposals with bounded
memory (each chunk scored by `BlockScorer`, which prepares everything about the offers once and
gives `block`'s scores within float32 rounding), and `Matcher.explain` says why one pair scores
as it does.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from matching.affinity import affinity, soft_maximum
from matching.eligibility import (
    Check,
    Eligibility,
    EligibilityIndex,
    OfferFacts,
    ProposalFacts,
    check_eligibility,
)
from matching.embeddings import EmbeddingStore, Encoder
from matching.fit import FitInputs, resource_fit
from matching.lexical import LexicalIndex, TfidfSimilarity, shared_terms
from matching.recommend import merge_top_k, top_k_rows
from matching.scoring import (
    COMPONENT_LABELS,
    COMPONENTS,
    FitIndex,
    OfferAdjustment,
    ScoreWeights,
    combine,
)

_Result = TypeVar("_Result")

DEFAULT_CHUNK_ROWS = 2048
# The most publication-by-offer scores one block holds (float32: 64 MiB), which sets the
# default number of proposals per block of a recompute.
CHUNK_ELEMENTS = 2**24
# The fewest proposals per block worth a thread of their own.
MIN_THREAD_ROWS = 256
# Proposals x offers per tile when the components are added up (256 KiB of float32: fewer
# calls than 128 KiB, still well inside the 1 MiB L2 per core of this host).
TILE_ELEMENTS = 2**16


@dataclass(frozen=True)
class Corpus:
    """Everything the engine knows about P proposals and O offers (plain values only).

    `author_publications[p]` holds the texts of the publications of proposal p's author.
    `set_aside[p]` holds the offers (indices) proposal p must never be recommended again,
    because one side dismissed the pair; the next-best eligible offer takes its place.
    `offer_groups[o]` is offer o's company (its organisation), which a learned adjustment
    (`OfferAdjustment`) reads; empty when unknown.
    """

    proposal_texts: Sequence[str]
    offer_texts: Sequence[str]
    author_publications: Sequence[Sequence[str]]
    publication_titles: Sequence[Sequence[str]]
    proposals: ProposalFacts
    offers: OfferFacts
    fit: FitInputs
    set_aside: Mapping[int, Sequence[int]] = field(default_factory=dict)
    offer_groups: Sequence[Any] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.proposal_texts), len(self.offer_texts)


@dataclass(frozen=True)
class Block:
    """Scores of proposals `rows` x offers `columns`: every array is (len(rows), len(columns)).

    `total` is the weighted score (higher is better); `eligible` the hard-constraint mask.
    """

    rows: np.ndarray
    columns: np.ndarray
    components: dict[str, np.ndarray]
    total: np.ndarray
    eligibility: Eligibility
    fit_parts: dict[str, np.ndarray]
    fit_applies: dict[str, np.ndarray]

    @property
    def eligible(self) -> np.ndarray:
        return self.eligibility.mask

    def masked(self) -> np.ndarray:
        """`total` with ineligible pairs at -inf (never selected)."""
        return np.where(self.eligible, self.total, -np.inf).astype(np.float32)


@dataclass(frozen=True)
class Recommendations:
    """The k best eligible offers of proposals `rows` and proposals of offers `columns`.

    `offers_for_proposal` is (len(rows), k) and `proposals_for_offer` (len(columns), k), both
    of corpus indices, best first, -1 padded; row i is proposal `rows[i]`, row j of
    `proposals_for_offer` is offer `columns[j]`.
    """

    offers_for_proposal: np.ndarray
    proposals_for_offer: np.ndarray
    rows: np.ndarray
    columns: np.ndarray

    def best_offers(self) -> dict[int, list[int]]:
        """Proposal -> its recommended offers, best first (corpus indices)."""
        return {
            int(p): [int(o) for o in best if o >= 0]
            for p, best in zip(self.rows, self.offers_for_proposal, strict=True)
        }

    def best_proposals(self) -> dict[int, list[int]]:
        """Offer -> its recommended proposals, best first (corpus indices)."""
        return {
            int(o): [int(p) for p in best if p >= 0]
            for o, best in zip(self.columns, self.proposals_for_offer, strict=True)
        }

    def ranks(self) -> dict[tuple[int, int], tuple[int | None, int | None]]:
        """Every recommended pair (p, o) -> (its rank among p's offers, among o's proposals),
        1-based, None where the pair is not in that top-k."""
        result: dict[tuple[int, int], tuple[int | None, int | None]] = {}
        for p, offers in self.best_offers().items():
            for rank, o in enumerate(offers, start=1):
                result[(p, o)] = (rank, None)
        for o, proposals in self.best_proposals().items():
            for rank, p in enumerate(proposals, start=1):
                result[(p, o)] = (result.get((p, o), (None, None))[0], rank)
        return result


@dataclass(frozen=True)
class Explanation:
    """Why one pair scores as it does."""

    score: float
    eligible: bool
    components: dict[str, float]
    weights: dict[str, float]
    fit_parts: dict[str, float]
    shared_terms: list[str]
    best_publications: list[tuple[str, float]]
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "eligible": self.eligible,
            "components": {k: round(v, 4) for k, v in self.components.items()},
            "component_labels": {k: COMPONENT_LABELS[k] for k in self.components},
            "weights": {k: round(v, 4) for k, v in self.weights.items()},
            "fit_parts": {k: round(v, 4) for k, v in self.fit_parts.items()},
            "shared_terms": self.shared_terms,
            "best_publications": [
                {"title": title, "similarity": round(score, 4)}
                for title, score in self.best_publications
            ],
            "checks": [
                {"name": c.name, "label": c.label, "passed": c.passed, "reason": c.reason}
                for c in self.checks
            ],
        }


class Matcher:
    """Scores proposals against offers with one encoder, lexical model and set of weights,
    plus an optional learned per-company adjustment (default: the weights' own
    `adjustment`, which adopted learned weights carry; None scores by the weights alone)."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        weights: ScoreWeights | None = None,
        lexical: TfidfSimilarity | None = None,
        terms: TfidfSimilarity | None = None,
        store: EmbeddingStore | None = None,
        today: date | None = None,
        adjustment: OfferAdjustment | None = None,
    ) -> None:
        self.encoder = encoder
        self.weights = weights or ScoreWeights()
        self.adjustment = adjustment or getattr(self.weights, "adjustment", None)
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
            total=combine(components, self.weights, self.adjustment_columns(corpus, columns)),
            eligibility=eligibility,
            fit_parts=fit.parts,
            fit_applies=fit.applies,
        )

    def adjustment_columns(
        self, corpus: Corpus, columns: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The adjustment's (O, C) deviations and (O,) biases for offers `columns`, or None."""
        if self.adjustment is None:
            return None
        groups = corpus.offer_groups
        known = [groups[j] for j in columns] if len(groups) else []
        return self.adjustment.columns(known, len(columns))

    def recommend(
        self,
        corpus: Corpus,
        k: int,
        *,
        rows: np.ndarray | None = None,
        columns: np.ndarray | None = None,
        chunk_rows: int | None = None,
        workers: int | None = None,
    ) -> Recommendations:
        """Top-k eligible offers per proposal and proposals per offer, among proposals `rows`
        and offers `columns` (corpus indices; default all), streaming over chunks of
        `chunk_rows` proposals (default: as many as keep the block's publication scores
        within `CHUNK_ELEMENTS` floats): peak memory is O(chunk_rows * len(columns)) scores
        plus O(k * (len(rows) + len(columns))) for the result.

        The scores are those of `block` (equal within float32 rounding), computed by
        `BlockScorer` with everything about the offers prepared once. A full recompute uses
        the defaults; an incremental refresh asks for a few rows (all offers) or a few
        columns (all proposals).

        With more than one block, `workers` threads (default: the CPUs this process may use)
        score blocks side by side, each with single-threaded BLAS (see `_in_order`); the
        blocks are merged in order, so the result does not depend on `workers`. The default
        blocks are then `workers` times smaller, so that the buffers of all threads together
        (each thread's publication scores and components, up to `workers + 2` blocks of
        totals) take about what one thread's would."""
        n_proposals, n_offers = corpus.shape
        rows = np.arange(n_proposals) if rows is None else np.asarray(rows, dtype=np.int64)
        columns = np.arange(n_offers) if columns is None else np.asarray(columns, dtype=np.int64)
        width = max(k, 0)
        by_proposal = np.full((len(rows), width), -1, dtype=np.int64)
        column_values = np.full((len(columns), width), -np.inf, dtype=np.float32)
        column_ids = np.full((len(columns), width), -1, dtype=np.int64)
        if not (len(columns) and len(rows) and k > 0):
            return Recommendations(by_proposal, column_ids, rows, columns)
        # Ascending ids, so that ties (broken by the lower id) follow positions and a later
        # chunk's proposal never wins a tie against an earlier one.
        row_order = np.argsort(rows, kind="stable")
        column_order = np.argsort(columns, kind="stable")
        scorer = BlockScorer(self, corpus, rows[row_order], columns[column_order])
        workers = workers or available_cpus()
        threads = min(workers, len(rows))
        chunk = chunk_rows or scorer.default_chunk_rows(threads)
        if chunk_rows is None and threads > 1:
            # Enough blocks for every worker (a 2,000-proposal corpus is otherwise one block).
            chunk = min(chunk, max(MIN_THREAD_ROWS, -(-len(rows) // threads)))
        blocks = [
            np.arange(start, min(start + chunk, len(rows))) for start in range(0, len(rows), chunk)
        ]

        # Each block's scores go into a buffer that returns here once merged (at most
        # workers + 2 exist), instead of a fresh block of tens of MB and its page faults.
        free: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()

        def score(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            try:
                buffer = free.get_nowait()
            except queue.Empty:
                buffer = np.empty((chunk, len(columns)), dtype=np.float32)
            scores = scorer.scores(positions, out=buffer[: len(positions)])
            return buffer, scores, top_k_rows(scores, k)[1]

        for positions, (buffer, scores, best) in zip(
            blocks, _in_order(score, blocks, workers), strict=True
        ):
            by_proposal[row_order[positions]] = np.where(
                best >= 0, scorer.columns[np.maximum(best, 0)], -1
            )
            merge_top_k(column_values, column_ids, scores, scorer.rows[positions], k)
            free.put(buffer)
        proposals_for_offer = np.empty_like(column_ids)
        proposals_for_offer[column_order] = column_ids
        return Recommendations(by_proposal, proposals_for_offer, rows, columns)

    def explain(self, corpus: Corpus, p: int, offers: Sequence[int]) -> list[Explanation]:
        """Why proposal p scores as it does against each of `offers`: score, components, fit
        parts, every constraint passed or failed, shared key terms, best-fitting publications."""
        columns = np.asarray(offers, dtype=np.int64)
        block = self.block(corpus, np.array([p]), columns)
        publications = list(corpus.author_publications[p])
        titles = corpus.publication_titles[p]
        by_publication = (
            affinity(
                [corpus.offer_texts[o] for o in columns],
                [[text] for text in publications],
                encoder=self.encoder,
                store=self.store,
            )
            if publications
            else np.zeros((len(columns), 0), dtype=np.float32)
        )
        explanations = []
        for j, o in enumerate(columns):
            order = np.argsort(-by_publication[j], kind="stable")[:3]
            explanations.append(
                Explanation(
                    score=float(block.total[0, j]),
                    eligible=bool(block.eligible[0, j]),
                    components={name: float(block.components[name][0, j]) for name in COMPONENTS},
                    weights=self.weights.normalised(),
                    fit_parts={
                        name: float(part[0, j])
                        for name, part in block.fit_parts.items()
                        if block.fit_applies[name][0, j]
                    },
                    shared_terms=shared_terms(
                        corpus.proposal_texts[p],
                        corpus.offer_texts[int(o)],
                        top=8,
                        vectorizer=self.terms,
                    ),
                    best_publications=[(titles[i], float(by_publication[j, i])) for i in order],
                    checks=block.eligibility.checks(0, j),
                )
            )
        return explanations


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _in_order(
    work: Callable[[np.ndarray], _Result], blocks: Sequence[np.ndarray], workers: int
) -> Iterator[_Result]:
    """`work(block)` for each block, yielded in order; with several blocks and workers, in
    `workers` threads at once, each with BLAS held to one thread, at most `workers + 1`
    results ahead of the consumer.

    The products are most of a block's work and numpy, scipy and BLAS release the GIL, so
    the threads keep every core busy on useful work. With BLAS threaded inside one block
    instead, every core but one waits through the block's single-threaded work (OpenBLAS's
    threads spin on it for up to a tenth of a second after each product, which shows as
    CPU time spent on nothing)."""
    count = min(workers, len(blocks))
    if count <= 1:
        yield from map(work, blocks)
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(count) as pool:
        pending: deque[Future[_Result]] = deque()
        for block in blocks:
            pending.append(pool.submit(work, block))
            if len(pending) > count:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class BlockScorer:
    """The masked total scores of `Matcher.block`, block after block, for one recompute.

    Prepared once for the offers `columns`: their vectors, their lexical terms, their
    eligibility facts and identity tokens (`EligibilityIndex`). `scores(positions)` then
    costs two fp32 products (proposals x offers, publications x offers), the soft maximum as
    an in-place exponential and a segment sum, one sparse product for the lexical part,
    `resource_fit` and boolean array operations, with the components added in the order and
    float32 arithmetic of `combine`. `rows` and `columns` are corpus indices, ascending.
    """

    def __init__(
        self, matcher: Matcher, corpus: Corpus, rows: np.ndarray, columns: np.ndarray
    ) -> None:
        self.matcher, self.corpus = matcher, corpus
        self.rows, self.columns = rows, columns
        normalised = matcher.weights.normalised()
        self.active = {name: bool(share) for name, share in normalised.items()}
        # Scalars, or per offer column the weight plus the company's deviation; and biases.
        self.shares: dict[str, Any] = {name: np.float32(v) for name, v in normalised.items()}
        self.bias = None
        adjustment = matcher.adjustment_columns(corpus, columns)
        if adjustment is not None:
            for c, name in enumerate(COMPONENTS):
                self.shares[name] = self.shares[name] + adjustment[0][:, c]
            self.bias = adjustment[1]
        offer_texts = [corpus.offer_texts[j] for j in columns]
        self.offer_vectors = matcher.encoder.encode(offer_texts, store=matcher.store)
        # Per thread, one buffer for every block's publication x offer similarities (see
        # soft_maximum) and one for each component: fresh blocks of tens of MB would cost
        # their page faults on every block.
        self._buffers = threading.local()
        lexical = matcher.lexical
        self.offer_terms = (
            LexicalIndex(lexical, offer_texts)
            if lexical is not None and matcher.weights.lexical > 0
            else None
        )
        everyone = len(rows) == corpus.shape[0] and bool((rows == np.arange(len(rows))).all())
        all_offers = len(columns) == corpus.shape[1] and bool(
            (columns == np.arange(len(columns))).all()
        )
        self.eligibility = EligibilityIndex(
            corpus.proposals if everyone else corpus.proposals.take(rows),
            corpus.offers if all_offers else corpus.offers.take(columns),
            today=matcher.today,
        )
        self.fit = FitIndex(corpus.fit, rows, columns, today=matcher.today)
        # Dismissed pairs as (row position, column position), sorted by row position.
        set_aside = [(int(p), int(o)) for p, offers in corpus.set_aside.items() for o in offers]
        pairs = np.array(set_aside, dtype=np.int64).reshape(-1, 2)
        row_at = np.searchsorted(rows, pairs[:, 0]).clip(0, max(len(rows) - 1, 0))
        column_at = np.searchsorted(columns, pairs[:, 1]).clip(0, max(len(columns) - 1, 0))
        known = (rows[row_at] == pairs[:, 0]) & (columns[column_at] == pairs[:, 1])
        order = np.argsort(row_at[known], kind="stable")
        self.set_aside_rows = row_at[known][order]
        self.set_aside_columns = column_at[known][order]

    def default_chunk_rows(self, workers: int = 1) -> int:
        """Proposals per block: the publication scores of `workers` blocks (one per thread)
        fit `CHUNK_ELEMENTS` together, so threads do not multiply the buffers' memory."""
        texts = sum(len(self.corpus.author_publications[i]) for i in self.rows)
        per_row = (1 + texts / max(len(self.rows), 1)) * max(len(self.columns), 1)
        share = CHUNK_ELEMENTS // max(workers, 1)
        return int(np.clip(share // per_row, 16, DEFAULT_CHUNK_ROWS))

    def _buffer(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """This thread's float32 buffer `name`, as an array of `shape` (grown when needed)."""
        size = shape[0] * shape[1]
        buffer = getattr(self._buffers, name, None)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype=np.float32)
            setattr(self._buffers, name, buffer)
        return buffer[:size].reshape(shape)

    def scores(self, positions: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Masked totals of proposals `rows[positions]` x all `columns`: float32, ineligible
        and dismissed pairs at -inf (equal to `Matcher.block(...).masked()`), written to
        `out` (a C-contiguous float32 array of that shape) when given."""
        matcher, corpus, shares = self.matcher, self.corpus, self.shares
        ids = self.rows[positions]
        texts = [corpus.proposal_texts[i] for i in ids]
        proposal_vectors = matcher.encoder.encode(texts, store=matcher.store)
        shape = (len(positions), len(self.columns))
        by_proposal = np.matmul(proposal_vectors, self.offer_vectors.T, out=out)
        publications = [corpus.author_publications[i] for i in ids]
        sizes = np.array([len(p) for p in publications], dtype=np.int64)
        by_publications = None
        if self.active["publications"]:
            if sizes.any():
                flat = [text for profile in publications for text in profile]
                by_publications = soft_maximum(
                    matcher.encoder.encode(flat, store=matcher.store),
                    self.offer_vectors,
                    sizes,
                    scratch=self._buffer("scratch", (len(flat), len(self.columns))).ravel(),
                    out=self._buffer("publications", shape),
                )
                empty = sizes == 0
                by_publications[empty] = by_proposal[empty]
            else:
                by_publications = by_proposal.copy()
        lexical = None
        if self.offer_terms is not None and self.active["lexical"]:
            lexical = self.offer_terms.similarity(texts, out=self._buffer("lexical", shape))
        # The weighted sum, as `combine` adds it (same float32 operations, same order), tile
        # by tile so that the dozen passes of the sum, the fit and the mask stay in cache.
        total = by_proposal
        step = max(8, TILE_ELEMENTS // max(len(self.columns), 1))
        for start in range(0, len(positions), step):
            tile = slice(start, start + step)
            part = total[tile]
            part *= shares["proposal"]
            if by_publications is not None:
                weighted = by_publications[tile]
                weighted *= shares["publications"]
                part += weighted
            if lexical is not None:
                weighted = lexical[tile]
                weighted *= shares["lexical"]
                part += weighted
            if self.active["fit"]:
                fit = self.fit.fit(positions[tile])
                fit *= shares["fit"]
                part += fit
            if self.bias is not None:
                part += self.bias
            np.copyto(part, np.float32(-np.inf), where=self.eligibility.fails(positions[tile]))
        conflicts = self.eligibility.conflicts(positions)
        total[conflicts.row, conflicts.col] = -np.inf
        first, last = np.searchsorted(self.set_aside_rows, [positions[0], positions[-1] + 1])
        total[
            self.set_aside_rows[first:last] - positions[0], self.set_aside_columns[first:last]
        ] = -np.inf
        return total
