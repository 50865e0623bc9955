"""The encoder's pooling (`TANDEM_ENCODER_POOLING`): mean+cls gives other vectors than the
model's mean, stored under another model name, so a store never hands one pooling's vectors
to the other and a change of setting re-embeds each text once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from matching.embeddings import (
    PACKAGED_MODEL,
    Encoder,
    cache_model_name,
    default_encoder,
    encoder_pooling,
    make_encoder,
)

pytestmark = pytest.mark.semantic

TEXTS = [
    "Graph neural networks for protein structure prediction\nWe learn residue contacts.",
    "Solar panel defect detection from drone images\nA detector for cracked cells.",
    "Bayesian optimisation of chemical reactions\nFewer experiments find better yields.",
]


class DictStore:
    """The smallest `EmbeddingStore`: vectors in a dict keyed by (model name, content hash)."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return {h: self.vectors[model_name, h] for h in hashes if (model_name, h) in self.vectors}

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        self.vectors.update(((model_name, h), v) for h, v in vectors.items())


@pytest.fixture
def torch_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "torch")
    monkeypatch.delenv("TANDEM_ENCODER_POOLING", raising=False)


def test_mean_cls_gives_other_unit_vectors_under_another_name(
    torch_backend: None, model: Any
) -> None:
    mean = make_encoder(pooling="mean")
    both = make_encoder(pooling="mean+cls")
    assert mean.model_name == PACKAGED_MODEL  # the names stored before pooling was a setting
    assert both.model_name == f"{PACKAGED_MODEL}+mean-cls"
    assert both.model is mean.model  # one forward pass, pooled otherwise: no second model

    plain, pooled = mean.encode(TEXTS), both.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(plain * pooled, axis=1)
    assert cosines.max() < 0.97  # other vectors, not the mean rounded differently
    assert cosines.min() > 0.5  # still the same texts' meaning

    # The CLS state is the first token's: pooled = unit(unit(mean) + unit(first token)).
    states = model.encode(TEXTS, output_value="token_embeddings")
    first = np.stack([np.asarray(s[0], dtype=np.float32) for s in states])
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    expected = plain + first
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_a_store_never_mixes_poolings_and_a_change_re_embeds_once(torch_backend: None) -> None:
    store = DictStore()
    mean = make_encoder(pooling="mean")
    plain = mean.encode(TEXTS, store=store)
    assert mean.encoded_count == len(TEXTS)

    # Same store, other pooling: nothing is read from the mean's vectors; every text is
    # encoded once and stored under its own name beside them.
    switched = make_encoder(pooling="mean+cls")
    pooled = switched.encode(TEXTS, store=store)
    assert switched.encoded_count == len(TEXTS)
    assert not np.allclose(pooled, plain, atol=1e-3)
    assert {name for name, _ in store.vectors} == {PACKAGED_MODEL, f"{PACKAGED_MODEL}+mean-cls"}

    # A later process with the same setting reads them back and encodes nothing.
    later = make_encoder(pooling="mean+cls")
    np.testing.assert_array_equal(later.encode(TEXTS, store=store), pooled)
    assert later.encoded_count == 0


def test_the_setting_is_read_from_the_environment(
    torch_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert encoder_pooling() == "mean"
    monkeypatch.setenv("TANDEM_ENCODER_POOLING", " Mean+CLS ")
    assert encoder_pooling() == "mean+cls"
    encoder = default_encoder()
    assert (encoder.pooling, encoder.model_name) == ("mean+cls", f"{PACKAGED_MODEL}+mean-cls")
    monkeypatch.setenv("TANDEM_ENCODER_POOLING", "mean")
    assert default_encoder().model_name == PACKAGED_MODEL  # one encoder per pooling
    monkeypatch.setenv("TANDEM_ENCODER_POOLING", "max")
    with pytest.raises(ValueError, match="TANDEM_ENCODER_POOLING"):
        make_encoder()


def test_every_backend_and_pooling_has_its_own_cache_name() -> None:
    names = {
        cache_model_name(PACKAGED_MODEL, backend, pooling)
        for backend in ("torch", "onnx-fp32", "onnx-int8")
        for pooling in ("mean", "mean+cls")
    }
    # onnx-fp32 gives torch's vectors (within 1e-4), so it shares torch's names: 4 in all.
    assert names == {
        PACKAGED_MODEL,
        f"{PACKAGED_MODEL}+mean-cls",
        f"{PACKAGED_MODEL}+onnx-int8",
        f"{PACKAGED_MODEL}+onnx-int8+mean-cls",
    }


def test_an_encoder_made_by_hand_keeps_the_models_mean(model: Any) -> None:
    vectors = Encoder(model, model_name=PACKAGED_MODEL).encode(TEXTS[:1])
    reference = model.encode(TEXTS[:1], normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-6)
