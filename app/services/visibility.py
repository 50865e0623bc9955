"""Which proposals and offers take part in matching (and may be shown publicly): the query
filters every service uses, and the match states that hold or release an offer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from models import (
    MatchStatus,
    Offer,
    OfferStatus,
    Proposal,
    ProposalStatus,
    User,
)

MATCHABLE_PROPOSALS = (ProposalStatus.open, ProposalStatus.matched)
COMMITTED = (MatchStatus.introduced,)
SET_ASIDE = (MatchStatus.declined, MatchStatus.withdrawn)


def visible_proposals() -> tuple[sa.ColumnElement[bool], ...]:
    """Proposals that take part in matching: open or matched, not hidden by an administrator,
    and by an author who is not suspended."""
    return (
        col(Proposal.status).in_(MATCHABLE_PROPOSALS),
        col(Proposal.hidden).is_(False),
        col(Proposal.author_id).in_(select(User.id).where(col(User.active).is_(True))),
    )


def visible_offers() -> tuple[sa.ColumnElement[bool], ...]:
    """Offers that take part in matching: open and not hidden by an administrator."""
    return (Offer.status == OfferStatus.open, col(Offer.hidden).is_(False))
