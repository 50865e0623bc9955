"""Matches: a scored (proposal, offer) pair and where the two sides stand on it."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship, SQLModel

from models._base import TimestampMixin, enum_type
from models.enums import DeclineReason, MatchStatus

if TYPE_CHECKING:
    from models.offer import Offer
    from models.proposal import Proposal


class MatchBase(SQLModel):
    score: float = Field(description="Weighted total; higher is a better fit")
    components: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    algorithm_version: str = Field(max_length=200)
    rank_for_proposal: int | None = Field(
        default=None, ge=1, description="1-based rank among the proposal's recommended offers"
    )
    rank_for_offer: int | None = Field(
        default=None, ge=1, description="1-based rank among the offer's recommended proposals"
    )


class Match(MatchBase, TimestampMixin, table=True):
    __table_args__ = (sa.UniqueConstraint("proposal_id", "offer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", index=True, ondelete="CASCADE")
    offer_id: int = Field(foreign_key="offer.id", index=True, ondelete="CASCADE")
    status: MatchStatus = Field(
        default=MatchStatus.suggested, sa_type=enum_type(MatchStatus, "match_status"), index=True
    )

    academic_interested_at: datetime | None = Field(default=None)
    company_interested_at: datetime | None = Field(default=None)
    company_contact_id: int | None = Field(
        default=None,
        foreign_key="user.id",
        ondelete="SET NULL",
        description="The company member who said interested: the contact the academic gets",
    )
    introduced_at: datetime | None = Field(default=None)
    declined_by: str | None = Field(
        default=None, max_length=20, description="Which side dismissed it: academic or company"
    )
    decline_reason: str = Field(default="", max_length=1_000, sa_type=sa.Text)
    decline_reason_code: DeclineReason | None = Field(
        default=None,
        sa_type=enum_type(DeclineReason, "decline_reason"),
        description="Why it was dismissed, from the short list; the free text says more",
    )
    allocation_round_id: int | None = Field(
        default=None, foreign_key="allocationround.id", ondelete="SET NULL", index=True
    )

    proposal: "Proposal" = Relationship(back_populates="matches")
    offer: "Offer" = Relationship(back_populates="matches")


class MatchCreate(MatchBase):
    proposal_id: int
    offer_id: int


class MatchUpdate(SQLModel):
    status: MatchStatus | None = None


class MatchPublic(MatchBase):
    id: int
    proposal_id: int
    offer_id: int
    status: MatchStatus
