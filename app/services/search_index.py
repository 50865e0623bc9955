"""The meaning index of search: per process, a matrix of the stored text vectors of every
public proposal and offer, so that a query finds the items nearest in meaning across the whole
catalogue with one matrix product (10,000 x 384 float32 is 15 MB and about a millisecond).

It is a cache, never the authority on what may be shown: it is made again lazily when the
catalogue version (`app.catalogue_version`, bumped after every committed write a public page
could show) differs from the one it was made under, and the ids it proposes are always
filtered again through the database query of the page (`app.services.search`), so an item
hidden, withdrawn or filtered out since is never returned even by a stale matrix.

Made again means updated, not rebuilt (`update_index`): only (id, updated_at) of the public
rows is read (`updated_at` moves on every ORM and Core update), the vectors of unchanged rows
are kept, and only the texts of new or changed rows are read and looked up in the embedding
store; a whole build (every text read and every vector looked up: about 2 s at 10,000 x 2,000)
happens only for the first index of a process, another model, or when most rows changed. A
write that changes a text without moving `updated_at` (raw SQL) keeps the old vector until
that row changes again or a process starts: the item may be missed by meaning, never shown.

The version is read *before* the catalogue, so a matrix built while a write commits is labelled
with the older version and rebuilt on the next search. Without a version store (an engine
`track_writes` does not watch) the matrix is rebuilt for every search.
"""

from __future__ import annotations

import itertools
import operator
import threading
import weakref
from collections.abc import Callable, Sequence
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
    stamps: tuple[Any, ...] = ()
    """`updated_at` of each row, as read with the text its vector is of."""

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
    read_texts: int = 0
    """How many rows' texts making this index read: every public row for a whole build, the
    new and changed ones only for an update."""

    @property
    def dimension(self) -> int:
        return max(self.proposals.matrix.shape[1], self.offers.matrix.shape[1])


