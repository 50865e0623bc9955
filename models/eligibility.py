"""Why a proposal's (or an offer's) list of recommendations is as short as it is, written when
its matches are recomputed so that its page reads one row instead of the whole catalogue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import utcnow


class EligibilityCount(SQLModel, table=True):
    """One item's hard-constraint counts against the open counterparts at `computed_at`.

    `side` is "proposal" (counterparts are open offers) or "offer" (open proposals);
    `failures` maps a constraint name (`matching.eligibility`) to how many counterparts fail
    it, every constraint included: what a page may show is decided when it is read."""

    side: str = Field(primary_key=True, max_length=10)
    item_id: int = Field(primary_key=True)
    candidates: int = Field(ge=0)
    eligible: int = Field(ge=0)
    failures: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    computed_at: datetime = Field(default_factory=utcnow, nullable=False)
