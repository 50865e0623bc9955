"""Administration: verifying organisations, suspending users and moderating content.

The views require the admin role; these functions only flush, never commit. A change that
would change nothing (verifying a verified organisation, suspending a suspended user) is
refused with `Conflict`, so an administrator learns that someone else got there first.
Suspending, hiding and their reversals refresh the recommendations concerned, so the item
leaves (or re-enters) other people's lists at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.services import visibility
from app.services.catalogue import Page, page_within
from app.services.errors import Conflict, Forbidden, NotFound
from app.services.rematching import Rematcher
from models import (
    AllocationRound,
    AllocationRoundStatus,
    Collaboration,
    Match,
    Offer,
    Organisation,
    Proposal,
    Role,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


def _touch_matches(session: Session, which: sa.ColumnElement[bool]) -> None:
    """Their proposal or offer stopped (or started again) being public: the partner feed,
    which reads changes in updated_at order, must see these matches change too."""
    table = Match.__table__
    session.execute(sa.update(table).where(which).values(updated_at=utcnow()))
    # Their collaborations are shown under the same rule (feed "collaborations").
    followed = Collaboration.__table__
    session.execute(
        sa.update(followed)
        .where(followed.c.match_id.in_(select(Match.id).where(which)))
        .values(updated_at=utcnow())
    )


def _page(session: Session, statement: sa.Select, page: int, per_page: int) -> Page:
    """One page of `statement`'s rows; an out-of-range page number shows the nearest page."""
    total = int(session.exec(select(func.count()).select_from(statement.subquery())).one())
    page = page_within(page, total, per_page)
    items = list(session.exec(statement.offset((page - 1) * per_page).limit(per_page)).all())
    return Page(items=items, total=total, page=page, per_page=per_page)


# Organisations


@dataclass(frozen=True)
class OrganisationRow:
    organisation: Organisation
    members: int
    offers: int
    open_offers: int


def _organisation_rows(
    session: Session, *conditions: sa.ColumnElement[bool]
) -> list[OrganisationRow]:
    members = (
        select(func.count())
        .where(col(User.organisation_id) == Organisation.id)
        .correlate(Organisation)
        .scalar_subquery()
    )
    offers = (
        select(func.count())
        .where(col(Offer.organisation_id) == Organisation.id)
        .correlate(Organisation)
        .scalar_subquery()
    )
    open_offers = (
        select(func.count())
        .where(col(Offer.organisation_id) == Organisation.id, *visibility.visible_offers())
        .correlate(Organisation)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Organisation, members, offers, open_offers)
        .where(*conditions)
        .order_by(col(Organisation.verified), func.lower(Organisation.name))
    ).all()
    return [
        OrganisationRow(organisation=o, members=int(m), offers=int(n), open_offers=int(k))
        for o, m, n, k in rows
    ]


def list_organisations(*, session: Session, unverified_only: bool = False) -> list[OrganisationRow]:
    """Every organisation with its member and offer counts, unverified first, then by name."""
    conditions = [col(Organisation.verified).is_(False)] if unverified_only else []
    return _organisation_rows(session, *conditions)


def set_organisation_verified(
    *, session: Session, organisation_id: int, verified: bool
) -> Organisation:
    """Mark an organisation verified (or not). Offers of unverified organisations stay
    listed, marked "unverified" on the public pages."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"No organisation {organisation_id}.")
    if organisation.verified == verified:
        state = "verified" if verified else "unverified"
        raise Conflict(f"{organisation.name} is already {state}.")
    organisation.verified = verified
    session.add(organisation)
    session.flush()
    log.info("Organisation %s %s", organisation.id, "verified" if verified else "unverified")
    return organisation


# Overview


@dataclass(frozen=True)
class Overview:
    """What needs an administrator's attention."""

    unverified_with_offers: list[OrganisationRow]
    unverified_organisations: int
    organisations: int
    users: int
    suspended_users: int
    hidden_proposals: int
    hidden_offers: int
    draft_rounds: int


def overview(*, session: Session) -> Overview:
    def scalar(statement: sa.Select) -> int:
        return int(session.exec(statement).one() or 0)

    unverified = _organisation_rows(session, col(Organisation.verified).is_(False))
    return Overview(
        unverified_with_offers=[row for row in unverified if row.open_offers],
        unverified_organisations=len(unverified),
        organisations=scalar(select(func.count()).select_from(Organisation)),
        users=scalar(select(func.count()).select_from(User)),
        suspended_users=scalar(select(func.count()).where(col(User.active).is_(False))),
        hidden_proposals=scalar(select(func.count()).where(col(Proposal.hidden).is_(True))),
        hidden_offers=scalar(select(func.count()).where(col(Offer.hidden).is_(True))),
        draft_rounds=scalar(
            select(func.count()).where(AllocationRound.status == AllocationRoundStatus.draft)
        ),
    )


# Users


@dataclass(frozen=True)
class UserRow:
    user: User
    organisation: Organisation | None
    proposals: int