_BUILT: weakref.WeakKeyDictionary[sa.Engine, dict[str, tuple[str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()
_KINDS = (Proposal, Offer)
_CHUNK = 500
"""Ids per statement when reading the texts of changed rows (SQLite allows 999 parameters)."""


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
    """The index of the public catalogue as of the current catalogue version, made (and the
    vectors of texts never embedded before encoded and stored through `session`) when the
    version moved since it was last made in this process: updated from the index kept for
    the previous version where there is one (`update_index`), else built whole."""
    name = f"meaning:{encoder.model_name}"
    engine = session.get_bind().engine

    def make(version: str | None) -> MeaningIndex:
        entry = _BUILT.get(engine, {}).get(name)  # under `for_version`'s lock
        previous = entry[1] if entry is not None else None
        return update_index(session=session, encoder=encoder, version=version, previous=previous)

    return for_version(session, name, make)


def _visible(model: type[Proposal] | type[Offer], *columns: Any) -> sa.Select:
    """(id, updated_at, *columns) of the public rows of one kind, in id order; `updated_at`
    as the driver returns it (only compared for equality: no conversion per row)."""
    stamp = sa.type_coerce(col(model.updated_at), sa.types.NullType()).label("updated_at")
    statement = sa.select(col(model.id), stamp, *columns)
    if model is Offer:
        statement = statement.join(
            Organisation, col(Organisation.id) == Offer.organisation_id
        ).where(*visible_offers())
    else:
        statement = statement.where(*visible_proposals())
    return statement.order_by(col(model.id))


def _texts(model: type[Proposal] | type[Offer]) -> tuple[Any, ...]:
    if model is Offer:
        return (Offer.title, Offer.description, Offer.dataset_description)
    return (Proposal.title, Proposal.abstract, Proposal.data_need)


def _text(model: type[Proposal] | type[Offer], row: Any) -> str:
    return offer_text(row) if model is Offer else proposal_text(row)  # type: ignore[arg-type]


def _encode(session: Session, encoder: Encoder, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = encoder.encode(texts, store=SqlEmbeddingStore(session))
    return np.ascontiguousarray(vectors, dtype=np.float32)


def build_index(*, session: Session, encoder: Encoder, version: str | None) -> MeaningIndex:
    """The whole index: every public row's texts read and looked up (or encoded) at once."""
    rows = {model: session.execute(_visible(model, *_texts(model))).all() for model in _KINDS}
    texts = [_text(model, row) for model in _KINDS for row in rows[model]]
    matrix = _encode(session, encoder, texts)
    split = len(rows[Proposal])
    return MeaningIndex(
        version=version,
        model_name=encoder.model_name,
        proposals=_kind(rows[Proposal], matrix[:split]),
        offers=_kind(rows[Offer], matrix[split:]),
        read_texts=len(texts),
    )


def _kind(rows: Sequence[Any], matrix: np.ndarray) -> _Kind:
    return _Kind(
        np.array([row.id for row in rows], dtype=np.int64),
        matrix,
        tuple(row.updated_at for row in rows),
    )


def _public(session: Session, model: type[Proposal] | type[Offer]) -> tuple[np.ndarray, tuple]:
    """The ids (ascending) and `updated_at` of the public rows of one kind."""
    rows = session.connection().execute(_visible(model)).all()  # plain rows, no ORM layer
    ids, stamps = tuple(zip(*rows, strict=True)) if rows else ((), ())
    return np.array(ids, dtype=np.int64), stamps


def _unchanged(old: _Kind, ids: np.ndarray, stamps: tuple) -> np.ndarray:
    """For each public row: whether `old` holds its id with the same `updated_at`."""
    if np.array_equal(ids, old.ids):
        before = old.stamps
    else:  # both in id order: find each id among the old ones
        at = np.minimum(np.searchsorted(old.ids, ids), max(len(old.ids) - 1, 0))
        held = (old.ids[at] == ids) if len(old.ids) else np.zeros(len(ids), dtype=bool)
        before = tuple(
            old.stamps[a] if h else None for a, h in zip(at.tolist(), held.tolist(), strict=True)
        )
    return np.fromiter(map(operator.eq, stamps, before), dtype=bool, count=len(ids))


def update_index(
    *, session: Session, encoder: Encoder, version: str | None, previous: MeaningIndex | None
) -> MeaningIndex:
    """The index for `version` made from `previous` (that of an earlier version): only
    (id, updated_at) of the public rows is read; rows whose pair is unchanged keep their
    vector, ids no longer public are dropped, and only the texts of new or changed rows are
    read and looked up. Same ids and matrix as `build_index`; `previous` is never modified
    (another thread may still be searching it). Built whole where there is nothing to start
    from, the model differs, or most rows changed."""
    dimension = 0 if previous is None else previous.dimension
    if previous is None or previous.model_name != encoder.model_name or not dimension:
        return build_index(session=session, encoder=encoder, version=version)
    kept = {Proposal: previous.proposals, Offer: previous.offers}
    public = {model: _public(session, model) for model in _KINDS}
    same = {model: _unchanged(kept[model], *public[model]) for model in _KINDS}
    changed = {model: public[model][0][~same[model]].tolist() for model in _KINDS}
    total = sum(len(ids) for ids, _ in public.values())
    if not total or 2 * sum(len(ids) for ids in changed.values()) > total:  # little to keep
        return build_index(session=session, encoder=encoder, version=version)

    fresh: dict[Any, dict[int, tuple[Any, int]]] = {model: {} for model in _KINDS}
    texts: list[str] = []
    for model in _KINDS:
        ids = changed[model]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            statement = _visible(model, *_texts(model)).where(col(model.id).in_(chunk))
            for row in session.execute(statement):
                fresh[model][row.id] = (row.updated_at, len(texts))
                texts.append(_text(model, row))
    vectors = _encode(session, encoder, texts)

    made = {}
    for model in _KINDS:
        old, (ids, stamps), keep = kept[model], public[model], same[model]
        if keep.all() and len(ids) == len(old.ids):
            made[model] = old  # the same rows: every pair unchanged, none dropped
            continue
        when = list(stamps)
        new_from = []  # where each changed row's vector is in `vectors`, -1: not public now
        for n in np.flatnonzero(~keep).tolist():
            stamp, at = fresh[model].get(int(ids[n]), (None, -1))
            when[n] = stamp  # the updated_at read with the text
            new_from.append(at)
        is_new = np.zeros(len(ids), dtype=bool)
        is_new[np.flatnonzero(~keep)[np.array(new_from, dtype=np.int64) >= 0]] = True
        chosen = keep | is_new
        row = np.cumsum(chosen) - 1  # each chosen row's place in the new matrix
        matrix = np.empty((int(chosen.sum()), dimension), dtype=np.float32)
        if keep.any():
            matrix[row[keep]] = old.matrix[np.searchsorted(old.ids, ids[keep])]
        if is_new.any():
            matrix[row[is_new]] = vectors[[at for at in new_from if at >= 0]]
        made[model] = _Kind(ids[chosen], matrix, tuple(itertools.compress(when, chosen)))
    return MeaningIndex(
        version=version,
        model_name=encoder.model_name,
        proposals=made[Proposal],
        offers=made[Offer],
        read_texts=len(texts),
    )
