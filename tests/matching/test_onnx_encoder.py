"""The ONNX Runtime encoder: built once from the installed model, fp32 equal to torch's vectors,
int8 close to them and cached under its own model name, and the backend chosen from the CPU."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matching.embeddings import (
    PACKAGED_MODEL,
    Encoder,
    default_encoder,
    make_encoder,
    pooled_vectors,
    resolve_model,
)
from matching.onnx_encoder import (
    BackendError,
    OnnxSentenceModel,
    choose_backend,
    model_file,
)

pytestmark = pytest.mark.semantic
ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(resolve_model(PACKAGED_MODEL))


def demo_texts() -> list[str]:
    """The demo proposals, offers and publications as the app embeds them."""
    texts = []
    for path in sorted((ROOT / "app" / "demo" / "data").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        texts += [f"{p['title']}\n{p['abstract']}" for p in data.get("proposals", [])]
        texts += [f"{o['title']}\n{o['description']}" for o in data.get("offers", [])]
        for user in data.get("users", []):
            texts += [f"{p['title']}\n{p['abstract']}" for p in user.get("publications", [])]
    return texts


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with both variants built once for this module."""
    root = tmp_path_factory.mktemp("xdg-cache")
    model_file(SOURCE, "int8", root / "tandem" / "onnx")
    return root


