"""Bulk embedding before a long command ranks, with a progress bar on standard error."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlmodel import Session

from app.queue import BulkEmbedding, BulkEmbeddingFailed, get_queue
from app.services.corpus import load_snapshot
from matching import Encoder


class _Bar:
    """A click progress bar over texts, opened when the total is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if not total:
                return
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr, width=30)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def embed_corpus(*, session: Session, encoder: Encoder) -> BulkEmbedding:
    """Store a vector for every matchable text (proposals, offers, the authors'
    publications) that has none: on Redis, on `flask --app app worker` processes in
    parallel; otherwise here. The ranking that follows then finds every vector stored."""
    corpus = load_snapshot(session=session).corpus
    texts = [
        *corpus.proposal_texts,
        *corpus.offer_texts,
        *(text for publications in corpus.author_publications for text in publications),
    ]
    queue = get_queue()
    bar = _Bar("Embedding texts" + (" on workers" if queue.on_workers else ""))
    try:
        done = queue.embed_bulk(session=session, encoder=encoder, texts=texts, progress=bar)
    except BulkEmbeddingFailed as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    if done.texts:
        where = "worker jobs" if done.on_workers else "chunks here"
        click.echo(f"Embedded {done.texts} new texts ({done.chunks} {where}).", err=True)
    return done
