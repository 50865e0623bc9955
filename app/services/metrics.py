"""Platform health for administrators: counts, funnel rates and GPU hours (read-only queries)."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.services.catalogue import LISTED_MATCH_STATUSES
from app.services.visibility import visible_offers, visible_proposals
from models import (
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    Match,
    MatchStatus,
    Notification,
    NotificationStatus,
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    Role,
    User,
)

INTERESTED = (MatchStatus.interested_academic, MatchStatus.interested_company)

MATCH_STATUS_WORDS: dict[str, str] = {
    MatchStatus.suggested.value: "Suggested",
    MatchStatus.interested_academic.value: "Academic interested",
    MatchStatus.interested_company.value: "Company interested",
    MatchStatus.introduced.value: "Introduced",
    MatchStatus.declined.value: "Declined",
    MatchStatus.withdrawn.value: "Withdrawn",
}
"""Match statuses as the metrics charts name them."""


@dataclass(frozen=True)
class Rate:
    """A share: `numerator` out of `denominator` (`value` is None when nothing to count)."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def percent(self) -> str:
        """The share as a person should read it (see `percent_of`)."""
        return percent_of(self.numerator, self.denominator)


def percent_of(part: int, whole: int) -> str:
    """`part` of `whole` as a percentage that never rounds a real count away: "0%" and
    "100%" only when exact, "<1%" and ">99%" at the edges, one decimal under 10%
    ("2.3%"), whole numbers above ("23%"); "—" when there is nothing to count."""
    if whole <= 0:
        return "—"
    if part <= 0:
        return "0%"
    if part >= whole:
        return "100%"
    share = 100 * part / whole
    if share < 1:
        return "<1%"
    if share > 99:
        return ">99%"
    if round(share, 1) < 10:
        return f"{share:.1f}%"
    return f"{share:.0f}%"


@dataclass(frozen=True)
class PlatformMetrics:
    users_by_role: dict[str, int]
    suspended_users: int
    organisations_verified: int
    organisations_unverified: int
    proposals_by_status: dict[str, int]
    offers_by_status: dict[str, int]
    matches_by_status: dict[str, int]
    match_rate: Rate
    """Open public proposals with at least one live suggestion, of all open public proposals."""
    interest_rate: Rate
    """Matches on which at least one side said "interested", of all matches."""
    introduction_rate: Rate
    """Introduced matches, of the matches with any interest."""
    gpu_hours_offered: int
    """GPU-hour budgets of the open, visible offers."""
    gpu_hours_promised: int
    """GPU hours needed by proposals introduced to a compute offer."""
    gpu_hours_allocated: int
    """GPU hours assigned in published allocation rounds."""
    proposals_per_area: list[tuple[str, int]]
    """Open public proposals per research area, most first (a proposal counts in each of its
    areas)."""
    introductions_per_week: list[tuple[date, int]]
    """Introductions per week (weeks start on Monday), oldest first, ending this week."""
    mails_by_status: dict[str, int]
    """Outbox rows per status: pending and failed ones need a look."""


def _count_by(
    session: Session, column: sa.ColumnElement, members: type[enum.Enum]
) -> dict[str, int]:
    """Rows per value of an enum column, every member present (zero when none)."""
    counts = {member.value: 0 for member in members}
    for value, count in session.exec(select(column, func.count()).group_by(column)).all():
        counts[getattr(value, "value", value)] = int(count)
    return counts


def _scalar(session: Session, statement: sa.Select) -> int:
    return int(session.exec(statement).one() or 0)


