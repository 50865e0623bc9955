"""Bulk embedding before a long command ranks: the texts without a stored vector, in
length-sorted chunks, embedded here (embedded or immediate queue) or by `flask --app app
worker` processes on Redis; a chunk embedded twice stores each vector once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from flask import Flask
from sqlmodel import Session, func, select

from app import create_app
from app import queue as queue_module
from app.queue import Queue
from app.services.corpus import load_snapshot
from app.services.embedding_store import SqlEmbeddingStore, embed_missing, missing_chunks
from matching.embeddings import content_hash
from matching.stand_in import StandInEncoder
from models import Embedding, Match
from tests.app.workers import start_worker
from tests.conftest import needs_redis

WORKER_DEADLINE_S = 120


def _stored(session: Session, model_name: str) -> dict[str, np.ndarray]:
    session.expire_all()
    rows = session.exec(
        select(Embedding.content_hash, Embedding.vector).where(Embedding.model_name == model_name)
    )
    return {digest: np.frombuffer(vector, dtype="<f4") for digest, vector in rows}


def test_chunks_hold_only_unstored_distinct_texts_sorted_by_length(session: Session) -> None:
    encoder = StandInEncoder()
    embed_missing(session=session, encoder=encoder, texts=["already stored", "also stored"])
    texts = ["a much longer text than the others", "short", "already stored", "mid length"]
    texts += ["short", "tiny", "also stored", "the second longest text here"]

    chunks = missing_chunks(
        session=session, model_name=encoder.model_name, texts=texts, chunk_size=2
    )

    assert chunks == [
        ["tiny", "short"],
        ["mid length", "the second longest text here"],
        ["a much longer text than the others"],
    ]
    # Another model's vectors are not this model's.
    assert (
        sum(
            map(
                len,
                missing_chunks(
                    session=session, model_name="another-model", texts=texts, chunk_size=2
                ),
            )
        )
        == 7
    )


def test_a_chunk_embedded_twice_stores_each_vector_once(app: Flask, session: Session) -> None:
    """A retried job (the first run committed, or both ran at once and computed the same
    vectors): the second writes nothing and fails nothing."""
    encoder = StandInEncoder()
    chunk = ["grid battery dispatch", "crop yield from satellites", "grid battery dispatch"]
    assert embed_missing(session=session, encoder=encoder, texts=chunk) == 2
    session.commit()
    assert embed_missing(session=session, encoder=encoder, texts=chunk) == 0

    with Session(app.extensions["tandem.engine"]) as late:
        # The duplicate job had found nothing stored and computed the same vectors.
        vectors = dict(zip(map(content_hash, chunk[:2]), encoder.encode(chunk[:2]), strict=True))
        SqlEmbeddingStore(late).put_many(encoder.model_name, vectors)
        late.commit()

    stored = _stored(session, encoder.model_name)
    assert sorted(stored) == sorted(map(content_hash, chunk[:2]))
    count = session.exec(select(func.count()).select_from(Embedding)).one()
    assert count == 2


def _catalogue(
    make_user: Callable[..., Any], make_proposal: Callable[..., Any], make_offer: Callable[..., Any]
) -> None:
    for number in range(4):
        author = make_user(email=f"author{number}@uni{number}.example.org")
        make_proposal(
            author_id=author.id,
            title=f"Battery dispatch study {number}",
            abstract="Offline reinforcement learning for grid batteries " * (number + 1),
        )
    for number in range(3):
        make_offer(
            title=f"H100 hours {number}",
            description="GPU hours for reinforcement learning on energy data " * (number + 1),
        )


def test_recompute_embeds_here_without_workers(
    app: Flask,
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    """On the immediate (or embedded) queue the command embeds the chunks itself, with a
    progress bar, then ranks."""
    app.extensions["tandem.encoder"] = encoder = StandInEncoder()
    _catalogue(make_user, make_proposal, make_offer)

    result = app.test_cli_runner().invoke(args=["match", "recompute"])

    assert result.exit_code == 0, result.output
    assert "Embedding texts" in result.output
    assert "Embedded 7 new texts (1 chunks here)." in result.output
    assert len(_stored(session, encoder.model_name)) == 7
    assert session.exec(select(func.count()).select_from(Match)).one() > 0


@contextmanager
def _workers(app: Flask, tmp_path: Path, count: int) -> Iterator[None]:
    """`count` real `flask --app app worker` processes on the app's Redis queue and
    database, with the stand-in encoder; stopped with SIGTERM."""
    queue: Queue = app.extensions["tandem.queue"]
    events = redis.Redis.from_url(app.config["REDIS_URL"]).pubsub(ignore_subscribe_messages=True)
    events.subscribe(queue.events_channel)
    workers = []
    try:
        for number in range(count):
            workers.append(
                start_worker(app, tmp_path, f"worker{number}.log", TANDEM_MODEL="stand-in")
            )
        ready, deadline = 0, time.monotonic() + WORKER_DEADLINE_S
        while ready < count:
            left = deadline - time.monotonic()
            assert left > 0, "a worker never said it was ready"
            message = events.get_message(timeout=left)
            ready += message is not None and message["data"].startswith(b"ready worker")
        yield
    finally:
        events.close()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)


@needs_redis
def test_recompute_on_redis_has_worker_processes_embed_the_chunks(
    app: Flask,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    """`flask --app app match recompute` on Redis: the new texts are cut into jobs that two
    worker processes take; the command waits for them, then ranks with their vectors."""
    monkeypatch.setattr(queue_module, "EMBED_CHUNK", 2)
    queued = create_app(
        {
            **app.config,
            "TANDEM_QUEUE": "redis",
            "TANDEM_QUEUE_NAME": f"tandem-test-{uuid.uuid4().hex}",
            "REDIS_URL": os.environ["REDIS_URL"],
        }
    )
    encoder = StandInEncoder()
    queued.extensions["tandem.encoder"] = encoder
    queue: Queue = queued.extensions["tandem.queue"]
    _catalogue(make_user, make_proposal, make_offer)
    try:
        with _workers(queued, tmp_path, 2):
            result = queued.test_cli_runner().invoke(args=["match", "recompute"])
        logs = "\n".join(p.read_text() for p in tmp_path.glob("worker*.log"))
        assert result.exit_code == 0, f"{result.output}\n{logs}"
        assert "Embedding texts on workers" in result.output
        assert "Embedded 7 new texts (4 worker jobs)." in result.output
        assert logs.count("tandem.embed") >= 4, logs
        stored = _stored(session, encoder.model_name)
        assert len(stored) == 7
        # The workers stored the vectors of the corpus's texts, the ones this process
        # would have computed.
        corpus = load_snapshot(session=session).corpus
        texts = [*corpus.proposal_texts, *corpus.offer_texts]
        expected = StandInEncoder().encode(texts)
        for text, vector in zip(texts, expected, strict=True):
            np.testing.assert_allclose(stored[content_hash(text)], vector, atol=1e-6)
        assert encoder.encoded_count == 0, "nothing was embedded in the command's process"
        assert session.exec(select(func.count()).select_from(Match)).one() > 0
        assert queue.huey.pending_count() == 0
    finally:
        queue.huey.flush()
        queued.extensions["tandem.engine"].dispose()
