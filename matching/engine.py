"""The matching engine: scores, eligibility, recommendations and explanations.

An encoder turns texts into vectors, `Matcher.block` scores a block of (proposals x offers)
with every component and constraint, `Matcher.recommend` streams over proposal chunks to keep
each proposal's k best eligible offers and each offer's k best eligible proposals with bounded
memory, and `Matcher.explain` says why one pair scores as it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from matching.affinity import affinity
from matching.eligibility import Check, Eligibility, OfferFacts, ProposalFacts, check_eligibility
from matching.embeddings import EmbeddingStore, Encoder
from matching.fit import FitInputs, resource_fit
from matching.lexical import TfidfSimilarity, shared_terms
from matching.recommend import top_k_desc
from matching.scoring import COMPONENT_LABELS, COMPONENTS, ScoreWeights, combine

DEFAULT_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class Corpus:
    """Everything the engine knows about P proposals and O offers (plain values only).

    `author_publications[p]` holds the texts of the publications of proposal p's author.
    `set_aside[p]` holds the offers (indices) proposal p must never be recommended again,
    because one side dismissed the pair; the next-best eligible offer takes its place.
    """

    proposal_texts: Sequence[str]
    offer_texts: Sequence[str]
    author_publications: Sequence[Sequence[str]]
    publication_titles: Sequence[Sequence[str]]
    proposals: ProposalFacts
    offers: OfferFacts
    fit: FitInputs
    set_aside: Mapping[int, Sequence[int]] = field(default_factory=dict)

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
    """Scores proposals against offers with one encoder, lexical model and set of weights."""

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
