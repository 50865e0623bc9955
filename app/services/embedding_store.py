"""The database-backed embedding cache (the `matching.EmbeddingStore` protocol)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

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
            for content_hash, vector in rows:
                found[content_hash] = np.frombuffer(vector, dtype="<f4").copy()
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Insert new vectors; a row another writer stored meanwhile is left as it is."""
        if not vectors:
            return
        rows = [
            {
                "model_name": model_name,
                "content_hash": content_hash,
                "dimension": int(vector.shape[0]),
                "vector": np.asarray(vector, dtype="<f4").tobytes(),
            }
            for content_hash, vector in vectors.items()
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