def _any_interest() -> sa.ColumnElement[bool]:
    return sa.or_(
        col(Match.academic_interested_at).is_not(None),
        col(Match.company_interested_at).is_not(None),
        col(Match.status).in_((*INTERESTED, MatchStatus.introduced)),
    )


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def introductions_per_week(
    *, session: Session, weeks: int = 12, today: date | None = None
) -> list[tuple[date, int]]:
    """Introductions in each of the last `weeks` weeks (Monday-based), oldest first."""
    this_week = _week_start(today or date.today())
    first = this_week - timedelta(weeks=weeks - 1)
    counts: Counter[date] = Counter()
    for introduced_at in session.exec(
        select(Match.introduced_at).where(
            Match.status == MatchStatus.introduced, col(Match.introduced_at).is_not(None)
        )
    ).all():
        day = introduced_at.date() if isinstance(introduced_at, datetime) else introduced_at
        week = _week_start(day)  # type: ignore[arg-type]
        if first <= week <= this_week:
            counts[week] += 1
    return [(first + timedelta(weeks=i), counts[first + timedelta(weeks=i)]) for i in range(weeks)]


def proposals_per_area(*, session: Session, limit: int = 10) -> list[tuple[str, int]]:
    """The `limit` research areas with the most open public proposals (ties by name)."""
    counts: Counter[str] = Counter()
    for areas in session.exec(
        select(Proposal.research_areas).where(
            *visible_proposals(), Proposal.status == ProposalStatus.open
        )
    ).all():
        counts.update(set(areas))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def platform_metrics(
    *, session: Session, today: date | None = None, weeks: int = 12
) -> PlatformMetrics:
    open_proposals = select(Proposal.id).where(
        *visible_proposals(), Proposal.status == ProposalStatus.open
    )
    matched = _scalar(
        session,
        select(func.count(sa.distinct(Match.proposal_id))).where(
            col(Match.proposal_id).in_(open_proposals),
            col(Match.status).in_(LISTED_MATCH_STATUSES),
        ),
    )
    open_count = _scalar(session, select(func.count()).select_from(open_proposals.subquery()))
    matches = _scalar(session, select(func.count()).select_from(Match))
    interested = _scalar(session, select(func.count()).where(_any_interest()))
    introduced = _scalar(
        session, select(func.count()).where(Match.status == MatchStatus.introduced)
    )
    verified = _scalar(session, select(func.count()).where(col(Organisation.verified).is_(True)))
    return PlatformMetrics(
        users_by_role=_count_by(session, col(User.role), Role),
        suspended_users=_scalar(session, select(func.count()).where(col(User.active).is_(False))),
        organisations_verified=verified,
        organisations_unverified=_scalar(session, select(func.count()).select_from(Organisation))
        - verified,
        proposals_by_status=_count_by(session, col(Proposal.status), ProposalStatus),
        offers_by_status=_count_by(session, col(Offer.status), OfferStatus),
        matches_by_status=_count_by(session, col(Match.status), MatchStatus),
        match_rate=Rate(matched, open_count),
        interest_rate=Rate(interested, matches),
        introduction_rate=Rate(introduced, interested),
        gpu_hours_offered=_scalar(
            session,
            select(func.coalesce(func.sum(Offer.gpu_hours_budget), 0)).where(*visible_offers()),
        ),
        gpu_hours_promised=_scalar(
            session,
            select(func.coalesce(func.sum(Proposal.gpu_hours_needed), 0))
            .select_from(Match)
            .join(Proposal, col(Proposal.id) == Match.proposal_id)
            .join(Offer, col(Offer.id) == Match.offer_id)
            .where(Match.status == MatchStatus.introduced, Offer.kind != OfferKind.data),
        ),
        gpu_hours_allocated=_scalar(
            session,
            select(func.coalesce(func.sum(AllocationAssignment.gpu_hours), 0))
            .join(AllocationRound, col(AllocationRound.id) == AllocationAssignment.round_id)
            .where(AllocationRound.status == AllocationRoundStatus.published),
        ),
        proposals_per_area=proposals_per_area(session=session),
        introductions_per_week=introductions_per_week(session=session, weeks=weeks, today=today),
        mails_by_status=_count_by(session, col(Notification.status), NotificationStatus),
    )
