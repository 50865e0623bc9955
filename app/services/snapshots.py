"""The catalogue a re-ranking needs, kept in memory between jobs (one per worker process).

Re-ranking one item used to read the whole catalogue (10,000 offers: seconds) and refit the
lexical vocabulary on every text, for every edit. A worker now keeps the snapshot it built
last (records, corpus, fitted lexical models) and, at the start of each job, brings it up to
date from the database: one cheap query per table lists the ids and `updated_at` of the rows
that take part in matching, only rows that are new or whose `updated_at` moved are read again,
rows that left (deleted, closed, hidden, author suspended) are dropped, and the few decided
matches (introduced or dismissed) are read every time. Only the entries of the rows that
changed are rebuilt and spliced into the kept proposals' and offers' halves (a changed
organisation rebuilds both, a moved introduced match the offers'). Every change to these rows
moves `updated_at` (the ORM's `onupdate`, and every bulk update that changes them sets it), so
the result is the snapshot `corpus.load_snapshot` would read now.

Several workers: each keeps its own copy and checks it against the database inside its own
job, under the re-ranking lock, before using it; a copy left stale by another worker's job is
therefore brought up to date first, whichever worker takes the next job.

The lexical score has no IDF (`corpus.make_matcher`), so a pair's lexical score depends on the
two texts alone: the kept model only has to learn the terms of new texts
(`TfidfSimilarity.extend`), and scores equal a freshly fitted model's within float32 rounding.
Explanations' term weights (IDF) are refitted once a tenth of the texts changed since their
fit: they order the shared terms an explanation names, never a score or a rank.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services.corpus import (
    DecidedMatch,
    OfferSide,
    ProposalSide,
    Snapshot,
    assemble,
    make_matcher,
    offer_side,
    proposal_side,
    read_decided_matches,
)
from app.services.embedding_store import SqlEmbeddingStore
from app.services.visibility import visible_offers, visible_proposals
from matching import Encoder
from matching.engine import Matcher
from matching.lexical import TfidfSimilarity
from matching.scoring import ScoreWeights
from models import Offer, Organisation, Proposal, Publication, User

_CHUNK = 500
# Explanations' IDF is refitted once this share of the texts changed since it was fitted.
TERMS_REFIT_SHARE = 0.1


@dataclass
class _Table:
    """The rows of one table as last read, and the `updated_at` each was read at."""

    rows: dict[int, Any] = field(default_factory=dict)
    stamps: dict[int, datetime] = field(default_factory=dict)

    def sync(self, session: Session, model: type, listing: sa.Select) -> list[Any]:
        """Bring the rows up to date with `listing` (ids and `updated_at` of the rows wanted
        now); returns the rows that changed, as they were and as they are (dropped rows as
        they were)."""
        now = {row_id: stamp for row_id, stamp in session.execute(listing)}
        touched = [self.rows[row_id] for row_id in self.stamps if row_id not in now]
        for row in touched:
            del self.rows[row.id], self.stamps[row.id]
        changed = [row_id for row_id, stamp in now.items() if self.stamps.get(row_id) != stamp]
        touched += [self.rows[row_id] for row_id in changed if row_id in self.rows]
        read: set[int] = set()
        # Read through a second session on the same connection (same transaction), then close
        # it: the kept objects are detached, fully loaded, and never expired by the caller.
        reader = Session(bind=session.connection(), expire_on_commit=False)
        try:
            for start in range(0, len(changed), _CHUNK):
                ids = changed[start : start + _CHUNK]
                for row in reader.exec(select(model).where(col(model.id).in_(ids))):
                    self.rows[row.id] = row
                    self.stamps[row.id] = now[row.id]
                    touched.append(row)
                    read.add(row.id)
        finally:
            reader.close()
        # A row listed but deleted between the two reads is gone.
        for row_id in changed:
            if row_id not in read:
                self.rows.pop(row_id, None)
                self.stamps.pop(row_id, None)
        return touched


@dataclass
class _Prepared:
    key: tuple[Any, ...]
    tables: dict[str, _Table]
    snapshot: Snapshot | None = None
    lexical: TfidfSimilarity | None = None
    terms: TfidfSimilarity | None = None
    changed_since_terms: int = 0
    decided: list[DecidedMatch] = field(default_factory=list)
    proposals: ProposalSide | None = None
    offers: OfferSide | None = None
    texts: set[str] = field(default_factory=set)


class SnapshotCache:
    """One process's prepared catalogue (see the module docstring). Thread-safe; holds one
    database's catalogue at a time (a job on another database starts it over)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prepared: _Prepared | None = None
        self.reads = 0  # rows read again, over this cache's life (for tests and benchmarks)

    def clear(self) -> None:
        with self._lock:
            self._prepared = None

    def matcher(
        self,
        *,
        session: Session,
        encoder: Encoder,
        weights: ScoreWeights | None = None,
        today: date | None = None,
    ) -> tuple[Snapshot, Matcher]:
        """The snapshot of the catalogue as `session` sees it now, and a matcher over it
        equal in scores to `corpus.make_matcher`'s (see the module docstring)."""
        session.flush()
        bind = session.get_bind()
        key = (str(bind.url), id(bind), encoder.model_name)
        with self._lock:
            prepared = self._prepared
            if prepared is None or prepared.key != key:
                prepared = self._prepared = _Prepared(key=key, tables=defaultdict(_Table))
            touched = self._sync(session, prepared)
            changed = sum(len({row.id for row in rows}) for rows in touched.values())
            decided = read_decided_matches(session)
            decided_changed = decided != prepared.decided
            prepared.decided = decided
            tables = prepared.tables
            everything = prepared.snapshot is None or bool(touched["organisation"])
            # Proposals to read again: their own row, their author or a publication changed.
            authors = {row.id for row in touched["user"]}
            authors.update(row.author_id for row in touched["publication"])
            proposals = {row.id for row in touched["proposal"]}
            if authors:
                proposals.update(
                    p.id for p in tables["proposal"].rows.values() if p.author_id in authors
                )
            if everything or proposals:
                publications: dict[int, list[Publication]] = defaultdict(list)
                for publication in tables["publication"].rows.values():
                    publications[publication.author_id].append(publication)
                for listed in publications.values():
                    listed.sort(key=lambda p: (-p.year, p.id))

                def proposals_of(rows: list[Any]) -> ProposalSide:
                    return proposal_side(
                        proposals=rows,
                        users=tables["user"].rows,
                        organisations=tables["organisation"].rows,
                        publications=publications,
                    )

                prepared.proposals = _splice(
                    None if everything else prepared.proposals,
                    tables["proposal"].rows,
                    proposals,
                    proposals_of,
                )
            offers = {row.id for row in touched["offer"]}
            if everything or decided_changed or offers:

                def offers_of(rows: list[Any]) -> OfferSide:
                    return offer_side(
                        offers=rows, organisations=tables["organisation"].rows, decided=decided
                    )

                # Capacity left depends on every introduced match: rebuilt whole when they move.
                prepared.offers = _splice(
                    None if everything or decided_changed else prepared.offers,
                    tables["offer"].rows,
                    offers,
                    offers_of,
                )
            snapshot = prepared.snapshot
            if snapshot is None or changed or decided_changed:
                assert prepared.proposals is not None and prepared.offers is not None
                snapshot = assemble(prepared.proposals, prepared.offers, decided)
                prepared.snapshot = snapshot
            texts = [*snapshot.corpus.proposal_texts, *snapshot.corpus.offer_texts]
            if prepared.lexical is None or prepared.terms is None:
                fresh = make_matcher(session=session, encoder=encoder, snapshot=snapshot)
                prepared.lexical, prepared.terms = fresh.lexical, fresh.terms
                prepared.changed_since_terms = 0
            else:
                # Only texts new since the last job (kept texts are the same string objects).
                prepared.lexical.extend([t for t in texts if t not in prepared.texts])
                prepared.changed_since_terms += changed
                if prepared.changed_since_terms > TERMS_REFIT_SHARE * max(len(texts), 1):
                    refitted = make_matcher(session=session, encoder=encoder, snapshot=snapshot)
                    prepared.terms = refitted.terms
                    prepared.changed_since_terms = 0
            prepared.texts = set(texts)
            matcher = Matcher(
                encoder,
                weights=weights,
                lexical=prepared.lexical,
                terms=prepared.terms,
                store=SqlEmbeddingStore(session),
                today=today,
            )
        return snapshot, matcher

    def warm(self, *, session: Session, encoder: Encoder) -> Snapshot:
        """Prepare the catalogue before the first job asks for it (a worker's start): read it,
        fit the lexical model and bring every text's vector into the encoder's memory
        (embedding those without a stored vector, as that job would). Flushes, never
        commits."""
        snapshot, matcher = self.matcher(session=session, encoder=encoder)
        corpus = snapshot.corpus
        publications = [text for texts in corpus.author_publications for text in texts]
        for texts in (corpus.offer_texts, corpus.proposal_texts, publications):
            encoder.encode(texts, store=matcher.store)
        return snapshot

    def _sync(self, session: Session, prepared: _Prepared) -> dict[str, list[Any]]:
        tables = prepared.tables
        proposals = select(Proposal.id, Proposal.updated_at).where(*visible_proposals())
        authors = select(Proposal.author_id).where(*visible_proposals())
        changes = {"proposal": tables["proposal"].sync(session, Proposal, proposals)}
        changes["offer"] = tables["offer"].sync(
            session, Offer, select(Offer.id, Offer.updated_at).where(*visible_offers())
        )
        changes["user"] = tables["user"].sync(
            session, User, select(User.id, User.updated_at).where(col(User.id).in_(authors))
        )
        changes["organisation"] = tables["organisation"].sync(
            session, Organisation, select(Organisation.id, Organisation.updated_at)
        )
        changes["publication"] = tables["publication"].sync(
            session,
            Publication,
            select(Publication.id, Publication.updated_at).where(
                col(Publication.author_id).in_(authors)
            ),
        )
        self.reads += sum(len({row.id for row in rows}) for rows in changes.values())
        return changes


