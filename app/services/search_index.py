"""The meaning index of search: per process, a matrix of the stored text vectors of every
public proposal and offer, so that a query finds the items nearest in meaning across the whole
catalogue with one matrix product (10,000 x 384 float32 is 15 MB and about a millisecond).

It is a cache, never the authority on what may be shown: it is rebuilt lazily when the
catalogue version (`app.catalogue_version`, bumped after every committed write a public page
could show) differs from the one it was built under, and the ids it proposes are always
filtered again through the database query of the page (`app.services.search`), so an item
hidden, withdrawn or filtered out since is never returned even by a stale matrix.

The version is read *before* the catalogue, so a matrix built while a write commits is labelled
with the older version and rebuilt on the next search. Without a version store (an engine
`track_writes` does not watch) the matrix is rebuilt for every search.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col

from app.catalogue_version import version_store
from app.services.embedding_store import SqlEmbeddingStore
from app.services.texts import offer_text, proposal_text
from app.services.visibility import visible_offers, visible_proposals
from matching import Encoder
from models import Offer, Organisation, Proposal

T = TypeVar("T")


@dataclass(frozen=True)
class _Kind:
    """One kind's rows: `ids[i]` is the item whose unit text vector is `matrix[i]`."""

    ids: np.ndarray
    matrix: np.ndarray

    def nearest(self, query: np.ndarray, *, threshold: float, limit: int) -> list[int]:
        """Ids of at most `limit` items whose cosine with `query` is at least `threshold`,
        most similar first."""
        if not len(self.ids):
            return []
        similarity = self.matrix @ query.astype(np.float32)
        above = np.flatnonzero(similarity >= threshold)
        if len(above) > limit:
            above = above[np.argpartition(-similarity[above], limit - 1)[:limit]]
        order = above[np.argsort(-similarity[above], kind="stable")]
        return [int(i) for i in self.ids[order]]


@dataclass(frozen=True)
class MeaningIndex:
    version: str | None
    model_name: str
    proposals: _Kind
    offers: _Kind


_BUILT: weakref.WeakKeyDictionary[sa.Engine, dict[str, tuple[str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def for_version(session: Session, name: str, build: Callable[[str | None], T]) -> T:
    """What `build(version)` made for the current catalogue version of `session`'s database,
    kept per process under `name` and made again once the version moved (always, where no
    version store watches the engine). One build at a time: the others wait and reuse it."""
    engine = session.get_bind().engine
    store = version_store(engine)
    version = store.read() if store is not None else None

    def kept() -> T | None:
        entry = _BUILT.get(engine, {}).get(name)
        if entry is not None and version is not None and entry[0] == version:
            return entry[1]
        return None

    found = kept()
    if found is not None:
        return found
    with _LOCK:
        found = kept()
        if found is not None:
            return found
        made = build(version)
        if version is not None:
            _BUILT.setdefault(engine, {})[name] = (version, made)
        return made


def meaning_index(*, session: Session, encoder: Encoder) -> MeaningIndex:
    """The index of the public catalogue as of the current catalogue version, built (and the
    vectors of texts never embedded before encoded and stored through `session`) when the
    version moved since it was last built in this process."""
    return for_version(
        session,
        f"meaning:{encoder.model_name}",
        lambda version: _build(session, encoder, version),
    )


def _build(session: Session, encoder: Encoder, version: str | None) -> MeaningIndex:
    proposals = session.execute(
        sa.select(Proposal.id, Proposal.title, Proposal.abstract, Proposal.data_need)
        .where(*visible_proposals())
        .order_by(col(Proposal.id))
    ).all()
    offers = session.execute(
        sa.select(Offer.id, Offer.title, Offer.description, Offer.dataset_description)
        .join(Organisation, col(Organisation.id) == Offer.organisation_id)
        .where(*visible_offers())
        .order_by(col(Offer.id))
    ).all()
    texts = [proposal_text(row) for row in proposals] + [offer_text(row) for row in offers]  # type: ignore[arg-type]
    vectors = (
        encoder.encode(texts, store=SqlEmbeddingStore(session))
        if texts
        else np.zeros((0, 0), dtype=np.float32)
    )
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    split = len(proposals)
    return MeaningIndex(
        version=version,
        model_name=encoder.model_name,
        proposals=_Kind(np.array([r.id for r in proposals], dtype=np.int64), matrix[:split]),
        offers=_Kind(np.array([r.id for r in offers], dtype=np.int64), matrix[split:]),
    )
