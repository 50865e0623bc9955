"""Allocation rounds: a solved, capacity-constrained assignment an administrator publishes."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import TimestampMixin, enum_type
from models.enums import AllocationRoundStatus


class AllocationRoundBase(SQLModel):
    equity: str = Field(default="none", max_length=20, description="none, priority or maxmin")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    objective: float = Field(default=0.0, description="Total score of the assignment")
    summary: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=sa.JSON,
        description="Per-offer use, unassigned proposals and solver status, as previewed",
    )


class AllocationRound(AllocationRoundBase, TimestampMixin, table=True):
    id: int | None = Field(default=None, primary_key=True)
    status: AllocationRoundStatus = Field(
        default=AllocationRoundStatus.draft,
        sa_type=enum_type(AllocationRoundStatus, "allocation_round_status"),
        index=True,
    )
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    published_at: datetime | None = Field(default=None)


class AllocationAssignment(SQLModel, table=True):
    """One proposal given one offer in a round, with the hours it was promised."""

    __table_args__ = (sa.UniqueConstraint("round_id", "proposal_id", "offer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="allocationround.id", index=True, ondelete="CASCADE")
    proposal_id: int = Field(foreign_key="proposal.id", index=True, ondelete="CASCADE")
    offer_id: int = Field(foreign_key="offer.id", index=True, ondelete="CASCADE")
    score: float
    gpu_hours: int = Field(default=0, ge=0)


class AllocationRoundPublic(AllocationRoundBase):
    id: int
    status: AllocationRoundStatus
    published_at: datetime | None