@pytest.fixture
def built(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The built files, where `make_encoder` looks for them ($XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "tandem" / "onnx"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Every demo text plus a few long ones, in a shuffled order (batches mix lengths)."""
    every = demo_texts()
    every += [" ".join(every[i : i + 4]) for i in range(0, 40, 4)]  # past 256 tokens
    random.Random(3).shuffle(every)
    return every


@pytest.fixture(scope="module")
def torch_vectors(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)


def test_auto_picks_int8_only_where_the_cpu_has_int8_dot_products() -> None:
    assert choose_backend(None, frozenset({"avx2", "avx512f", "avx512_vnni"}))[0] == "onnx-int8"
    assert choose_backend("auto", frozenset({"avx2", "amx_int8"}))[0] == "onnx-int8"
    backend, reason = choose_backend("auto", frozenset({"avx2", "fma", "avx512f"}))
    assert backend == "torch"
    assert "VNNI" in reason
    assert choose_backend("auto", frozenset({"avx_vnni"}), packaged=False)[0] == "torch"


def test_a_named_backend_overrides_the_cpu() -> None:
    assert choose_backend("onnx-fp32", frozenset())[0] == "onnx-fp32"
    assert choose_backend(" ONNX-INT8 ", frozenset())[0] == "onnx-int8"
    assert choose_backend("torch", frozenset({"avx512_vnni"}))[0] == "torch"
    with pytest.raises(BackendError, match="TANDEM_ENCODER_BACKEND"):
        choose_backend("int4", frozenset())
    with pytest.raises(BackendError, match="packaged model only"):
        choose_backend("onnx-int8", frozenset(), packaged=False)


def test_the_build_is_made_once_and_reused(built: Path) -> None:
    int8 = model_file(SOURCE, "int8", built)
    fp32 = model_file(SOURCE, "fp32", built)
    stamps = {path: path.stat().st_mtime_ns for path in (int8, fp32)}
    assert int8.parent == fp32.parent
    assert int8.stat().st_size < fp32.stat().st_size / 2  # int8 weights, fp32 elsewhere
    assert model_file(SOURCE, "int8", built) == int8
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps


def test_onnx_fp32_gives_torchs_vectors(
    built: Path, texts: list[str], torch_vectors: np.ndarray
) -> None:
    onnx = OnnxSentenceModel(model_file(SOURCE, "fp32", built), SOURCE)
    vectors = onnx.encode(texts, batch_size=16)
    assert vectors.shape == torch_vectors.shape
    assert np.abs(vectors - torch_vectors).max() < 1e-4


def test_onnx_int8_stays_close_to_fp32(
    built: Path, texts: list[str], torch_vectors: np.ndarray
) -> None:
    onnx = OnnxSentenceModel(model_file(SOURCE, "int8", built), SOURCE)
    vectors = onnx.encode(texts, batch_size=16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * torch_vectors, axis=1)
    assert cosines.min() >= 0.99
    assert np.abs(vectors - torch_vectors).max() > 1e-4  # it is int8: not the same vectors
    # Activations are quantised per batch, so a text encoded alone is not bit-equal to the
    # same text in a batch; it keeps its meaning (on CPUs without VNNI, where u8 x s8 products
    # can saturate, single elements differ by up to about 0.02).
    one_by_one = np.stack([onnx.encode([text])[0] for text in texts[:5]])
    assert np.sum(one_by_one * vectors[:5], axis=1).min() >= 0.995
    assert np.sum(one_by_one * torch_vectors[:5], axis=1).min() >= 0.99


@pytest.fixture(scope="module")
def torch_mean_cls(model: Any, texts: list[str]) -> np.ndarray:
    return pooled_vectors(model, texts, "mean+cls", batch_size=16)


def test_onnx_fp32_gives_torchs_mean_cls_vectors(
    built: Path, texts: list[str], torch_mean_cls: np.ndarray, torch_vectors: np.ndarray
) -> None:
    onnx = OnnxSentenceModel(model_file(SOURCE, "fp32", built), SOURCE)
    vectors = pooled_vectors(onnx, texts, "mean+cls", batch_size=16)
    assert vectors.shape == torch_mean_cls.shape
    assert np.abs(vectors - torch_mean_cls).max() < 1e-4
    mean, _ = onnx.encode_mean_and_cls(texts, batch_size=16)
    assert np.abs(mean - torch_vectors).max() < 1e-4  # the second output leaves the mean as is


def test_onnx_int8_mean_cls_stays_close_to_fp32(
    built: Path, texts: list[str], torch_mean_cls: np.ndarray
) -> None:
    onnx = OnnxSentenceModel(model_file(SOURCE, "int8", built), SOURCE)
    vectors = pooled_vectors(onnx, texts, "mean+cls", batch_size=16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.sum(vectors * torch_mean_cls, axis=1).min() >= 0.99


def test_int8_mean_cls_vectors_are_cached_under_their_own_model_name(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "onnx-int8")
    monkeypatch.setenv("TANDEM_ENCODER_POOLING", "mean+cls")
    encoder = make_encoder()
    assert (encoder.backend, encoder.pooling) == ("onnx-int8", "mean+cls")
    assert encoder.model_name == f"{PACKAGED_MODEL}+onnx-int8+mean-cls"
    assert make_encoder(backend="onnx-fp32").model_name == f"{PACKAGED_MODEL}+mean-cls"


def test_int8_vectors_are_cached_under_their_own_model_name(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "onnx-int8")
    int8 = make_encoder()
    assert (int8.backend, int8.model_name) == ("onnx-int8", f"{PACKAGED_MODEL}+onnx-int8")
    assert "TANDEM_ENCODER_BACKEND" in int8.backend_reason
    fp32 = make_encoder(backend="onnx-fp32")
    assert fp32.model_name == PACKAGED_MODEL  # the same vectors as torch's, within 1e-4

    first = int8.encode(["Graph neural networks for protein folding", "Solar panel defects"])
    again = int8.encode(["Solar panel defects"])
    assert first.shape == (2, int8.dimension) and int8.encoded_count == 2
    np.testing.assert_array_equal(again[0], first[1])


def test_a_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "gpu")
    with pytest.raises(BackendError):
        make_encoder()


def test_torch_stays_the_encoder_where_asked(
    monkeypatch: pytest.MonkeyPatch, semantic_encoder: Encoder
) -> None:
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "torch")
    encoder = make_encoder()
    assert (encoder.backend, encoder.model_name) == ("torch", PACKAGED_MODEL)
    assert encoder.model is semantic_encoder.model  # the process's one loaded model


def test_the_process_encoder_follows_a_changed_backend_setting(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process's encoder is made once per setting: one made under int8 is never handed
    # out once the setting says torch, nor the other way round (CI once ran a test after
    # another had made the automatic one).
    monkeypatch.delenv("TANDEM_ENCODER_POOLING", raising=False)
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "onnx-int8")
    assert default_encoder().model_name == f"{PACKAGED_MODEL}+onnx-int8"
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", "torch")
    assert (default_encoder().backend, default_encoder().model_name) == ("torch", PACKAGED_MODEL)
    monkeypatch.setenv("TANDEM_ENCODER_BACKEND", " ONNX-int8 ")
    assert default_encoder().backend == "onnx-int8"
