"""What the public pages show: counts, listings and the recommendations of one record."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlmodel import Session, col, func, select

from app.services.errors import NotFound
from app.services.visibility import MATCHABLE_PROPOSALS, visible_offers, visible_proposals
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    User,
)

T = TypeVar("T")

PUBLIC_PROPOSAL_STATUSES = (*MATCHABLE_PROPOSALS, ProposalStatus.closed)
PUBLIC_OFFER_STATUSES = (OfferStatus.open, OfferStatus.closed)
LISTED_MATCH_STATUSES = (
    MatchStatus.suggested,
    MatchStatus.interested_academic,
    MatchStatus.interested_company,
    MatchStatus.introduced,
)


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` rows fill, `per_page` a page (an empty list is one page)."""
    return max(1, math.ceil(total / per_page))


def page_within(page: int, total: int, per_page: int) -> int:
    """`page` brought within 1..the last page: a page past the end shows the last one."""
    return min(max(1, page), page_count(total, per_page))


class Paged:
    """Where one page stands among `total` rows, `per_page` a page: for a dataclass with
    those fields that says in `shown` how many rows its page holds."""

    total: int
    page: int
    per_page: int

    @property
    def shown(self) -> int:
        raise NotImplementedError

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    @property
    def first_shown(self) -> int:
        """The place of the page's first row among all of them (1-based; 0 when none)."""
        return (self.page - 1) * self.per_page + 1 if self.shown else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.per_page + self.shown


