"""A learned per-company adjustment in the engine: company g's offers score
x . (w + d_g) + b_g, the same in a recompute (`BlockScorer`), in `Matcher.block` (the single
item path and the explanations) and by hand; unknown companies are scored by w alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from matching.engine import BlockScorer, Corpus, Matcher
from matching.lexical import WORD_PATTERN, TfidfSimilarity
from matching.scoring import COMPONENTS, OfferAdjustment, ScoreWeights
from matching.stand_in import StandInEncoder
from tests.matching.test_engine_equivalence import TODAY, make_corpus

WEIGHTS = ScoreWeights(proposal=0.5, publications=0.2, lexical=0.1, fit=0.2)
# Company 0 weighs the fit more and the proposal text less, and answers yes more readily;
# company 1 the other way round; company 2 has no adjustment and offers of company 3 none.
ADJUSTMENT = OfferAdjustment(
    {0: [-0.3, 0.0, 0.0, 0.3, 0.05], 1: [0.2, 0.0, 0.0, -0.15, -0.02], 2: [0, 0, 0, 0, 0]}
)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    base = make_corpus(120, 90, seed=11)
    return replace(base, offer_groups=tuple(j % 4 for j in range(90)))


def matcher(corpus: Corpus, adjustment: OfferAdjustment | None) -> Matcher:
    texts = [*corpus.proposal_texts, *corpus.offer_texts]
    lexical = TfidfSimilarity(use_idf=False, token_pattern=WORD_PATTERN).fit(texts)
    return Matcher(
        StandInEncoder(), weights=WEIGHTS, lexical=lexical, today=TODAY, adjustment=adjustment
    )


def test_the_adjusted_scores_are_the_per_company_formula(corpus: Corpus) -> None:
    rows = np.arange(corpus.shape[0])
    plain = matcher(corpus, None).block(corpus, rows)
    adjusted = matcher(corpus, ADJUSTMENT).block(corpus, rows)
    shares = np.array([WEIGHTS.normalised()[c] for c in COMPONENTS])
    groups = np.array(corpus.offer_groups)
    table = np.array([ADJUSTMENT.deviations.get(g, [0.0] * 5) for g in groups])
    by_hand = (
        sum(
            plain.components[name] * (shares[c] + table[:, c])[None, :]
            for c, name in enumerate(COMPONENTS)
        )
        + table[:, -1]
    )
    np.testing.assert_allclose(adjusted.total, by_hand, atol=1e-5)
    unadjusted = (groups == 2) | (groups == 3)
    np.testing.assert_array_equal(adjusted.total[:, unadjusted], plain.total[:, unadjusted])
    assert np.abs(adjusted.total[:, ~unadjusted] - plain.total[:, ~unadjusted]).max() > 0.01


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_a_recompute_agrees_with_the_block_and_follows_the_adjustment(
    corpus: Corpus, chunk_rows: int | None
) -> None:
    rows, columns = np.arange(corpus.shape[0]), np.arange(corpus.shape[1])
    adjusted = matcher(corpus, ADJUSTMENT)
    scores = BlockScorer(adjusted, corpus, rows, columns).scores(rows)
    expected = adjusted.block(corpus, rows).masked()
    for p, offers in corpus.set_aside.items():
        expected[p, offers] = -np.inf
    np.testing.assert_array_equal(np.isfinite(scores), np.isfinite(expected))
    finite = np.isfinite(expected)
    assert np.abs(scores[finite] - expected[finite]).max() < 1e-5
    plain = matcher(corpus, None).recommend(corpus, 5, chunk_rows=chunk_rows).best_offers()
    mine = adjusted.recommend(corpus, 5, chunk_rows=chunk_rows).best_offers()
    assert mine != plain
    groups = np.array(corpus.offer_groups)

    def share(best: dict[int, list[int]], group: int) -> float:
        chosen = [o for offers in best.values() for o in offers]
        return float(np.mean(groups[chosen] == group))

    # Company 0's bias and taste lift its offers; company 1's lower them.
    assert share(mine, 0) > share(plain, 0)
    assert share(mine, 1) < share(plain, 1)


def test_without_an_adjustment_nothing_changes_and_each_adjustment_has_its_own_tag(
    corpus: Corpus,
) -> None:
    assert ADJUSTMENT.tag.startswith("adj-")
    assert ADJUSTMENT.tag != OfferAdjustment({0: [0, 0, 0, 0, 0.06]}).tag
    assert matcher(corpus, None).adjustment is None
