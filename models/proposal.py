"""Proposals: the research an academic wants to do with industry, and what it needs."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, Relationship, SQLModel

from models._base import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_TAGS,
    Tag,
    TimestampMixin,
    enum_type,
    json_list,
)
from models.enums import IpStance, LabResourceLevel, ProposalStatus

if TYPE_CHECKING:
    from models.match import Match
    from models.user import User

# A company name or email domain the author must never be matched with; a proposal lists at
# most MAX_EXCLUSIONS of them (a conflict-of-interest list, not a directory).
Exclusion = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_EXCLUSIONS = 50


class ProposalBase(SQLModel):
    title: str = Field(min_length=5, max_length=300)
    abstract: str = Field(min_length=20, max_length=10_000, sa_type=sa.Text)
    research_areas: list[Tag] = Field(
        default_factory=list, max_length=MAX_TAGS, sa_type=json_list()
    )
    gpu_hours_needed: int = Field(default=0, ge=0, le=10_000_000, description="GPU hours")
    gpu_memory_min_gb: int | None = Field(default=None, ge=0, le=4096, description="GB per GPU")
    gpu_type: str | None = Field(default=None, max_length=100)
    duration_months: int = Field(default=6, ge=1, le=60)
    data_need: str = Field(default="", max_length=5_000, sa_type=sa.Text)
    data_domains: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS, sa_type=json_list())
    collaboration_kinds: list[str] = Field(default_factory=list, sa_type=json_list())
    requires_open_publication: bool = True
    requires_open_source: bool = False
    ip_stance: IpStance = Field(default=IpStance.open, sa_type=enum_type(IpStance, "ip_stance"))
    earliest_start: date | None = Field(
        default=None, ge=EARLIEST_DATE, le=LATEST_DATE, description="When the work can start"
    )
    lab_resource_level: LabResourceLevel = Field(
        default=LabResourceLevel.typical,
        sa_type=enum_type(LabResourceLevel, "lab_resource_level"),
    )


class Proposal(ProposalBase, TimestampMixin, table=True):
    __table_args__ = (
        sa.CheckConstraint("gpu_hours_needed >= 0", name="gpu_hours_needed_nonnegative"),
        sa.CheckConstraint(
            "gpu_memory_min_gb IS NULL OR gpu_memory_min_gb >= 0",
            name="gpu_memory_min_gb_nonnegative",
        ),
        sa.CheckConstraint("duration_months >= 1", name="duration_months_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    excluded_companies: list[str] = Field(
        default_factory=list,
        sa_type=json_list(),
        sa_column_kwargs={"server_default": "[]"},
        description="Company names or email domains never to be matched with",
    )
    hidden: bool = Field(
        default=False, description="Hidden by an administrator: listed nowhere, matched with none"
    )
    rematch_requested_at: datetime | None = Field(
        default=None, description="When a change asked for its matches to be recomputed"
    )
    rematched_at: datetime | None = Field(
        default=None, description="When the last recomputation that saw that change began"
    )
    author_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    status: ProposalStatus = Field(
        default=ProposalStatus.draft,
        sa_type=enum_type(ProposalStatus, "proposal_status"),
        index=True,
    )

    author: "User" = Relationship(back_populates="proposals")

    @property
    def needs_data(self) -> bool:
        """It asks for data: a description of the data it needs, or data domains."""
        return bool((self.data_need or "").strip() or self.data_domains)

    @property
    def matching_pending(self) -> bool:
        """Its matches are being recomputed in the background after a change. Never for a
        draft: nothing is matched with a draft, so there is nothing for its page to wait for."""
        if self.status == ProposalStatus.draft:
            return False
        requested, done = self.rematch_requested_at, self.rematched_at
        return requested is not None and (done is None or done < requested)

    matches: list["Match"] = Relationship(back_populates="proposal", cascade_delete=True)


class ProposalCreate(ProposalBase):
    excluded_companies: list[Exclusion] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)


class ProposalUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=5, max_length=300)
    abstract: str | None = Field(default=None, min_length=20, max_length=10_000)
    research_areas: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    gpu_hours_needed: int | None = Field(default=None, ge=0, le=10_000_000)
    gpu_memory_min_gb: int | None = Field(default=None, ge=0, le=4096)
    gpu_type: str | None = Field(default=None, max_length=100)
    duration_months: int | None = Field(default=None, ge=1, le=60)
    data_need: str | None = Field(default=None, max_length=5_000)
    data_domains: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    collaboration_kinds: list[str] | None = None
    requires_open_publication: bool | None = None
    requires_open_source: bool | None = None
    ip_stance: IpStance | None = None
    excluded_companies: list[Exclusion] | None = Field(default=None, max_length=MAX_EXCLUSIONS)
    earliest_start: date | None = Field(default=None, ge=EARLIEST_DATE, le=LATEST_DATE)
    lab_resource_level: LabResourceLevel | None = None
    status: ProposalStatus | None = None


class ProposalPublic(ProposalBase):
    """A proposal as others may see it: the author is not named before an introduction."""

    id: int
    status: ProposalStatus
