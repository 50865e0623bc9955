"""Acting on a match: interest, dismissal, and the introduction mutual interest makes.

Consent before contact: neither side learns who the other is until both have said they are
interested. Then the match is *introduced*, each side sees the other's name and email, and
both get an introduction email. The service records what happened in the caller's
transaction (interest as match events for the other side, an introduction as a domain
event); the delivery layer writes the mails and partner webhooks after the commit, whatever
entry point introduced the pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import collaborations, eligibility, events, notices
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.rematching import Rematcher
from models import (
    DeclineReason,
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    Role,
    User,
    utcnow,
)

Side = Literal["academic", "company"]

OPEN_FOR_INTEREST = (
    MatchStatus.suggested,
    MatchStatus.interested_academic,
    MatchStatus.interested_company,
)


@dataclass(frozen=True)
class Contact:
    """Who is on the other side of an introduced match. `organisation_verified` is False for
    an organisation no administrator has verified yet (mails naming a company say so)."""

    name: str
    email: str
    organisation: str
    organisation_verified: bool = True


@dataclass(frozen=True)
class Introduction:
    """The facts an introduction email needs, for one recipient."""

    recipient: Contact
    counterpart: Contact
    proposal_id: int
    proposal_title: str
    offer_id: int
    offer_title: str
    side: Side


@dataclass(frozen=True)
class InterestOutcome:
    match: Match
    introduced: bool
    introductions: list[Introduction] = field(default_factory=list)
    side: Side | None = None


def side_of(*, session: Session, match: Match, user_id: int) -> Side:
    """Which side of the match the user is on; NotFound for anyone else (existence of a
    match is not revealed to people who are not on it)."""
    proposal = session.get(Proposal, match.proposal_id)
    offer = session.get(Offer, match.offer_id)
    user = session.get(User, user_id)
    if proposal is None or offer is None or user is None or not user.active:
        raise NotFound("No such match.")
    if user.role == Role.academic and proposal.author_id == user.id:
        return "academic"
    if user.role == Role.company and user.organisation_id == offer.organisation_id:
        return "company"
    raise NotFound("No such match.")


def _get_for(session: Session, match_id: int, user_id: int) -> tuple[Match, Side]:
    match = session.get(Match, match_id)
    if match is None:
        raise NotFound("No such match.")
    return match, side_of(session=session, match=match, user_id=user_id)


def express_interest(
    *,
    session: Session,
    match_id: int,
    user_id: int,
    rematch: Rematcher,
    now: datetime | None = None,
) -> InterestOutcome:
    """Record that the user's side is interested; introduce the pair when the other side
    already is. Saying it twice changes nothing.

    Interest alone is recorded as match events for the other side (mailed as their
    preference says). An introduction is recorded as a `match.introduced` event (the
    delivery layer mails both sides and notifies partners), and asks `rematch` to re-rank
    the offer, whose remaining capacity changed. Flushes, never commits."""
    now = now or utcnow()
    match, side = _get_for(session, match_id, user_id)
    if match.status == MatchStatus.introduced:
        return InterestOutcome(match=match, introduced=False)
    if match.status not in OPEN_FOR_INTEREST:
        raise Conflict(
            "This match was dismissed. Only the side that dismissed it can bring it back, "
            "with Undo dismissal."
        )
    proposal = session.get(Proposal, match.proposal_id)
    offer = session.get(Offer, match.offer_id)
    assert proposal is not None and offer is not None
    if proposal.status not in (ProposalStatus.open, ProposalStatus.matched) or proposal.hidden:
        raise Conflict("This proposal is no longer open.")
    if offer.status != OfferStatus.open or offer.hidden:
        raise Conflict("This offer is no longer open.")
    if eligibility.ineligible_pairs(session=session, pairs=[(proposal.id, offer.id)]):
        # Deliberately unspecific: an exclusion list must not leak through this message.
        raise Conflict(
            "This proposal and offer no longer fit each other's requirements (terms, "
            "capacity, timing or conflicts changed since the suggestion), so it cannot go "
            "further."
        )

    _record_interest(session, match, side, user_id, now)
    introduced = (
        match.academic_interested_at is not None and match.company_interested_at is not None
    )
    if introduced:
        match.status = MatchStatus.introduced
        match.introduced_at = now
        if proposal.status == ProposalStatus.open:
            proposal.status = ProposalStatus.matched
            session.add(proposal)
    else:
        match.status = (
            MatchStatus.interested_academic
            if side == "academic"
            else MatchStatus.interested_company
        )
    session.add(match)
    session.flush()
    if not introduced:
        # The other side hears of it at once or in their digest, as they chose.
        notices.record_interest(session=session, match=match, interested_side=side, now=now)
        return InterestOutcome(match=match, introduced=False, side=side)
    events.record(session=session, kind=events.MATCH_INTRODUCED, subject_id=match.id, now=now)  # type: ignore[arg-type]
    # What follows the introduction is recorded from here on, by either side.
    collaborations.start(session=session, match=match, actor_id=user_id, now=now)
    # The offer's remaining capacity changed: other proposals' lists must follow.
    rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return InterestOutcome(
        match=match,
        introduced=True,
        introductions=introductions(session=session, match=match),
        side=side,
    )


def _record_interest(
    session: Session, match: Match, side: Side, user_id: int, now: datetime
) -> None:
    """Set this side's interest in one conditional statement, then read the row back.

    Two sides saying "interested" at the same moment must introduce them: a read-then-write
    in Python would let the later write overwrite the earlier one with a stale view. The
    UPDATE takes the row's write lock (PostgreSQL) or the database's (SQLite) and keeps a
    time already set; whichever transaction runs second waits for the first to commit and
    then reads both sides' interest."""
    table = Match.__table__
    column = table.c.academic_interested_at if side == "academic" else table.c.company_interested_at
    values: dict[str, Any] = {
        column.name: sa.func.coalesce(column, sa.bindparam("now", now, type_=column.type))
    }
    if side == "company":
        contact = table.c.company_contact_id
        values[contact.name] = sa.func.coalesce(
            contact, sa.bindparam("contact", user_id, type_=contact.type)
        )
    session.execute(sa.update(table).where(table.c.id == match.id).values(**values))
    session.refresh(match)


