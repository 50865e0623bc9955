"""Publishing or discarding a reviewed allocation round.

Publishing checks that every assigned pair still holds (nothing closed, hidden or dismissed
since the round was computed), links each pair to the round, and records a `round.published`
event in the same transaction: after the commit the delivery layer mails everyone concerned
(`round_notices`) and notifies partners, whatever entry point published the round.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import events
from app.services.allocation import get_round, round_pairs
from app.services.catalogue import author_label
from app.services.eligibility import ineligible_pairs
from app.services.errors import Conflict, DomainError
from app.services.visibility import visible_offers, visible_proposals
from models import (
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    Match,
    Offer,
    Proposal,
    Role,
    User,
    utcnow,
)


@dataclass(frozen=True)
class AllocatedItem:
    """One allocated pair as a notification describes it. `proposal_label` is the anonymous
    description of the author (never their name); offers carry their organisation's name,
    which the academic's mail marks "(unverified)" until an administrator verifies it."""

    proposal_id: int
    proposal_title: str
    proposal_label: str
    offer_id: int
    offer_title: str
    organisation: str
    gpu_hours: int
    organisation_verified: bool = True


@dataclass(frozen=True)
class Notice:
    """An email announcing a published round, rendered from `templates/email/<template>.txt`
    and `.html` with `context` (plus `base_url`, the site's address)."""

    to: str
    name: str
    template: str
    subject: str
    context: dict[str, Any]


def round_subject(round_id: int, proposals: int) -> str:
    """The company mail's subject: short enough never to be folded over two header lines
    (mail readers showed the organisation's name on a continuation line, after a space)."""
    allocated = "1 proposal" if proposals == 1 else f"{proposals} proposals"
    return f"Tandem round {round_id}: {allocated} allocated to your offers"


@dataclass(frozen=True)
class PublishedRound:
    round: AllocationRound
    linked: int
    created: int
    skipped: int
    notices: list[Notice]


def _check_still_valid(session: Session, allocation_round: AllocationRound) -> None:
    """Refuse a draft the world has moved past: a later round already handed out capacity,
    or an assigned proposal or offer is no longer open (closed, hidden, author suspended)."""
    later = session.exec(
        select(AllocationRound).where(
            AllocationRound.status == AllocationRoundStatus.published,
            col(AllocationRound.published_at) >= allocation_round.created_at,
        )
    ).first()
    if later is not None:
        raise Conflict(
            f"Round {later.id} was published after this draft was computed, so its capacity "
            "figures are out of date. Discard this draft and compute a new round."
        )
    assignments = session.exec(
        select(AllocationAssignment).where(AllocationAssignment.round_id == allocation_round.id)
    ).all()
    proposal_ids = {a.proposal_id for a in assignments}
    offer_ids = {a.offer_id for a in assignments}
    open_proposals = set(
        session.exec(
            select(Proposal.id).where(col(Proposal.id).in_(proposal_ids), *visible_proposals())
        )
    )
    open_offers = set(
        session.exec(select(Offer.id).where(col(Offer.id).in_(offer_ids), *visible_offers()))
    )
    gone = [f"proposal {i}" for i in sorted(proposal_ids - open_proposals)] + [
        f"offer {i}" for i in sorted(offer_ids - open_offers)
    ]
    if gone:
        raise Conflict(
            f"This draft is out of date: {', '.join(gone)} no longer take part in matching. "
            "Discard it and compute a new round."
        )


