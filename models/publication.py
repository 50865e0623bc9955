"""Publications: an academic's expertise profile, matched against offers."""

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Field, Relationship, SQLModel

from models._base import TimestampMixin

if TYPE_CHECKING:
    from models.user import User


class PublicationBase(SQLModel):
    title: str = Field(min_length=1, max_length=500)
    abstract: str = Field(default="", max_length=10_000, sa_type=sa.Text)
    year: int = Field(ge=1900, le=2100)
    venue: str = Field(default="", max_length=200)


class Publication(PublicationBase, TimestampMixin, table=True):
    __table_args__ = (sa.CheckConstraint("year BETWEEN 1900 AND 2100", name="year_range"),)

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")

    author: "User" = Relationship(back_populates="publications")


class PublicationCreate(PublicationBase):
    pass


class PublicationUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    abstract: str | None = Field(default=None, max_length=10_000)
    year: int | None = Field(default=None, ge=1900, le=2100)
    venue: str | None = Field(default=None, max_length=200)


class PublicationPublic(PublicationBase):
    id: int
    author_id: int