def dismiss(
    *,
    session: Session,
    match_id: int,
    user_id: int,
    reason: str = "",
    reason_code: str | None = None,
    now: datetime | None = None,
) -> Match:
    """The user's side does not want this pair: it leaves both lists and is never suggested
    again. After an introduction this withdraws from it instead, and its collaboration ends
    without result for the same reason. `reason_code` is one of the short list
    (`DeclineReason`; optional), `reason` the free text."""
    match, side = _get_for(session, match_id, user_id)
    reason = reason.strip()
    if len(reason) > 1_000:
        raise Conflict("Please keep the reason under 1,000 characters.")
    code: DeclineReason | None = None
    if reason_code:
        try:
            code = DeclineReason(reason_code)
        except ValueError:
            raise InvalidInput({"reason_code": ["Please choose a reason from the list."]}) from None
    if match.status in (MatchStatus.declined, MatchStatus.withdrawn):
        return match
    introduced = match.status == MatchStatus.introduced
    match.status = MatchStatus.withdrawn if introduced else MatchStatus.declined
    match.declined_by = side
    match.decline_reason = reason
    match.decline_reason_code = code
    match.rank_for_proposal = match.rank_for_offer = None
    session.add(match)
    session.flush()
    if introduced:
        collaborations.end_on_withdrawal(
            session=session, match=match, user_id=user_id, reason=code, text=reason, now=now
        )
    return match


def withdraw_interest(*, session: Session, match_id: int, user_id: int) -> tuple[Match, Side]:
    """Take back the user's side's interest before the other side has answered: the pair
    returns to a plain suggestion. After an introduction, contact details have been shared;
    withdrawing from it is a dismissal (`dismiss`)."""
    match, side = _get_for(session, match_id, user_id)
    if match.status == MatchStatus.introduced:
        raise Conflict(
            "You are already introduced: both sides have each other's contact details, so "
            "interest can no longer be taken back."
        )
    if match.status != MatchStatus(f"interested_{side}"):
        return match, side  # nothing of this side's to withdraw (already withdrawn, or never)
    if side == "academic":
        match.academic_interested_at = None
    else:
        match.company_interested_at = None
        match.company_contact_id = None
    match.status = MatchStatus.suggested
    session.add(match)
    session.flush()
    return match, side


