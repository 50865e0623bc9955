"""Score weights: parsing, validation, normalisation and versioning."""

from __future__ import annotations

import numpy as np
import pytest

from matching.scoring import ScoreWeights, combine


def test_parse_and_normalise() -> None:
    weights = ScoreWeights.parse("proposal=2, fit=2")
    assert weights.normalised() == {
        "proposal": 0.5,
        "publications": 0.0,
        "lexical": 0.0,
        "fit": 0.5,
    }
    assert ScoreWeights.parse('{"proposal": 1}') == ScoreWeights(0.0 + 1, 0, 0, 0)


@pytest.mark.parametrize("text", ["proposal=-1", "speed=1", "proposal", "proposal=x", "fit=0"])
def test_bad_weights_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError):
        ScoreWeights.parse(text)


def test_version_follows_the_normalised_weights() -> None:
    assert (
        ScoreWeights.parse("proposal=1,fit=1").version
        == ScoreWeights.parse("proposal=3,fit=3").version
    )
    assert ScoreWeights().version != ScoreWeights.parse("proposal=1").version
    assert ScoreWeights().version.startswith("tandem-2/w-")


def test_combine_is_the_weighted_sum() -> None:
    components = {
        name: np.full((2, 3), value, dtype=np.float32)
        for name, value in {
            "proposal": 0.8,
            "publications": 0.6,
            "lexical": 0.2,
            "fit": 1.0,
        }.items()
    }
    expected = 0.55 * 0.8 + 0.2 * 0.6 + 0.1 * 0.2 + 0.15 * 1.0
    np.testing.assert_allclose(combine(components, ScoreWeights()), expected, rtol=1e-6)
