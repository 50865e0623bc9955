"""The database-backed embedding cache (the `matching.EmbeddingStore` protocol), and the
bulk-embedding work over it: which texts still need a vector, in length-sorted chunks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from matching import Encoder
from matching.embeddings import content_hash
from models import Embedding

_CHUNK = 500


class SqlEmbeddingStore:
    """Reads and writes `Embedding` rows through the caller's session (never commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), _CHUNK):
            chunk = list(hashes[start : start + _CHUNK])
            rows = self.session.exec(
                select(Embedding.content_hash, Embedding.vector).where(
                    Embedding.model_name == model_name, Embedding.content_hash.in_(chunk)
                )
            )
            for digest, vector in rows:
                found[digest] = np.frombuffer(vector, dtype="<f4").copy()
        return found

    def stored(self, model_name: str, hashes: Sequence[str]) -> set[str]:
        """Which of `hashes` have a stored vector (without reading the vectors)."""
        found: set[str] = set()
        for start in range(0, len(hashes), _CHUNK):
            chunk = list(hashes[start : start + _CHUNK])
            found.update(
                self.session.exec(
                    select(Embedding.content_hash).where(
                        Embedding.model_name == model_name, col(Embedding.content_hash).in_(chunk)
                    )
                )
            )
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Insert new vectors; a row another writer stored meanwhile is left as it is."""
        if not vectors:
            return
        rows = [
            {
                "model_name": model_name,
                "content_hash": digest,
                "dimension": int(vector.shape[0]),
                "vector": np.asarray(vector, dtype="<f4").tobytes(),
            }
            for digest, vector in vectors.items()
        ]
        dialect = self.session.get_bind().dialect.name
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
        table = Embedding.__table__
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            if insert is not None:
                self.session.execute(insert(table).values(chunk).on_conflict_do_nothing())
            else:
                self.session.execute(sa.insert(table), chunk)


def missing_chunks(
    *, session: Session, model_name: str, texts: Iterable[str], chunk_size: int
) -> list[list[str]]:
    """The distinct texts among `texts` that have no stored vector for `model_name`, sorted
    by length and cut into chunks of at most `chunk_size`: the unit of bulk-embedding work.

    Sorting by length makes each chunk (and each model batch inside it) hold texts of similar
    length, so little of a batch is padding; a chunk is a job any worker can take."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    by_hash = {content_hash(text): text for text in texts}
    stored = SqlEmbeddingStore(session).stored(model_name, list(by_hash))
    missing = sorted(
        (text for digest, text in by_hash.items() if digest not in stored),
        key=lambda text: (len(text), text),
    )
    return [missing[start : start + chunk_size] for start in range(0, len(missing), chunk_size)]


def embed_missing(*, session: Session, encoder: Encoder, texts: Sequence[str]) -> int:
    """Embed whichever of `texts` has no stored vector and store it (flushes, never commits);
    returns how many texts were stored.

    Safe to run twice on the same texts, concurrently too (a retried or duplicated job): a
    vector is stored once per (model, content hash), a second writer's insert does nothing."""
    store = SqlEmbeddingStore(session)
    by_hash = {content_hash(text): text for text in texts}
    stored = store.stored(encoder.model_name, list(by_hash))
    todo = [digest for digest in by_hash if digest not in stored]
    if not todo:
        return 0
    vectors = encoder.encode([by_hash[digest] for digest in todo])
    store.put_many(encoder.model_name, dict(zip(todo, vectors, strict=True)))
    session.flush()
    return len(todo)