def undo_dismissal(*, session: Session, match_id: int, user_id: int) -> Match:
    """Bring back a pair the user's side dismissed before any introduction: it becomes a
    suggestion again (with the other side's interest, if it had said so) and is ranked with
    the others at the next re-ranking. Only the side that dismissed it can; a pair the other
    side declined stays declined."""
    match, side = _get_for(session, match_id, user_id)
    if match.status in OPEN_FOR_INTEREST or match.status == MatchStatus.introduced:
        return match
    if match.status != MatchStatus.declined or match.declined_by != side:
        raise Conflict("Only a suggestion your side dismissed before an introduction can return.")
    # The dismissal overrode this side's interest; the other side's interest still stands.
    if side == "academic":
        match.academic_interested_at = None
        other_interested = match.company_interested_at is not None
        match.status = MatchStatus.interested_company if other_interested else MatchStatus.suggested
    else:
        match.company_interested_at = None
        match.company_contact_id = None
        other_interested = match.academic_interested_at is not None
        match.status = (
            MatchStatus.interested_academic if other_interested else MatchStatus.suggested
        )
    match.declined_by = None
    match.decline_reason = ""
    match.decline_reason_code = None
    session.add(match)
    session.flush()
    return match


def contact_of(session: Session, user: User | None) -> Contact | None:
    if user is None:
        return None
    organisation = session.get(Organisation, user.organisation_id) if user.organisation_id else None
    return Contact(
        name=user.name,
        email=user.email,
        organisation=organisation.name if organisation else "",
        organisation_verified=organisation.verified if organisation else True,
    )


def company_contact(session: Session, match: Match) -> Contact | None:
    """The company member the academic is introduced to: the one who said interested, else
    whoever created the offer."""
    offer = session.get(Offer, match.offer_id)
    for user_id in (match.company_contact_id, offer.created_by_id if offer else None):
        user = session.get(User, user_id) if user_id else None
        if user is not None and user.active:
            return contact_of(session, user)
    return None


def counterpart(*, session: Session, match: Match, viewer_id: int) -> Contact | None:
    """The other side's contact details, for a viewer on the match, once introduced; None
    before (consent before contact) and for anyone not on the match."""
    if match.status != MatchStatus.introduced:
        return None
    try:
        side = side_of(session=session, match=match, user_id=viewer_id)
    except NotFound:
        return None
    if side == "company":
        proposal = session.get(Proposal, match.proposal_id)
        return contact_of(session, session.get(User, proposal.author_id) if proposal else None)
    return company_contact(session, match)


def introductions(*, session: Session, match: Match) -> list[Introduction]:
    """One introduction per person to mail: the academic (told of the company's contact
    person) and every active member of the offer's company (told of the academic)."""
    proposal = session.get(Proposal, match.proposal_id)
    offer = session.get(Offer, match.offer_id)
    if proposal is None or offer is None:
        return []
    academic = contact_of(session, session.get(User, proposal.author_id))
    company = company_contact(session, match)
    if academic is None or company is None:
        return []
    common = {
        "proposal_id": proposal.id,
        "proposal_title": proposal.title,
        "offer_id": offer.id,
        "offer_title": offer.title,
    }
    # Every active member of the company learns of the introduction; the academic gets the
    # one contact person.
    members = session.exec(
        select(User).where(
            User.organisation_id == offer.organisation_id,
            User.role == Role.company,
            col(User.active).is_(True),
        )
    ).all()
    introductions = [
        Introduction(recipient=academic, counterpart=company, side="academic", **common)
    ]
    for member in members:
        recipient = contact_of(session, member)
        if recipient is not None:
            introductions.append(
                Introduction(recipient=recipient, counterpart=academic, side="company", **common)
            )
    return introductions