def _by_id(rows: Iterable[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: row.id)


Side = TypeVar("Side", ProposalSide, OfferSide)


def _splice(
    old: Side | None, rows: dict[int, Any], changed: set[int], build: Callable[[list[Any]], Side]
) -> Side:
    """The side of `rows` (id -> row, all of them), built anew only for the rows whose ids are
    in `changed` or new since `old`; the others' entries are taken from `old` as they are.
    Without `old`, or when most rows changed, every row is built."""
    ids = sorted(rows)
    if old is None or len(changed) * 4 > len(ids):
        return build([rows[i] for i in ids])
    old_ids = [row.id for row in _rows_of(old)]
    old_at = {row_id: n for n, row_id in enumerate(old_ids)}
    fresh_ids = [i for i in ids if i in changed or i not in old_at]
    fresh = build([rows[i] for i in fresh_ids])
    fresh_at = {row_id: len(old_ids) + n for n, row_id in enumerate(fresh_ids)}
    order = np.array([fresh_at.get(i, old_at.get(i, -1)) for i in ids], dtype=np.int64)
    return _take(old, fresh, order)


def _rows_of(side: ProposalSide | OfferSide) -> list[Any]:
    return side.proposals if isinstance(side, ProposalSide) else side.offers


def _take(old: Any, fresh: Any, order: np.ndarray) -> Any:
    """`old`'s entries followed by `fresh`'s, taken in `order`: field by field for the
    dataclasses of a side (arrays keep `old`'s dtype; lists and tuples keep their type)."""
    if dataclasses.is_dataclass(old):
        return type(old)(
            **{
                f.name: _take(getattr(old, f.name), getattr(fresh, f.name), order)
                for f in dataclasses.fields(old)
            }
        )
    if isinstance(old, np.ndarray):
        return np.concatenate([old, fresh.astype(old.dtype, copy=False)])[order]
    combined = [*old, *fresh]
    return type(old)(combined[i] for i in order)


SNAPSHOTS = SnapshotCache()
"""This process's cache: each `flask worker` (and the embedded queue's threads) uses it."""
