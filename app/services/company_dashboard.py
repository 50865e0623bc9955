"""The company dashboard: each offer of the member's organisation with what it has promised
(GPU hours and project places, by introduced matches and by matches where someone is
interested) and its ranked proposals, the researchers anonymous until an introduction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, col, func, select

from app.services import catalogue, matches
from app.services.errors import NotFound
from app.services.offers import membership, organisation_exclusions
from models import Match, MatchStatus, Offer, OfferStatus, Organisation, Proposal

INTERESTED = (MatchStatus.interested_academic, MatchStatus.interested_company)
# Statuses a company sees on its dashboard; declined and withdrawn pairs are set aside.
DASHBOARD_STATUSES = (MatchStatus.suggested, *INTERESTED, MatchStatus.introduced)
# Offers per page of the dashboard: each brings its ranked proposals, so a page stays readable
# (and as costly) however many offers the organisation has posted.
DASHBOARD_PAGE_SIZE = 5


@dataclass(frozen=True)
class Capacity:
    """What an offer has promised: GPU hours and project places taken by introduced matches,
    and (separately) by matches where one side is interested, against budget and cap."""

    hours_budget: int
    projects_cap: int
    hours_introduced: int = 0
    projects_introduced: int = 0
    hours_interested: int = 0
    projects_interested: int = 0

    @staticmethod
    def _share(part: int, whole: int) -> int:
        return 0 if whole <= 0 else round(100 * min(part, whole) / whole)

    @property
    def hours_introduced_percent(self) -> int:
        return self._share(self.hours_introduced, self.hours_budget)

    @property
    def hours_interested_percent(self) -> int:
        left = max(0, self.hours_budget - self.hours_introduced)
        return self._share(min(self.hours_interested, left), self.hours_budget)

    @property
    def projects_introduced_percent(self) -> int:
        return self._share(self.projects_introduced, self.projects_cap)

    @property
    def projects_interested_percent(self) -> int:
        left = max(0, self.projects_cap - self.projects_introduced)
        return self._share(min(self.projects_interested, left), self.projects_cap)

    @property
    def hours_left(self) -> int:
        return max(0, self.hours_budget - self.hours_introduced)

    @property
    def projects_left(self) -> int:
        return max(0, self.projects_cap - self.projects_introduced)


@dataclass(frozen=True)
class ProposalRow:
    """One ranked proposal for an offer, as the company may see it: the researcher only by
    `author` (an anonymous label) until the match is introduced, then by `contact`."""

    match: Match
    proposal: Proposal
    author: str
    contact: matches.Contact | None
    public: bool


@dataclass(frozen=True)
class OfferPanel:
    offer: Offer
    capacity: Capacity
    proposals: list[ProposalRow] = field(default_factory=list)
    takes_projects: bool = False
    set_aside: list[ProposalRow] = field(default_factory=list)
    # Suggestions (no one has acted on them yet) that fit less well than those listed.
    more_suggestions: int = 0


@dataclass(frozen=True)
class CompanyDashboard(catalogue.Paged):
    """One page of the organisation's offers (`per_page` at most, so the page costs the same
    however many offers it has posted), with `total` offers in all."""

    organisation: Organisation
    panels: list[OfferPanel]
    exclusions: list[str]
    total: int = 0
    page: int = 1
    per_page: int = DASHBOARD_PAGE_SIZE

    @property
    def shown(self) -> int:
        return len(self.panels)


def offer_takes_projects(offer: Offer, *, today: date | None = None) -> bool:
    """Open, not hidden and not past its deadline: the offer can still take up a match."""
    today = today or date.today()
    return (
        offer.status == OfferStatus.open
        and not offer.hidden
        and (offer.deadline is None or offer.deadline >= today)
    )


def _proposal_is_public(session: Session, proposal: Proposal) -> bool:
    try:
        catalogue.get_proposal(session=session, proposal_id=proposal.id)  # type: ignore[arg-type]
    except NotFound:
        return False
    return True


def company_dashboard(
    *,
    session: Session,
    user_id: int,
    page: int = 1,
    per_page: int = DASHBOARD_PAGE_SIZE,
    suggestions_per_offer: int | None = None,
    today: date | None = None,
) -> CompanyDashboard:
    """Page `page` (1-based, brought within range) of the offers of the member's
    organisation (newest first, drafts included), each with what it has promised and its
    ranked proposals (stored matches, by rank for the offer, then score).

    Suggestions show only while the offer takes projects and the proposal is public, the
    best `suggestions_per_offer` of them (all when None; the others are counted), so that a
    page's length does not grow with the catalogue; pairs either side acted on stay listed."""
    member = membership(session=session, user_id=user_id)
    today = today or date.today()
    theirs = col(Offer.organisation_id) == member.organisation.id
    total = int(session.exec(select(func.count()).where(theirs)).one())
    page = catalogue.page_within(page, total, per_page)
    offers = list(
        session.exec(
            select(Offer)
            .where(theirs)
            .order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    rows: dict[int, list[tuple[Match, Proposal]]] = defaultdict(list)
    if offers:
        for match, proposal in session.exec(
            select(Match, Proposal)
            .join(Proposal, col(Proposal.id) == Match.proposal_id)
            .where(
                col(Match.offer_id).in_([offer.id for offer in offers]),
                col(Match.status).in_((*DASHBOARD_STATUSES, MatchStatus.declined)),
            )
            .order_by(
                col(Match.rank_for_offer).is_(None),
                col(Match.rank_for_offer),
                col(Match.score).desc(),
                col(Proposal.id),
            )
        ):
            rows[match.offer_id].append((match, proposal))

    catalogue.preload_people(
        session=session,
        proposals=[proposal for listed in rows.values() for _, proposal in listed],
        offers=offers,
        matches=[match for listed in rows.values() for match, _ in listed],
    )
    panels = []
    for offer in offers:
        takes_projects = offer_takes_projects(offer, today=today)
        hours = {"introduced": 0, "interested": 0}
        places = {"introduced": 0, "interested": 0}
        listed: list[ProposalRow] = []
        set_aside: list[ProposalRow] = []
        suggested = more = 0
        for match, proposal in rows[offer.id]:
            if match.status == MatchStatus.declined:
                # What this side dismissed can be undone while the proposal is still public.
                if match.declined_by == "company" and _proposal_is_public(session, proposal):
                    set_aside.append(
                        ProposalRow(
                            match=match,
                            proposal=proposal,
                            author=catalogue.author_label(session=session, proposal=proposal),
                            contact=None,
                            public=True,
                        )
                    )
                continue
            stage = (
                "introduced"
                if match.status == MatchStatus.introduced
                else "interested"
                if match.status in INTERESTED
                else None
            )
            public = _proposal_is_public(session, proposal)
            # Introductions are promises whatever became of the proposal since; interest and
            # suggestions count only while the proposal is public.
            if stage != "introduced" and not public:
                continue
            if stage is None and not takes_projects:
                continue
            if stage:
                hours[stage] += proposal.gpu_hours_needed
                places[stage] += 1
            elif suggestions_per_offer is not None and suggested >= suggestions_per_offer:
                more += 1
                continue
            else:
                suggested += 1
            listed.append(
                ProposalRow(
                    match=match,
                    proposal=proposal,
                    author=catalogue.author_label(session=session, proposal=proposal),
                    contact=matches.counterpart(session=session, match=match, viewer_id=user_id),
                    public=public,
                )
            )
        capacity = Capacity(
            hours_budget=offer.gpu_hours_budget,
            projects_cap=offer.max_projects,
            hours_introduced=hours["introduced"],
            projects_introduced=places["introduced"],
            hours_interested=hours["interested"],
            projects_interested=places["interested"],
        )
        panels.append(
            OfferPanel(
                offer=offer,
                capacity=capacity,
                proposals=listed,
                takes_projects=takes_projects,
                set_aside=set_aside,
                more_suggestions=more,
            )
        )
    return CompanyDashboard(
        organisation=member.organisation,
        panels=panels,
        exclusions=organisation_exclusions(session=session, organisation_id=member.organisation.id),
        total=total,
        page=page,
        per_page=per_page,
    )
