"""The database keeps embeddings, so a new process re-encodes nothing it has seen."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, func, select

from app.services.embedding_store import SqlEmbeddingStore
from matching import Encoder
from models import Embedding

TEXTS = ["Federated learning for hospital triage.", "Satellite imagery of crop yields."]


def test_vectors_survive_in_the_database(session: Session, fresh_encoder: Encoder) -> None:
    store = SqlEmbeddingStore(session)
    first = fresh_encoder.encode(TEXTS, store=store)
    session.commit()
    assert session.exec(select(func.count()).select_from(Embedding)).one() == 2

    # Another process: the same model, an empty in-memory cache.
    new_process = Encoder(fresh_encoder.model, model_name=fresh_encoder.model_name)
    again = new_process.encode(list(reversed(TEXTS)), store=SqlEmbeddingStore(session))
    assert new_process.encoded_count == 0
    np.testing.assert_array_equal(again, first[::-1])


def test_storing_the_same_vector_twice_is_harmless(session: Session) -> None:
    store = SqlEmbeddingStore(session)
    vector = np.arange(4, dtype=np.float32)
    store.put_many("m", {"h": vector})
    store.put_many("m", {"h": vector})
    session.commit()
    np.testing.assert_array_equal(store.get_many("m", ["h", "missing"])["h"], vector)
    assert store.get_many("other-model", ["h"]) == {}
