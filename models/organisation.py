"""Organisations: universities, companies and other bodies that users belong to."""

from typing import TYPE_CHECKING

from sqlmodel import Field, Relationship, SQLModel

from models._base import TimestampMixin, enum_type, json_list
from models.enums import OrganisationKind

if TYPE_CHECKING:
    from models.offer import Offer
    from models.user import User


class OrganisationBase(SQLModel):
    name: str = Field(min_length=2, max_length=200, unique=True)
    kind: OrganisationKind = Field(sa_type=enum_type(OrganisationKind, "organisation_kind"))
    email_domains: list[str] = Field(default_factory=list, sa_type=json_list())


class Organisation(OrganisationBase, TimestampMixin, table=True):
    id: int | None = Field(default=None, primary_key=True)
    verified: bool = Field(default=False)

    members: list["User"] = Relationship(back_populates="organisation")
    offers: list["Offer"] = Relationship(back_populates="organisation")


class OrganisationCreate(OrganisationBase):
    pass


class OrganisationUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    kind: OrganisationKind | None = None
    email_domains: list[str] | None = None


class OrganisationPublic(OrganisationBase):
    id: int
    verified: bool