def publish_round(*, session: Session, round_id: int) -> PublishedRound:
    """Publish a draft round: link every assigned pair's match to it (creating the match,
    with the round's score, where the pair has none) and record the `round.published` event.

    Pairs whose match a side has dismissed are left out (neither linked nor announced). The
    returned notices are the mails the event's delivery writes after the commit: one per
    academic with an allocated proposal, one per active member of each company with an
    allocated offer. Allocation reveals no contact details; the two sides still confirm
    interest first. Flushes, never commits."""
    allocation_round = get_round(session=session, round_id=round_id, lock=True)
    if allocation_round.status == AllocationRoundStatus.published:
        raise Conflict(f"Round {round_id} is already published.")
    _check_still_valid(session, allocation_round)
    pairs = round_pairs(session=session, round_id=round_id)
    if not pairs:
        raise DomainError("This round assigns no proposal, so there is nothing to publish.")
    version = str(allocation_round.summary.get("algorithm_version") or "allocation")
    linked = created = skipped = 0
    # A pair that stopped fitting since the draft (e.g. an exclusion was added) is left out.
    no_longer_fit = ineligible_pairs(
        session=session, pairs=[(pair.proposal.id, pair.offer.id) for pair in pairs]
    )
    for pair in pairs:
        if pair.dismissed or (pair.proposal.id, pair.offer.id) in no_longer_fit:
            skipped += 1
            continue
        match = pair.match
        if match is None:
            match = Match(
                proposal_id=pair.proposal.id,  # type: ignore[arg-type]
                offer_id=pair.offer.id,  # type: ignore[arg-type]
                score=pair.assignment.score,
                algorithm_version=version,
            )
            created += 1
        else:
            linked += 1
        match.allocation_round_id = allocation_round.id
        session.add(match)
    allocation_round.status = AllocationRoundStatus.published
    allocation_round.published_at = utcnow()
    session.add(allocation_round)
    session.flush()
    events.record(session=session, kind=events.ROUND_PUBLISHED, subject_id=round_id)
    return PublishedRound(
        round=allocation_round,
        linked=linked,
        created=created,
        skipped=skipped,
        notices=round_notices(session=session, round_id=round_id),
    )


def round_notices(*, session: Session, round_id: int) -> list[Notice]:
    """The mails announcing a published round, from what it stored: its assigned pairs whose
    match publishing linked to it (a pair left out was never linked). One per active author
    of an allocated proposal, one per active member of a company with an allocated offer,
    items best score first; none for a round that is not published."""
    allocation_round = session.get(AllocationRound, round_id)
    if allocation_round is None or allocation_round.status != AllocationRoundStatus.published:
        return []
    by_author: dict[int, list[AllocatedItem]] = defaultdict(list)
    by_organisation: dict[int, list[AllocatedItem]] = defaultdict(list)
    for pair in round_pairs(session=session, round_id=round_id):
        if pair.match is None or pair.match.allocation_round_id != round_id:
            continue
        item = AllocatedItem(
            proposal_id=pair.proposal.id,  # type: ignore[arg-type]
            proposal_title=pair.proposal.title,
            proposal_label=author_label(session=session, proposal=pair.proposal),
            offer_id=pair.offer.id,  # type: ignore[arg-type]
            offer_title=pair.offer.title,
            organisation=pair.organisation.name,
            gpu_hours=pair.assignment.gpu_hours,
            organisation_verified=pair.organisation.verified,
        )
        by_author[pair.proposal.author_id].append(item)
        by_organisation[pair.organisation.id].append(item)  # type: ignore[index]

    notices: list[Notice] = []
    authors = session.exec(
        select(User).where(col(User.id).in_(by_author), col(User.active).is_(True))
    ).all()
    for author in sorted(authors, key=lambda u: u.id or 0):
        items = by_author[author.id]  # type: ignore[index]
        notices.append(
            Notice(
                to=author.email,
                name=author.name,
                template="round_published_academic",
                subject="Your proposal was allocated an offer on Tandem"
                if len(items) == 1
                else "Your proposals were allocated offers on Tandem",
                context={"name": author.name, "items": items, "round_id": round_id},
            )
        )
    members = session.exec(
        select(User)
        .where(
            col(User.organisation_id).in_(by_organisation),
            User.role == Role.company,
            col(User.active).is_(True),
        )
        .order_by(col(User.id))
    ).all()
    for member in members:
        items = by_organisation[member.organisation_id]  # type: ignore[index]
        notices.append(
            Notice(
                to=member.email,
                name=member.name,
                template="round_published_company",
                subject=round_subject(round_id, len(items)),
                context={
                    "name": member.name,
                    "organisation": items[0].organisation,
                    "items": items,
                    "round_id": round_id,
                },
            )
        )
    return notices


def discard_round(*, session: Session, round_id: int) -> None:
    """Delete a draft round and its assignments; a published round stays on record."""
    allocation_round = get_round(session=session, round_id=round_id)
    if allocation_round.status == AllocationRoundStatus.published:
        raise Conflict(f"Round {round_id} is published and cannot be discarded.")
    session.exec(
        sa.delete(AllocationAssignment).where(col(AllocationAssignment.round_id) == round_id)
    )
    session.delete(allocation_round)
    session.flush()
