"""TF-IDF similarity, shared key terms, and the profile aggregations beyond mean and max."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from matching import Encoder, affinity, aggregate_profiles
from matching.lexical import (
    LexicalIndex,
    TfidfSimilarity,
    explanation_vectorizer,
    shared_terms,
)

ROBOTS = "Reinforcement learning policies for legged robots trained in physics simulation."
WALKING = "Legged robots learn to walk: reinforcement learning from simulation to the real world."
PROTEINS = "Protein structure prediction from amino-acid sequences with graph neural networks."
CORPUS = [ROBOTS, WALKING, PROTEINS, "Speech recognition for low-resource languages."]


def test_similarity_shape_dtype_and_range() -> None:
    model = TfidfSimilarity().fit(CORPUS)
    scores = model.similarity([ROBOTS, PROTEINS, "unseen words only"], CORPUS)
    assert scores.shape == (3, 4)
    assert scores.dtype == np.float32
    assert np.all(scores >= 0.0) and np.all(scores <= 1.0 + 1e-6)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(scores[2], 0.0)


def test_related_text_scores_above_unrelated() -> None:
    scores = TfidfSimilarity().fit(CORPUS).similarity([ROBOTS], [WALKING, PROTEINS])
    assert scores[0, 0] > scores[0, 1]


def test_follows_the_estimator_contract() -> None:
    model = TfidfSimilarity(sublinear_tf=False, min_df=1)
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.similarity([ROBOTS], [WALKING])
    assert model.fit(CORPUS) is model
    assert model.n_terms_ > 0
    assert clone(model).get_params() == model.get_params()
    assert model.get_params()["sublinear_tf"] is False


def test_a_corpus_without_terms_gives_zero_similarity() -> None:
    model = TfidfSimilarity().fit(["", "the and of"])
    assert model.n_terms_ == 0
    np.testing.assert_array_equal(model.similarity([ROBOTS], ["", ROBOTS]), [[0.0, 0.0]])
    assert shared_terms(ROBOTS, ROBOTS, vectorizer=model) == []


def test_shared_terms_names_terms_of_both_texts_and_no_stop_words() -> None:
    terms = shared_terms(ROBOTS, WALKING)
    assert set(terms) == {"reinforcement", "learning", "legged", "robots", "simulation"}
    assert not set(terms) & ENGLISH_STOP_WORDS
    assert shared_terms(ROBOTS, WALKING, top=2) == terms[:2]
    assert shared_terms(ROBOTS, PROTEINS) == []


def test_shared_terms_is_deterministic_and_breaks_ties_alphabetically() -> None:
    first = shared_terms(ROBOTS, WALKING)
    assert all(shared_terms(ROBOTS, WALKING) == first for _ in range(3))
    assert first == sorted(first)


def test_shared_terms_ranks_by_corpus_rarity_with_a_fitted_vectorizer() -> None:
    corpus = [f"Deep learning for {topic}." for topic in ("vision", "speech", "text", "graphs")]
    text_a = "Deep learning for robot grasping."
    text_b = "Robot grasping with deep learning."
    model = TfidfSimilarity().fit([*corpus, text_a, text_b])
    ranked = shared_terms(text_a, text_b, vectorizer=model)
    assert set(ranked[:2]) == {"grasping", "robot"}
    assert set(ranked[2:]) == {"deep", "learning"}
    sklearn_vectorizer = TfidfVectorizer(stop_words="english").fit([*corpus, text_a, text_b])
    assert set(shared_terms(text_a, text_b, vectorizer=sklearn_vectorizer)[:2]) == {
        "grasping",
        "robot",
    }


SIMILARITIES = np.array([[0.1, 0.5, 0.3, 0.9, -0.2, 0.4]], dtype=np.float32)
SIZES = [3, 0, 1, 2]


def test_top_k_means_the_k_largest_of_each_profile() -> None:
    np.testing.assert_allclose(
        aggregate_profiles(SIMILARITIES, SIZES, "topk", k=2), [[0.4, 0.0, 0.9, 0.1]], rtol=1e-6
    )
    np.testing.assert_allclose(
        aggregate_profiles(SIMILARITIES, SIZES, "topk", k=5), [[0.3, 0.0, 0.9, 0.1]], rtol=1e-6
    )


def test_log_sum_exp_lies_between_mean_and_max() -> None:
    temperature = 0.2
    expected = temperature * np.log(np.mean(np.exp(np.array([0.1, 0.5, 0.3]) / temperature)))
    soft = aggregate_profiles(SIMILARITIES, SIZES, "lse", temperature=temperature)
    np.testing.assert_allclose(soft[0, [0, 1, 2]], [expected, 0.0, 0.9], rtol=1e-6)
    assert 0.3 < soft[0, 0] < 0.5
    np.testing.assert_allclose(
        aggregate_profiles(SIMILARITIES, SIZES, "lse", temperature=1e-3)[0, 0], 0.5, atol=3e-3
    )
    np.testing.assert_allclose(
        aggregate_profiles(SIMILARITIES, SIZES, "lse", temperature=1e3)[0, 0], 0.3, atol=1e-3
    )


def test_power_mean_counts_negative_similarities_as_zero() -> None:
    cubic = aggregate_profiles(SIMILARITIES, SIZES, "power", exponent=3.0)
    np.testing.assert_allclose(
        cubic,
        [[np.cbrt((0.1**3 + 0.5**3 + 0.3**3) / 3), 0.0, 0.9, np.cbrt(0.4**3 / 2)]],
        rtol=1e-5,
    )


def test_aggregations_agree_row_by_row_with_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    sizes = [4, 1, 0, 7, 2]
    similarities = rng.uniform(-1, 1, size=(5, sum(sizes))).astype(np.float32)
    bounds = np.cumsum([0, *sizes])
    direct = {
        "topk": lambda block: np.sort(block)[::-1][:3].mean(),
        "lse": lambda block: 0.2 * np.log(np.mean(np.exp(block / 0.2))),
        "power": lambda block: np.mean(np.clip(block, 0, None) ** 3) ** (1 / 3),
    }
    for how, aggregate in direct.items():
        expected = [
            [
                aggregate(row[a:b]) if b > a else 0.0
                for a, b in zip(bounds, bounds[1:], strict=False)
            ]
            for row in similarities.astype(np.float64)
        ]
        np.testing.assert_allclose(
            aggregate_profiles(similarities, sizes, how), expected, rtol=1e-5, atol=1e-6
        )


def test_bad_aggregation_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="temperature"):
        aggregate_profiles(SIMILARITIES, SIZES, "lse", temperature=0.0)
    with pytest.raises(ValueError, match="k must"):
        aggregate_profiles(SIMILARITIES, SIZES, "topk", k=0)
    with pytest.raises(ValueError, match="lexical_weight"):
        affinity([ROBOTS], [[WALKING]], lexical_weight=1.5)


@pytest.mark.semantic
def test_default_affinity_prefers_one_close_paper_to_a_diluted_mean(encoder: Encoder) -> None:
    query = ["Teaching legged robots to walk with reinforcement learning."]
    one_close_many_far = [[WALKING, PROTEINS, PROTEINS + " Revisited.", "Speech corpora."]]
    default = affinity(query, one_close_many_far, encoder=encoder)[0, 0]
    mean = affinity(query, one_close_many_far, encoder=encoder, how="mean")[0, 0]
    maximum = affinity(query, one_close_many_far, encoder=encoder, how="max")[0, 0]
    assert mean < default < maximum
    single = affinity(query, [[WALKING]], encoder=encoder)[0, 0]
    assert single == pytest.approx(maximum, abs=1e-6)


@pytest.mark.semantic
def test_lexical_and_title_blends(encoder: Encoder) -> None:
    queries = ["Robots\n" + ROBOTS, "Proteins\n" + PROTEINS]
    profiles = [[WALKING], [PROTEINS, "Speech corpora."], []]
    semantic = affinity(queries, profiles, encoder=encoder)
    lexical_only = affinity(queries, profiles, encoder=encoder, lexical_weight=1.0)
    lexical = TfidfSimilarity().fit([*queries, WALKING, PROTEINS, "Speech corpora."])
    np.testing.assert_allclose(
        lexical_only[0, 0], lexical.similarity([queries[0]], [WALKING])[0, 0], rtol=1e-5
    )
    blended = affinity(queries, profiles, encoder=encoder, lexical_weight=0.3)
    np.testing.assert_allclose(blended, 0.7 * semantic + 0.3 * lexical_only, rtol=1e-5, atol=1e-6)
    assert lexical_only[0, 0] > lexical_only[0, 1]
    titled = affinity(queries, profiles, encoder=encoder, title_weight=0.5)
    assert titled.shape == (2, 3)
    assert titled[0, 0] > titled[0, 1] and titled[1, 1] > titled[1, 0]
    np.testing.assert_array_equal(titled[:, 2], 0.0)


def test_explanations_name_the_topic_not_the_ask_or_common_words() -> None:
    """Two texts about protein folding that also both ask for GPU memory, a fine-tuning run and
    open publication: the terms shown are the topic's, not "needed", "gb", "fine" or
    "published", and not a word that most of the catalogue uses."""
    proposal = (
        "Protein folding with diffusion models\nWe want to fine-tune a folding model on "
        "cryo-EM maps with learning systems; 80 GB of GPU memory needed, results published "
        "openly with code."
    )
    offer = (
        "Cryo-EM maps for folding research\nWe share cryo-EM density maps of membrane "
        "proteins and folding trajectories for learning systems; fine-tuning runs on 80 GB "
        "GPUs, published after review."
    )
    filler = [
        f"Learning systems for topic {i}: evaluation and benchmarks needed, code released."
        for i in range(30)
    ]
    terms = shared_terms(
        proposal, offer, top=8, vectorizer=explanation_vectorizer([proposal, offer, *filler])
    )
    assert {"cryo", "folding", "maps"} <= set(terms)
    ask_or_common = {"needed", "gb", "fine", "published", "openly", "code", "learning", "systems"}
    assert not ask_or_common & set(terms)


def test_lexical_index_into_a_reused_buffer_equals_similarity() -> None:
    """Common terms (dense) and rare ones (sparse) add up to the plain similarity, also when
    the scores go into a buffer that holds an earlier block's numbers."""
    texts = CORPUS * 20 + ["robots and proteins", "legged speech"]
    model = TfidfSimilarity().fit(texts)
    index = LexicalIndex(model, texts, dense_terms=4)
    assert index.common.size and index.rare.size
    queries = [ROBOTS, "proteins folding robots", "nothing known here"]
    expected = model.similarity(queries, texts)
    out = np.full(expected.shape, 7.0, dtype=np.float32)
    assert index.similarity(queries, out=out) is out
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(out, index.similarity(queries))
