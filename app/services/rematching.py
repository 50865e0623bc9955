"""Asking for re-ranking after a change that moves recommendations: now (`Rematch`, for
commands and jobs) or after the commit, on the job queue (`DeferredRematch`, for requests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlmodel import Session, col, select

from app.services.errors import NotFound
from app.services.recommendations import RecomputeSummary, refresh_offer, refresh_proposal
from app.services.snapshots import SNAPSHOTS, SnapshotCache
from app.services.visibility import MATCHABLE_PROPOSALS
from matching import Encoder
from matching.scoring import ScoreWeights
from models import (
    Offer,
    Proposal,
    utcnow,
)


class Rematcher(Protocol):
    """What services call after a change that moves recommendations: now (`Rematch`) or
    after the commit, on the job queue (`DeferredRematch`)."""

    def proposal(self, session: Session, proposal_id: int) -> object: ...

    def offer(self, session: Session, offer_id: int) -> object: ...

    def author(self, session: Session, author_id: int) -> None: ...


# `session.info` key: the (kind, id) pairs a transaction asked to recompute after its commit.
REMATCH_REQUESTS = "tandem.rematch_requests"


def _authors_proposals(session: Session, author_id: int) -> list[int]:
    return [
        proposal_id  # type: ignore[misc]
        for proposal_id in session.exec(
            select(Proposal.id)
            .where(Proposal.author_id == author_id, col(Proposal.status).in_(MATCHABLE_PROPOSALS))
            .order_by(col(Proposal.id))
        ).all()
    ]


class DeferredRematch:
    """Marks the item as waiting for new matches (`matching_pending`) and records the request
    in `session.info`; the app queues the work once the transaction has committed."""

    def proposal(self, session: Session, proposal_id: int) -> None:
        self._defer(session, Proposal, "proposal", proposal_id)

    def offer(self, session: Session, offer_id: int) -> None:
        self._defer(session, Offer, "offer", offer_id)

    def author(self, session: Session, author_id: int) -> None:
        for proposal_id in _authors_proposals(session, author_id):
            self.proposal(session, proposal_id)

    @staticmethod
    def _defer(
        session: Session, model: type[Proposal] | type[Offer], kind: str, item_id: int
    ) -> None:
        item = session.get(model, item_id)
        if item is None:
            raise NotFound(f"No {kind} {item_id}")
        item.rematch_requested_at = utcnow()
        session.add(item)
        session.flush()
        requests = session.info.setdefault(REMATCH_REQUESTS, [])
        if (kind, item_id) not in requests:
            requests.append((kind, item_id))


@dataclass(frozen=True)
class Rematch:
    """What re-ranking after a change needs (the encoder, k, the weights), bundled so that
    services can take one argument and stay Flask-free."""

    encoder: Encoder
    k: int
    weights: ScoreWeights | None = None
    today: date | None = None
    # The kept catalogue (default: this process's); tests pass one per simulated worker.
    snapshots: SnapshotCache = SNAPSHOTS

    def proposal(self, session: Session, proposal_id: int) -> RecomputeSummary:
        return refresh_proposal(
            session=session,
            encoder=self.encoder,
            proposal_id=proposal_id,
            k=self.k,
            weights=self.weights,
            today=self.today,
            snapshots=self.snapshots,
        )

    def offer(self, session: Session, offer_id: int) -> RecomputeSummary:
        return refresh_offer(
            session=session,
            encoder=self.encoder,
            offer_id=offer_id,
            k=self.k,
            weights=self.weights,
            today=self.today,
            snapshots=self.snapshots,
        )

    def author(self, session: Session, author_id: int) -> None:
        """Every matchable proposal of the author: their publications or standing changed."""
        for proposal_id in _authors_proposals(session, author_id):
            self.proposal(session, proposal_id)