def list_users(
    *,
    session: Session,
    page: int,
    per_page: int,
    query: str | None = None,
    role: Role | None = None,
) -> Page[UserRow]:
    """Users whose name or email contains `query` (any case), optionally of one role,
    ordered by name."""
    proposals = (
        select(func.count())
        .where(col(Proposal.author_id) == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    statement = select(User, Organisation, proposals).outerjoin(
        Organisation, col(Organisation.id) == User.organisation_id
    )
    if query:
        statement = statement.where(
            sa.or_(
                col(User.name).icontains(query, autoescape=True),
                col(User.email).icontains(query, autoescape=True),
            )
        )
    if role is not None:
        statement = statement.where(User.role == role)
    statement = statement.order_by(func.lower(User.name), col(User.id))
    result = _page(session, statement, page, per_page)
    rows = [
        UserRow(user=user, organisation=organisation, proposals=int(count))
        for user, organisation, count in result.items
    ]
    return Page(items=rows, total=result.total, page=result.page, per_page=result.per_page)


def set_user_active(
    *,
    session: Session,
    user_id: int,
    active: bool,
    acting_user_id: int,
    rematch: Rematcher,
) -> User:
    """Suspend (`active=False`) or reinstate a user.

    A suspended user cannot sign in (their open sessions end at the next request) and their
    proposals leave every listing and recommendation; reinstating brings them back. An
    administrator cannot suspend themselves."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    if user.id == acting_user_id and not active:
        raise Forbidden("You cannot suspend your own account.")
    if user.active == active:
        raise Conflict(f"{user.name} is already {'active' if active else 'suspended'}.")
    user.active = active
    session.add(user)
    session.flush()
    log.info(
        "User %s %s by administrator %s",
        user.id,
        "reinstated" if active else "suspended",
        acting_user_id,
    )
    if user.role == Role.academic:
        # Their proposals stop (or start again) being public: the partner feed, which reads
        # changes in updated_at order, must see each of them change.
        table = Proposal.__table__
        session.execute(
            sa.update(table).where(table.c.author_id == user.id).values(updated_at=utcnow())
        )
        _touch_matches(
            session,
            col(Match.proposal_id).in_(select(Proposal.id).where(Proposal.author_id == user.id)),
        )
        rematch.author(session, user.id)  # type: ignore[arg-type]
    return user


# Moderation


@dataclass(frozen=True)
class ProposalRow:
    proposal: Proposal
    author: User


@dataclass(frozen=True)
class OfferRow:
    offer: Offer
    organisation: Organisation


def list_proposals(
    *, session: Session, page: int, per_page: int, hidden_only: bool = False
) -> Page[ProposalRow]:
    """Every proposal, drafts and hidden ones included, newest first."""
    statement = select(Proposal, User).join(User, col(User.id) == Proposal.author_id)
    if hidden_only:
        statement = statement.where(col(Proposal.hidden).is_(True))
    statement = statement.order_by(col(Proposal.created_at).desc(), col(Proposal.id).desc())
    result = _page(session, statement, page, per_page)
    rows = [ProposalRow(proposal=p, author=u) for p, u in result.items]
    return Page(items=rows, total=result.total, page=result.page, per_page=result.per_page)


def list_offers(
    *, session: Session, page: int, per_page: int, hidden_only: bool = False
) -> Page[OfferRow]:
    """Every offer, drafts and hidden ones included, newest first."""
    statement = select(Offer, Organisation).join(
        Organisation, col(Organisation.id) == Offer.organisation_id
    )
    if hidden_only:
        statement = statement.where(col(Offer.hidden).is_(True))
    statement = statement.order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
    result = _page(session, statement, page, per_page)
    rows = [OfferRow(offer=o, organisation=org) for o, org in result.items]
    return Page(items=rows, total=result.total, page=result.page, per_page=result.per_page)


def get_proposal(*, session: Session, proposal_id: int) -> Proposal:
    """Any proposal, hidden or draft (administrators see everything)."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFound(f"No proposal {proposal_id}.")
    return proposal


def get_offer(*, session: Session, offer_id: int) -> Offer:
    """Any offer, hidden or draft (administrators see everything)."""
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"No offer {offer_id}.")
    return offer


def set_proposal_hidden(
    *,
    session: Session,
    proposal_id: int,
    hidden: bool,
    acting_user_id: int,
    rematch: Rematcher,
    reason: str = "",
) -> Proposal:
    """Hide a proposal from every listing and from matching (or show it again); the
    reason is logged. Its suggestions leave the offers' lists at once."""
    proposal = get_proposal(session=session, proposal_id=proposal_id)
    if proposal.hidden == hidden:
        raise Conflict(f"Proposal {proposal_id} is already {'hidden' if hidden else 'visible'}.")
    proposal.hidden = hidden
    session.add(proposal)
    session.flush()
    _touch_matches(session, Match.proposal_id == proposal_id)
    log.info(
        "Proposal %s %s by administrator %s; reason: %s",
        proposal_id,
        "hidden" if hidden else "unhidden",
        acting_user_id,
        reason or "(none given)",
    )
    rematch.proposal(session, proposal_id)
    return proposal


def set_offer_hidden(
    *,
    session: Session,
    offer_id: int,
    hidden: bool,
    acting_user_id: int,
    rematch: Rematcher,
    reason: str = "",
) -> Offer:
    """Hide an offer from every listing and from matching (or show it again); the reason
    is logged. Its suggestions leave the proposals' lists at once."""
    offer = get_offer(session=session, offer_id=offer_id)
    if offer.hidden == hidden:
        raise Conflict(f"Offer {offer_id} is already {'hidden' if hidden else 'visible'}.")
    offer.hidden = hidden
    session.add(offer)
    session.flush()
    _touch_matches(session, Match.offer_id == offer_id)
    log.info(
        "Offer %s %s by administrator %s; reason: %s",
        offer_id,
        "hidden" if hidden else "unhidden",
        acting_user_id,
        reason or "(none given)",
    )
    rematch.offer(session, offer_id)
    return offer
