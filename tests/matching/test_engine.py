"""The engine: streaming recommendations equal brute force, only eligible pairs, explanations."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from matching import Encoder
from matching.eligibility import OfferFacts, ProposalFacts
from matching.engine import Corpus, Matcher
from matching.fit import FitInputs
from matching.lexical import TfidfSimilarity
from matching.scoring import ScoreWeights

TODAY = date(2026, 11, 28)
NAT = np.datetime64("NaT", "D")

PROPOSALS = [
    ("Reinforcement learning for warehouse robot picking with sim-to-real transfer.", 4_000),
    ("Speech recognition for low-resource African languages from radio archives.", 2_000),
    ("Chest CT foundation model pretrained on de-identified hospital scans.", 12_000),
    ("Crop disease detection from smartphone images for smallholder farmers.", 800),
    ("Graph neural networks for molecular property prediction in drug discovery.", 6_000),
    ("Forecasting river floods with neural operators and radar rainfall.", 1_500),
    ("Fairness audits of credit scoring models across demographic groups.", 0),
]
OFFERS = [
    ("GPU hours for robotics, manipulation and embodied AI research.", "compute", 10_000),
    ("Multilingual conversational speech corpus with transcripts.", "data", 0),
    ("H100 compute for medical imaging foundation models.", "compute", 20_000),
    ("Agricultural imagery of crop diseases with expert labels.", "compute+data", 5_000),
    ("Compute for scientific machine learning in chemistry and climate.", "compute", 8_000),
]


def make_corpus(proposal_overrides: dict[int, dict] | None = None) -> Corpus:
    proposal_overrides = proposal_overrides or {}
    proposal_records = [
        {
            "gpu_hours_needed": hours,
            "needs_data": hours == 0 or i in (1, 3),
            "requires_open_publication": True,
            "ip_stance": "joint",
            "identities": [f"uni{i}.example.org"],
            **proposal_overrides.get(i, {}),
        }
        for i, (_, hours) in enumerate(PROPOSALS)
    ]
    offer_records = [
        {
            "kind": kind,
            "max_hours_per_project": per_project,
            "hours_left": per_project * 3,
            "projects_left": 3,
            "publication_terms": "allowed",
            "ip_stance": "open",
            "identities": [f"company{j}.example.com"],
        }
        for j, (_, kind, per_project) in enumerate(OFFERS)
    ]
    proposals = ProposalFacts.from_records(proposal_records)
    offers = OfferFacts.from_records(offer_records)
    fit = FitInputs.from_facts(
        proposals,
        offers,
        proposal_domains=[frozenset()] * len(PROPOSALS),
        start=np.array([NAT] * len(PROPOSALS)),
        duration_months=np.full(len(PROPOSALS), 12.0),
        offer_domains=[frozenset()] * len(OFFERS),
        available_until=np.array([NAT] * len(OFFERS)),
    )
    texts = [text for text, _ in PROPOSALS]
    publications = [[f"Earlier work: {text}"] if i % 2 == 0 else [] for i, text in enumerate(texts)]
    return Corpus(
        proposal_texts=texts,
        offer_texts=[text for text, _, _ in OFFERS],
        author_publications=publications,
        publication_titles=[[f"Paper {i}"] * len(p) for i, p in enumerate(publications)],
        proposals=proposals,
        offers=offers,
        fit=fit,
    )


@pytest.fixture
def matcher(encoder: Encoder) -> Matcher:
    corpus = make_corpus()
    lexical = TfidfSimilarity().fit([*corpus.proposal_texts, *corpus.offer_texts])
    return Matcher(encoder, lexical=lexical, today=TODAY)


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_streaming_recommendations_equal_brute_force(matcher: Matcher, chunk_rows: int) -> None:
    corpus = make_corpus()
    k = 2
    result = matcher.recommend(corpus, k, chunk_rows=chunk_rows)
    scores = matcher.block(corpus, np.arange(len(PROPOSALS))).masked()
    for p, row in enumerate(scores):
        allowed = [o for o in np.argsort(-row, kind="stable") if np.isfinite(row[o])][:k]
        assert [o for o in result.offers_for_proposal[p] if o >= 0] == allowed
    for o, column in enumerate(scores.T):
        allowed = [p for p in np.argsort(-column, kind="stable") if np.isfinite(column[p])][:k]
        assert [p for p in result.proposals_for_offer[o] if p >= 0] == allowed


def test_only_eligible_pairs_are_recommended(matcher: Matcher) -> None:
    corpus = make_corpus()
    block = matcher.block(corpus, np.arange(len(PROPOSALS)))
    for (p, o), _ in matcher.recommend(corpus, 3).ranks().items():
        assert block.eligible[p, o]
    # The speech proposal needs data only from the speech corpus; a compute-only offer is out.
    assert not block.eligible[6, 0]


@pytest.mark.semantic
def test_sensible_top_pairs(matcher: Matcher) -> None:
    best = matcher.recommend(make_corpus(), 1).offers_for_proposal[:, 0]
    assert best[0] == 0  # robot picking -> robotics GPU hours
    assert best[2] == 2  # chest CT -> medical imaging compute
    assert best[3] == 3  # crop disease -> agricultural imagery


def test_explanations_name_components_terms_publications_and_constraints(
    matcher: Matcher,
) -> None:
    corpus = make_corpus()
    (eligible,) = matcher.explain(corpus, 3, [3])
    (ineligible,) = matcher.explain(corpus, 6, [0])
    assert eligible.eligible and all(c.passed for c in eligible.checks)
    assert set(eligible.components) == {"proposal", "publications", "lexical", "fit"}
    assert "crop" in eligible.shared_terms or "disease" in eligible.shared_terms
    weighted = sum(eligible.weights[n] * v for n, v in eligible.components.items())
    assert eligible.score == pytest.approx(weighted, abs=1e-5)
    assert not ineligible.eligible
    assert [c.name for c in ineligible.checks if not c.passed] == ["provides_need"]
    (chest,) = matcher.explain(corpus, 2, [2])
    assert chest.best_publications and chest.best_publications[0][0] == "Paper 2"
    assert chest.to_dict()["checks"][0]["passed"] in (True, False)


def test_conflict_of_interest_is_never_recommended(encoder: Encoder) -> None:
    corpus = make_corpus({0: {"identities": ["company0.example.com"]}})
    result = Matcher(encoder, today=TODAY).recommend(corpus, 5)
    assert 0 not in result.offers_for_proposal[0]
    assert 0 not in result.proposals_for_offer[0]


def test_weights_change_the_version_and_the_total(encoder: Encoder) -> None:
    corpus = make_corpus()
    semantic_only = Matcher(encoder, weights=ScoreWeights.parse("proposal=1"), today=TODAY)
    block = semantic_only.block(corpus, np.arange(3))
    np.testing.assert_allclose(block.total, block.components["proposal"], rtol=1e-6)
    assert semantic_only.weights.version != ScoreWeights().version
