"""The vectorised recompute equals today's engine (tests/matching/reference_engine.py, frozen).

Same pairs, same ranks on both sides, scores within 1e-4: on a corpus of several hundred
proposals and offers where every hard constraint fails somewhere, with publications (and
authors without any), dismissed pairs, tied duplicates, several chunk sizes and a subset of
rows or columns; on random small corpora (hypothesis); and through the app (`recompute_all`
on SQLite and PostgreSQL) against the reference run on the same snapshot.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from matching.eligibility import CONSTRAINTS, OfferFacts, ProposalFacts, check_eligibility
from matching.engine import BlockScorer, Corpus, Matcher, Recommendations
from matching.fit import FitInputs
from matching.lexical import WORD_PATTERN, TfidfSimilarity
from matching.scoring import ScoreWeights
from matching.stand_in import StandInEncoder
from tests.matching.reference_engine import ReferenceMatcher

TODAY = date(2026, 12, 1)
WORDS = (
    "robot speech protein climate crop vision graph language medical imaging flood river "
    "genome molecule policy audit credit fairness satellite ocean battery material quantum "
    "traffic energy grid seismic wildfire soil insect bird music poetry law tax"
).split()
GPU_TYPES = [None, "a10g", "l40s", "a100", "h100", "h200"]
DOMAINS = ["health", "climate", "language", "vision"]


def _text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(1, words))))


def make_corpus(n_proposals: int, n_offers: int, seed: int, *, duplicates: bool = True) -> Corpus:
    """Random texts from a small vocabulary (many shared words, some exact duplicates, so
    scores tie) and facts drawn so that every constraint fails for some pairs."""
    rng = np.random.default_rng(seed)
    n_orgs = max(2, n_proposals // 10)
    proposal_records = []
    for i in range(n_proposals):
        hours = float(rng.choice([0, 100, 2000, 9000]))
        proposal_records.append(
            {
                "gpu_hours_needed": hours,
                "gpu_memory_min_gb": None if rng.random() < 0.4 else float(rng.choice([0, 24, 80])),
                "gpu_type": GPU_TYPES[int(rng.integers(len(GPU_TYPES)))],
                "needs_data": hours == 0 or rng.random() < 0.4,
                "requires_open_publication": rng.random() < 0.3,
                "requires_open_source": rng.random() < 0.3,
                "ip_stance": str(rng.choice(["open", "joint", "company_owned"])),
                "identities": [f"Org{rng.integers(n_orgs)}", f"cs.uni{i % n_orgs}.example.org"],
                "excluded": [f"company{rng.integers(n_offers)}.example.com"]
                if rng.random() < 0.2
                else [],
            }
        )
    offer_records = []
    for j in range(n_offers):
        per_project = float(rng.choice([50, 2000, 10000]))
        offer_records.append(
            {
                "kind": str(rng.choice(["compute", "data", "compute+data"])),
                "is_open": rng.random() < 0.9,
                "deadline": None
                if rng.random() < 0.6
                else TODAY + timedelta(int(rng.integers(-20, 60))),
                "gpu_memory_gb": None if rng.random() < 0.3 else float(rng.choice([24, 48, 141])),
                "gpu_type": GPU_TYPES[int(rng.integers(len(GPU_TYPES)))],
                "max_hours_per_project": per_project,
                "hours_left": per_project * float(rng.choice([0.1, 1, 3])),
                "projects_left": int(rng.choice([0, 1, 4])),
                "publication_terms": str(rng.choice(["allowed", "after_review", "not_allowed"])),
                "code_release_allowed": rng.random() < 0.7,
                "ip_stance": str(rng.choice(["open", "joint", "company_owned"])),
                "identities": [f"company{j}.example.com"]
                + ([f"org{rng.integers(n_orgs)}"] if rng.random() < 0.2 else []),
                "excluded": [f"uni{rng.integers(n_orgs)}.example.org"]
                if rng.random() < 0.2
                else [],
            }
        )
    proposal_texts = [_text(rng, 12) for _ in range(n_proposals)]
    offer_texts = [_text(rng, 12) for _ in range(n_offers)]
    publications = [
        [_text(rng, 15) for _ in range(int(rng.choice([0, 1, 3, 7])))] for _ in range(n_proposals)
    ]
    nat = np.datetime64("NaT", "D")
    today = np.datetime64(TODAY, "D")

    def domains() -> frozenset[str]:
        return frozenset(rng.choice(DOMAINS, size=int(rng.integers(0, 3)), replace=False))

    proposal_domains = [domains() for _ in range(n_proposals)]
    offer_domains = [domains() for _ in range(n_offers)]
    start = [
        nat if rng.random() < 0.5 else today + int(rng.integers(-30, 90))
        for _ in range(n_proposals)
    ]
    until = [
        nat if rng.random() < 0.4 else today + int(rng.integers(10, 400)) for _ in range(n_offers)
    ]
    duration = rng.choice([1.0, 6.0, 12.0], size=n_proposals)
    if duplicates and n_offers >= 4 and n_proposals >= 4:
        # Exact duplicates tie on every component: the lower index must win, as before.
        for copy, original in ((1, 0), (3, 2)):
            offer_records[copy], offer_texts[copy] = offer_records[original], offer_texts[original]
            offer_domains[copy], until[copy] = offer_domains[original], until[original]
        proposal_records[1], proposal_texts[1] = proposal_records[0], proposal_texts[0]
        publications[1], proposal_domains[1] = publications[0], proposal_domains[0]
        start[1], duration[1] = start[0], duration[0]
    proposals = ProposalFacts.from_records(proposal_records)
    offers = OfferFacts.from_records(offer_records)
    fit = FitInputs.from_facts(
        proposals,
        offers,
        proposal_domains=proposal_domains,
        start=np.array(start, dtype="datetime64[D]"),
        duration_months=duration,
        offer_domains=offer_domains,
        available_until=np.array(until, dtype="datetime64[D]"),
    )
    set_aside = {
        int(p): sorted({int(o) for o in rng.integers(n_offers, size=2)})
        for p in rng.choice(n_proposals, size=max(1, n_proposals // 6), replace=False)
    }
    return Corpus(
        proposal_texts=proposal_texts,
        offer_texts=offer_texts,
        author_publications=publications,
        publication_titles=[[t[:20] for t in pubs] for pubs in publications],
        proposals=proposals,
        offers=offers,
        fit=fit,
        set_aside=set_aside,
    )


def matchers(
    corpus: Corpus, weights: ScoreWeights | None = None
) -> tuple[Matcher, ReferenceMatcher]:
    encoder = StandInEncoder()
    texts = [*corpus.proposal_texts, *corpus.offer_texts]
    lexical = TfidfSimilarity(use_idf=False, token_pattern=WORD_PATTERN).fit(texts)
    new = Matcher(encoder, weights=weights, lexical=lexical, today=TODAY)
    reference = ReferenceMatcher(encoder, weights=weights, lexical=lexical, today=TODAY)
    return new, reference


def assert_same(new: Recommendations, reference: Recommendations) -> None:
    np.testing.assert_array_equal(new.rows, reference.rows)
    np.testing.assert_array_equal(new.columns, reference.columns)
    np.testing.assert_array_equal(new.offers_for_proposal, reference.offers_for_proposal)
    np.testing.assert_array_equal(new.proposals_for_offer, reference.proposals_for_offer)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus(400, 300, seed=7)


def test_the_corpus_exercises_every_constraint_and_tie(corpus: Corpus) -> None:
    eligibility = check_eligibility(corpus.proposals, corpus.offers, today=TODAY)
    for name in CONSTRAINTS:
        assert eligibility.failures[name].any(), name
    assert 0.05 < eligibility.mask.mean() < 0.9
    assert corpus.offer_texts[0] == corpus.offer_texts[1]
    assert any(not pubs for pubs in corpus.author_publications)
    assert corpus.set_aside


@pytest.mark.parametrize("chunk_rows", [None, 1, 37, 1000])
def test_recommendations_equal_the_reference(corpus: Corpus, chunk_rows: int | None) -> None:
    new, reference = matchers(corpus)
    expected = reference.recommend(corpus, 5)
    assert_same(new.recommend(corpus, 5, chunk_rows=chunk_rows), expected)
    assert (expected.offers_for_proposal[:, -1] == -1).any()  # some lists are short
    # The tied duplicates: offer 0 before offer 1, proposal 0 before proposal 1.
    ranks = expected.ranks()
    assert any(p == 0 or o == 0 for p, o in ranks)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_blocks_scored_in_several_threads_equal_the_reference(corpus: Corpus, workers: int) -> None:
    new, reference = matchers(corpus)
    assert_same(
        new.recommend(corpus, 5, chunk_rows=23, workers=workers), reference.recommend(corpus, 5)
    )


def test_scores_equal_the_reference_block(corpus: Corpus) -> None:
    new, reference = matchers(corpus)
    rows = np.arange(len(corpus.proposal_texts))
    scorer = BlockScorer(new, corpus, rows, np.arange(len(corpus.offer_texts)))
    mine = scorer.scores(rows)
    earlier = np.full(mine.shape, 7.0, dtype=np.float32)  # a buffer an earlier block used
    np.testing.assert_array_equal(scorer.scores(rows, out=earlier), mine)
    theirs = reference.block(corpus, rows).masked()
    for p, offers in corpus.set_aside.items():
        theirs[p, offers] = -np.inf
    np.testing.assert_array_equal(np.isfinite(mine), np.isfinite(theirs))
    finite = np.isfinite(theirs)
    assert np.abs(mine[finite] - theirs[finite]).max() < 1e-4
    # Identical inputs score identically (the ties survive).
    untouched = [p for p in range(2, len(rows)) if not {0, 1} & set(corpus.set_aside.get(p, ()))]
    np.testing.assert_array_equal(mine[untouched, 0], mine[untouched, 1])
    columns = sorted(
        set(range(2, mine.shape[1]))
        - set(corpus.set_aside.get(0, ()))
        - set(corpus.set_aside.get(1, ()))
    )
    np.testing.assert_array_equal(mine[0, columns], mine[1, columns])


@pytest.mark.parametrize(
    "weights", ["proposal=1", "publications=1,lexical=1", "fit=1,proposal=0.2"]
)
def test_other_weights_equal_the_reference(corpus: Corpus, weights: str) -> None:
    new, reference = matchers(corpus, ScoreWeights.parse(weights))
    assert_same(new.recommend(corpus, 3), reference.recommend(corpus, 3))


def test_a_subset_of_rows_or_columns_in_any_order_equals_the_reference(corpus: Corpus) -> None:
    new, reference = matchers(corpus)
    rows = np.array([250, 3, 0, 1, 77, 399, 120])
    columns = np.array([299, 0, 1, 5, 150, 2, 3, 42])
    assert_same(new.recommend(corpus, 4, rows=rows), reference.recommend(corpus, 4, rows=rows))
    assert_same(
        new.recommend(corpus, 4, columns=columns, chunk_rows=64),
        reference.recommend(corpus, 4, columns=columns),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_proposals=st.integers(1, 25),
    n_offers=st.integers(1, 12),
    k=st.integers(1, 6),
    chunk_rows=st.sampled_from([None, 1, 4]),
    seed=st.integers(0, 2**16),
)
def test_random_small_corpora_equal_the_reference(
    n_proposals: int, n_offers: int, k: int, chunk_rows: int | None, seed: int
) -> None:
    corpus = make_corpus(n_proposals, n_offers, seed)
    new, reference = matchers(corpus)
    assert_same(new.recommend(corpus, k, chunk_rows=chunk_rows), reference.recommend(corpus, k))


# ---------------------------------------------------------------- through the app


def test_recompute_all_stores_what_the_reference_computes(
    app, session: Session, demo_loaded: str
) -> None:
    from app.services import recommendations
    from app.services.corpus import load_snapshot, make_matcher
    from app.services.visibility import SET_ASIDE
    from models import Match

    encoder = app.extensions["tandem.encoder"]
    # A dismissed pair, so that the snapshot sets one aside.
    dismissed = session.exec(select(Match).order_by(Match.id)).first()  # type: ignore[arg-type]
    assert dismissed is not None
    dismissed.status = SET_ASIDE[0]
    session.add(dismissed)
    session.commit()
    with app.app_context():
        recommendations.recompute_all(session=session, encoder=encoder, k=5)
        session.commit()
        snapshot = load_snapshot(session=session)
        matcher = make_matcher(session=session, encoder=encoder, snapshot=snapshot)
        reference = ReferenceMatcher(
            encoder,
            weights=matcher.weights,
            lexical=matcher.lexical,
            store=matcher.store,
            today=matcher.today,
        )
        expected = reference.recommend(snapshot.corpus, 5).ranks()
        proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
        session.expire_all()
        stored = {
            (proposal_index[m.proposal_id], offer_index[m.offer_id]): m
            for m in session.exec(select(Match))
            if m.rank_for_proposal is not None or m.rank_for_offer is not None
        }
        assert set(stored) == set(expected)
        assert len(expected) > 20
        assert snapshot.corpus.set_aside
        for (p, o), match in stored.items():
            assert (match.rank_for_proposal, match.rank_for_offer) == expected[(p, o)]
            score = float(
                reference.block(snapshot.corpus, np.array([p]), np.array([o])).total[0, 0]
            )
            assert match.score == pytest.approx(score, abs=1e-4)