@dataclass(frozen=True)
class Page(Paged, Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def shown(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Counts:
    open_proposals: int
    open_offers: int
    organisations: int
    gpu_hours_offered: int
    suggestions: int


def counts(*, session: Session) -> Counts:
    def scalar(statement: sa.Select) -> int:
        return int(session.exec(statement).one() or 0)

    return Counts(
        open_proposals=scalar(
            select(func.count()).where(*visible_proposals(), Proposal.status == ProposalStatus.open)
        ),
        open_offers=scalar(select(func.count()).where(*visible_offers())),
        organisations=scalar(select(func.count()).select_from(Organisation)),
        gpu_hours_offered=scalar(
            select(func.coalesce(func.sum(Offer.gpu_hours_budget), 0)).where(*visible_offers())
        ),
        suggestions=scalar(select(func.count()).select_from(Match)),
    )


def latest_proposals(*, session: Session, limit: int = 5) -> list[Proposal]:
    return list(
        session.exec(
            select(Proposal)
            .where(*visible_proposals(), Proposal.status == ProposalStatus.open)
            .order_by(col(Proposal.created_at).desc(), col(Proposal.id).desc())
            .limit(limit)
        )
    )


def latest_offers(*, session: Session, limit: int = 5) -> list[Offer]:
    return list(
        session.exec(
            select(Offer)
            .options(selectinload(Offer.organisation))  # type: ignore[arg-type]
            .where(*visible_offers())
            .order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
            .limit(limit)
        )
    )


def _page(session: Session, statement: sa.Select, page: int, per_page: int) -> Page:
    total = int(session.exec(select(func.count()).select_from(statement.subquery())).one())
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    items = list(session.exec(statement.offset((page - 1) * per_page).limit(per_page)))
    return Page(items=items, total=total, page=page, per_page=per_page)


def json_values(session: Session, column: object, name: str = "element") -> sa.TableValuedAlias:
    """The elements of a JSON list column as a table (one `value` row per element), for the
    database to filter and count tag lists itself: `json_each` on SQLite,
    `json_array_elements_text` on PostgreSQL. Correlates with the column's table."""
    dialect = session.get_bind().dialect.name
    function = sa.func.json_array_elements_text if dialect == "postgresql" else sa.func.json_each
    return function(column).table_valued("value").alias(name)


def has_tag(
    session: Session, column: object, wanted: str, *, ignore_case: bool = False
) -> sa.ColumnElement[bool]:
    """True where the JSON list `column` holds `wanted` (exactly, or in any letter case)."""
    values = json_values(session, column)
    value = values.c.value
    condition = func.lower(value) == wanted.strip().lower() if ignore_case else value == wanted
    return sa.exists(sa.select(sa.literal(1)).select_from(values).where(condition))


def distinct_tags(
    session: Session, column: object, *conditions: sa.ColumnElement[bool]
) -> list[str]:
    """Every distinct element of the JSON list `column` over the rows meeting `conditions`,
    found by the database (one statement, distinct values only come back)."""
    values = json_values(session, column)
    table = column.table  # type: ignore[attr-defined]
    statement = (
        sa.select(values.c.value)
        .select_from(table)
        .join(values, sa.true())
        .where(*conditions)
        .distinct()
    )
    return [str(value) for value in session.execute(statement).scalars()]


def list_proposals(
    *, session: Session, page: int, per_page: int, area: str | None = None
) -> Page[Proposal]:
    """Open and matched proposals, newest first; `area` keeps those tagged with it."""
    statement = select(Proposal).where(*visible_proposals())
    if area:
        statement = statement.where(has_tag(session, Proposal.research_areas, area))
    statement = statement.order_by(col(Proposal.created_at).desc(), col(Proposal.id).desc())
    return _page(session, statement, page, per_page)


def list_offers(
    *, session: Session, page: int, per_page: int, kind: str | None = None
) -> Page[Offer]:
    statement = (
        select(Offer).options(selectinload(Offer.organisation)).where(*visible_offers())  # type: ignore[arg-type]
    )
    if kind:
        statement = statement.where(Offer.kind == kind)
    statement = statement.order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
    return _page(session, statement, page, per_page)


def research_areas(*, session: Session) -> list[str]:
    """The research areas of the public proposals, counted by the database."""
    return sorted(distinct_tags(session, Proposal.research_areas, *visible_proposals()))


def get_proposal(*, session: Session, proposal_id: int) -> Proposal:
    """A proposal others may see (drafts are private to their author)."""
    proposal = session.get(Proposal, proposal_id)
    author = session.get(User, proposal.author_id) if proposal is not None else None
    if (
        proposal is None
        or proposal.status not in PUBLIC_PROPOSAL_STATUSES
        or proposal.hidden
        or author is None
        or not author.active
    ):
        raise NotFound(f"No proposal {proposal_id}")
    return proposal


def get_offer(*, session: Session, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.status not in PUBLIC_OFFER_STATUSES or offer.hidden:
        raise NotFound(f"No offer {offer_id}")
    return offer


PRELOADED = "tandem.preloaded"
"""`session.info` key: the records `preload_people` loaded, kept alive for the session."""


def preload_people(
    *,
    session: Session,
    proposals: Iterable[Proposal] = (),
    offers: Iterable[Offer] = (),
    matches: Iterable[Match] = (),
) -> None:
    """Load, in two statements whatever the number of items, the people a page shows of
    them (proposal authors, offer creators, company contacts of matches) and their
    organisations (and the offers' organisations), so that the per-item lookups that follow
    (`author_label`, match cards' contacts, `offer.organisation`) find them in the session
    instead of sending one query each. Both statements run even for empty lists, so a page
    sends as many statements whatever it lists."""
    offers = list(offers)
    user_ids = {p.author_id for p in proposals}
    user_ids |= {o.created_by_id for o in offers if o.created_by_id is not None}
    user_ids |= {m.company_contact_id for m in matches if m.company_contact_id is not None}
    users = session.exec(select(User).where(col(User.id).in_(sorted(user_ids)))).all()
    organisation_ids = {u.organisation_id for u in users if u.organisation_id is not None}
    organisation_ids |= {o.organisation_id for o in offers}
    organisations = session.exec(
        select(Organisation).where(col(Organisation.id).in_(sorted(organisation_ids)))
    ).all()
    # The session's identity map holds objects weakly: keep them for the session's life.
    session.info.setdefault(PRELOADED, []).extend([*users, *organisations])


def author_label(*, session: Session, proposal: Proposal) -> str:
    """How a proposal's author is shown before an introduction: field and institution type."""
    author = session.get(User, proposal.author_id)
    kind = author.organisation.kind if author and author.organisation else None
    where = {
        OrganisationKind.university: "a university",
        OrganisationKind.company: "a company",
        OrganisationKind.other: "a research institute",
    }.get(kind, "an institution")
    field = proposal.research_areas[0] if proposal.research_areas else "AI research"
    return f"A researcher in {field} at {where}"


def _offer_takes_projects() -> tuple[sa.ColumnElement[bool], ...]:
    """Open and not past its deadline: an offer that expired since the last recompute is no
    longer eligible, so its stored suggestions must not show."""
    return (
        *visible_offers(),
        sa.or_(col(Offer.deadline).is_(None), col(Offer.deadline) >= date.today()),
    )


def recommended_offers(
    *, session: Session, proposal_id: int, limit: int | None
) -> list[tuple[Match, Offer]]:
    """The proposal's best open offers, best first (all of them when `limit` is None)."""
    rows = session.exec(
        select(Match, Offer)
        .options(selectinload(Offer.organisation))  # type: ignore[arg-type]
        .join(Offer, col(Offer.id) == Match.offer_id)
        .where(
            Match.proposal_id == proposal_id,
            *_offer_takes_projects(),
            col(Match.status).in_(LISTED_MATCH_STATUSES),
        )
        .order_by(col(Match.score).desc(), col(Offer.id))
        .limit(limit)
    )
    return [(match, offer) for match, offer in rows]


def recommended_proposals(
    *, session: Session, offer_id: int, limit: int
) -> list[tuple[Match, Proposal]]:
    """The offer's best open proposals, best first (none once the offer is closed or past
    its deadline)."""
    rows = session.exec(
        select(Match, Proposal)
        .join(Proposal, col(Proposal.id) == Match.proposal_id)
        .join(Offer, col(Offer.id) == Match.offer_id)
        .where(
            Match.offer_id == offer_id,
            *_offer_takes_projects(),
            *visible_proposals(),
            col(Match.status).in_(LISTED_MATCH_STATUSES),
        )
        .order_by(col(Match.score).desc(), col(Proposal.id))
        .limit(limit)
    )
    return [(match, proposal) for match, proposal in rows]
