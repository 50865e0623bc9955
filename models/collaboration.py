"""Collaborations: what followed an introduction, stage by stage, with its history."""

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import TimestampMixin, enum_type, utcnow
from models.enums import AgreementKind, CollaborationStage, DeclineReason

# Hours one collaboration may record as granted or used: beyond this it is a typing slip.
MAX_COLLABORATION_GPU_HOURS = 10_000_000


class CollaborationBase(SQLModel):
    stage: CollaborationStage = Field(
        default=CollaborationStage.introduced,
        sa_type=enum_type(CollaborationStage, "collaboration_stage"),
        index=True,
    )
    agreement_kind: AgreementKind | None = Field(
        default=None, sa_type=enum_type(AgreementKind, "agreement_kind")
    )
    agreement_signed_on: date | None = Field(default=None, description="Date it was signed")
    gpu_hours_granted: int | None = Field(
        default=None, ge=0, le=MAX_COLLABORATION_GPU_HOURS, description="GPU hours granted"
    )
    gpu_hours_used: int | None = Field(
        default=None, ge=0, le=MAX_COLLABORATION_GPU_HOURS, description="GPU hours used"
    )
    outcome_link: str | None = Field(
        default=None, max_length=500, description="DOI (10.x/...) or https link of the result"
    )
    end_reason: DeclineReason | None = Field(
        default=None, sa_type=enum_type(DeclineReason, "collaboration_end_reason")
    )
    end_reason_text: str = Field(default="", max_length=1_000, sa_type=sa.Text)


class Collaboration(CollaborationBase, TimestampMixin, table=True):
    """One per introduced match, created in the introduction's transaction."""

    __table_args__ = (
        sa.CheckConstraint(
            "gpu_hours_granted IS NULL OR gpu_hours_granted >= 0", name="hours_granted_nonneg"
        ),
        sa.CheckConstraint(
            "gpu_hours_used IS NULL OR gpu_hours_used >= 0", name="hours_used_nonneg"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    match_id: int = Field(foreign_key="match.id", unique=True, ondelete="CASCADE")
    stage_changed_at: datetime = Field(default_factory=utcnow, nullable=False, index=True)


class CollaborationEvent(SQLModel, table=True):
    """One change of a collaboration: who moved it, when, from which stage to which, and
    what they entered (agreement kind and date, hours, link, reason)."""

    id: int | None = Field(default=None, primary_key=True)
    collaboration_id: int = Field(foreign_key="collaboration.id", ondelete="CASCADE", index=True)
    actor_id: int | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL", index=True
    )
    from_stage: str | None = Field(default=None, max_length=30)
    to_stage: str = Field(max_length=30)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, nullable=False, index=True)


class CollaborationPublic(CollaborationBase):
    id: int
    match_id: int
    stage_changed_at: datetime
    created_at: datetime
    updated_at: datetime
