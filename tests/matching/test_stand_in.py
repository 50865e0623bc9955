"""The stand-in encoder: deterministic, unit vectors, word overlap ranks higher, the
production encoder's shape and caching, and its own name in the embedding cache."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sqlmodel import Session, select

from app.services.embedding_store import SqlEmbeddingStore
from matching import Encoder, StandInEncoder, content_hash
from matching.embeddings import PACKAGED_MODEL
from matching.stand_in import STAND_IN_MODEL
from models import Embedding

TEXTS = [
    "Offline reinforcement learning for grid battery dispatch",
    "Protein language models for enzyme design",
    "",
    "the and of it",
]


def test_same_text_same_vector_in_another_process() -> None:
    here = StandInEncoder().encode(TEXTS[:1])[0]
    script = (
        "import sys, numpy as np; from matching import StandInEncoder; "
        f"sys.stdout.write(StandInEncoder().encode([{TEXTS[0]!r}])[0].tobytes().hex())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert np.frombuffer(bytes.fromhex(other), dtype=np.float32).tolist() == here.tolist()


def test_rows_have_unit_norm_even_without_words() -> None:
    vectors = StandInEncoder().encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_texts_sharing_words_are_closer_than_unrelated_ones() -> None:
    query, related, unrelated = StandInEncoder().encode(
        [
            "Reinforcement learning for battery storage on the electricity grid",
            "Offline reinforcement learning from grid battery logs",
            "Medieval manuscript transcription with handwriting recognition",
        ]
    )
    assert query @ related > 0.3
    assert query @ related > query @ unrelated + 0.2


@pytest.mark.semantic
def test_shape_and_dtype_of_the_production_encoder(encoder: Encoder) -> None:
    stand_in = StandInEncoder()
    assert isinstance(stand_in, Encoder)
    assert stand_in.dimension == encoder.dimension
    real, fake = encoder.encode(TEXTS), stand_in.encode(TEXTS)
    assert fake.shape == real.shape and fake.dtype == real.dtype
    assert stand_in.encode([]).shape == encoder.encode([]).shape == (0, encoder.dimension)


def test_its_vectors_are_cached_under_a_name_no_real_model_has() -> None:
    assert StandInEncoder().model_name == STAND_IN_MODEL
    assert STAND_IN_MODEL != PACKAGED_MODEL
    # Other parameters give other vectors, hence another cache key.
    assert StandInEncoder(seed=1).model_name != STAND_IN_MODEL
    assert StandInEncoder(dimension=64).model_name != STAND_IN_MODEL


def test_counts_only_the_texts_it_had_to_encode() -> None:
    stand_in = StandInEncoder()
    stand_in.encode(TEXTS[:2])
    assert stand_in.knows(TEXTS[0]) and not stand_in.knows("something else entirely")
    stand_in.encode([*TEXTS[:2], "something else entirely"])
    assert stand_in.encoded_count == 3


def test_stores_and_reads_back_through_the_sql_store(session: Session) -> None:
    store = SqlEmbeddingStore(session)
    # A real model's vector for the same text must never be read as the stand-in's.
    decoy = np.zeros(384, dtype=np.float32)
    decoy[5] = 1.0
    store.put_many(PACKAGED_MODEL, {content_hash(TEXTS[0]): decoy})
    first = StandInEncoder()
    written = first.encode(TEXTS[:2], store=store)
    session.commit()
    assert first.encoded_count == 2
    assert not np.array_equal(written[0], decoy)

    later = StandInEncoder()
    read = later.encode(TEXTS[:2], store=SqlEmbeddingStore(session))
    assert later.encoded_count == 0
    np.testing.assert_array_equal(read, written)
    names = session.exec(
        select(Embedding.model_name).where(Embedding.content_hash == content_hash(TEXTS[1]))
    ).all()
    assert names == [STAND_IN_MODEL]


def test_reading_remembered_vectors_never_empties_the_memory() -> None:
    """Only vectors new to memory count towards its limit: a recompute reads the same texts
    block after block, and must not make the encoder forget the others."""
    encoder = StandInEncoder(memory_limit=4)
    encoder.encode(["alpha", "beta", "gamma"])
    encoder.encode(["alpha", "beta"])
    assert all(encoder.knows(text) for text in ("alpha", "beta", "gamma"))
    encoder.encode(["delta", "epsilon"])  # past the limit: it starts over
    assert encoder.knows("delta") and not encoder.knows("gamma")
