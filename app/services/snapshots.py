"""The catalogue a re-ranking needs, kept in memory between jobs (one per worker process).

Re-ranking one item used to read the whole catalogue (10,000 offers: seconds) and refit the
lexical vocabulary on every text, for every edit. A worker now keeps the snapshot it built
last (records, corpus, fitted lexical models) and, at the start of each job, brings it up to
date from the database: one cheap query per table lists the ids and `updated_at` of the rows
that take part in matching, only rows that are new or whose `updated_at` moved are read again,
rows that left (deleted, closed, hidden, author suspended) are dropped, and the few decided
matches (introduced or dismissed) are read every time. Every change to these rows moves
`updated_at` (the ORM's `onupdate`, and every bulk update that changes them sets it), so the
result is the snapshot `corpus.load_snapshot` would read now.

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

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

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

    def sync(self, session: Session, model: type, listing: sa.Select) -> int:
        """Bring the rows up to date with `listing` (ids and `updated_at` of the rows wanted
        now); returns how many rows were read again or dropped."""
        now = {row_id: stamp for row_id, stamp in session.execute(listing)}
        gone = [row_id for row_id in self.stamps if row_id not in now]
        for row_id in gone:
            del self.rows[row_id], self.stamps[row_id]
        changed = [row_id for row_id, stamp in now.items() if self.stamps.get(row_id) != stamp]
        # Read through a second session on the same connection (same transaction), then close
        # it: the kept objects are detached, fully loaded, and never expired by the caller.
        reader = Session(bind=session.connection(), expire_on_commit=False)
        try:
            for start in range(0, len(changed), _CHUNK):
                ids = changed[start : start + _CHUNK]
                for row in reader.exec(select(model).where(col(model.id).in_(ids))):
                    self.rows[row.id] = row
                    self.stamps[row.id] = now[row.id]
        finally:
            reader.close()
        # A row listed but deleted between the two reads is read again next time.
        for row_id in changed:
            if row_id not in self.rows:
                self.stamps.pop(row_id, None)
        return len(gone) + len(changed)


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
            changes = self._sync(session, prepared)
            changed = sum(changes.values())
            decided = read_decided_matches(session)
            decided_changed = decided != prepared.decided
            prepared.decided = decided
            tables = prepared.tables
            if prepared.proposals is None or (
                changes["proposal"]
                + changes["user"]
                + changes["organisation"]
                + changes["publication"]
            ):
                publications: dict[int, list[Publication]] = defaultdict(list)
                for publication in tables["publication"].rows.values():
                    publications[publication.author_id].append(publication)
                for listed in publications.values():
                    listed.sort(key=lambda p: (-p.year, p.id))
                prepared.proposals = proposal_side(
                    proposals=_by_id(tables["proposal"].rows.values()),
                    users=tables["user"].rows,
                    organisations=tables["organisation"].rows,
                    publications=publications,
                )
            if (
                prepared.offers is None
                or changes["offer"] + changes["organisation"]
                or decided_changed
            ):
                prepared.offers = offer_side(
                    offers=_by_id(tables["offer"].rows.values()),
                    organisations=tables["organisation"].rows,
                    decided=decided,
                )
            snapshot = prepared.snapshot
            if snapshot is None or changed or decided_changed:
                snapshot = assemble(prepared.proposals, prepared.offers, decided)
                prepared.snapshot = snapshot
            texts = [*snapshot.corpus.proposal_texts, *snapshot.corpus.offer_texts]
            if prepared.lexical is None or prepared.terms is None:
                fresh = make_matcher(session=session, encoder=encoder, snapshot=snapshot)
                prepared.lexical, prepared.terms = fresh.lexical, fresh.terms
                prepared.changed_since_terms = 0
            else:
                prepared.lexical.extend(texts)
                prepared.changed_since_terms += changed
                if prepared.changed_since_terms > TERMS_REFIT_SHARE * max(len(texts), 1):
                    refitted = make_matcher(session=session, encoder=encoder, snapshot=snapshot)
                    prepared.terms = refitted.terms
                    prepared.changed_since_terms = 0
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

    def _sync(self, session: Session, prepared: _Prepared) -> dict[str, int]:
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
        self.reads += sum(changes.values())
        return changes


def _by_id(rows: Iterable[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: row.id)


SNAPSHOTS = SnapshotCache()
"""This process's cache: each `flask worker` (and the embedded queue's threads) uses it."""
