"""Offers: GPU time, dataset access, or both, that a company makes available with its terms."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
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
from models.enums import AccessMode, IpStance, OfferKind, OfferStatus, PublicationTerms

if TYPE_CHECKING:
    from models.match import Match
    from models.organisation import Organisation
    from models.user import User


class OfferBase(SQLModel):
    kind: OfferKind = Field(sa_type=enum_type(OfferKind, "offer_kind"))
    title: str = Field(min_length=5, max_length=300)
    description: str = Field(min_length=20, max_length=10_000, sa_type=sa.Text)
    gpu_type: str | None = Field(default=None, max_length=100)
    gpu_memory_gb: int | None = Field(default=None, ge=0, le=4096, description="GB per GPU")
    gpu_hours_budget: int = Field(default=0, ge=0, le=100_000_000, description="GPU hours")
    max_hours_per_project: int = Field(default=0, ge=0, le=100_000_000, description="GPU hours")
    max_projects: int = Field(default=1, ge=1, le=10_000)
    dataset_description: str = Field(default="", max_length=10_000, sa_type=sa.Text)
    data_domains: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS, sa_type=json_list())
    access_mode: AccessMode = Field(
        default=AccessMode.remote, sa_type=enum_type(AccessMode, "access_mode")
    )
    publication_terms: PublicationTerms = Field(
        default=PublicationTerms.allowed,
        sa_type=enum_type(PublicationTerms, "publication_terms"),
    )
    ip_stance: IpStance = Field(default=IpStance.open, sa_type=enum_type(IpStance, "ip_stance"))
    nda_required: bool = False
    code_release_allowed: bool = Field(
        default=True,
        sa_column_kwargs={"server_default": sa.true()},
        description="Whether code written in the project may be released as open source",
    )
    deadline: date | None = Field(
        default=None,
        ge=EARLIEST_DATE,
        le=LATEST_DATE,
        description="Last day the offer takes projects",
    )
    available_until: date | None = Field(
        default=None,
        ge=EARLIEST_DATE,
        le=LATEST_DATE,
        description="Last day the compute or data can be used",
    )


class Offer(OfferBase, TimestampMixin, table=True):
    __table_args__ = (
        sa.CheckConstraint("gpu_hours_budget >= 0", name="gpu_hours_budget_nonnegative"),
        sa.CheckConstraint("max_hours_per_project >= 0", name="max_hours_per_project_nonnegative"),
        sa.CheckConstraint(
            "max_hours_per_project <= gpu_hours_budget", name="per_project_within_budget"
        ),
        sa.CheckConstraint("max_projects >= 1", name="max_projects_positive"),
        sa.CheckConstraint(
            "gpu_memory_gb IS NULL OR gpu_memory_gb >= 0", name="gpu_memory_gb_nonnegative"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    excluded_institutions: list[str] = Field(
        default_factory=list,
        sa_type=json_list(),
        sa_column_kwargs={"server_default": "[]"},
        description="Institution names or email domains never to be matched with",
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
    organisation_id: int = Field(foreign_key="organisation.id", index=True, ondelete="CASCADE")
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    status: OfferStatus = Field(
        default=OfferStatus.draft, sa_type=enum_type(OfferStatus, "offer_status"), index=True
    )

    organisation: "Organisation" = Relationship(back_populates="offers")
    created_by: Optional["User"] = Relationship()

    @property
    def matching_pending(self) -> bool:
        """Its matches are being recomputed in the background after a change. Never for a
        draft: nothing is matched with a draft, so there is nothing for its page to wait for."""
        if self.status == OfferStatus.draft:
            return False
        requested, done = self.rematch_requested_at, self.rematched_at
        return requested is not None and (done is None or done < requested)

    matches: list["Match"] = Relationship(back_populates="offer", cascade_delete=True)


class OfferCreate(OfferBase):
    excluded_institutions: list[str] = Field(default_factory=list, max_length=200)


class OfferUpdate(SQLModel):
    kind: OfferKind | None = None
    title: str | None = Field(default=None, min_length=5, max_length=300)
    description: str | None = Field(default=None, min_length=20, max_length=10_000)
    gpu_type: str | None = Field(default=None, max_length=100)
    gpu_memory_gb: int | None = Field(default=None, ge=0, le=4096)
    gpu_hours_budget: int | None = Field(default=None, ge=0, le=100_000_000)
    max_hours_per_project: int | None = Field(default=None, ge=0, le=100_000_000)
    max_projects: int | None = Field(default=None, ge=1, le=10_000)
    dataset_description: str | None = Field(default=None, max_length=10_000)
    data_domains: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    access_mode: AccessMode | None = None
    publication_terms: PublicationTerms | None = None
    ip_stance: IpStance | None = None
    nda_required: bool | None = None
    code_release_allowed: bool | None = None
    excluded_institutions: list[str] | None = None
    deadline: date | None = Field(default=None, ge=EARLIEST_DATE, le=LATEST_DATE)
    available_until: date | None = Field(default=None, ge=EARLIEST_DATE, le=LATEST_DATE)
    status: OfferStatus | None = None


class OfferPublic(OfferBase):
    id: int
    organisation_id: int
    status: OfferStatus
