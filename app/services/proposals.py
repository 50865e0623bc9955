"""An academic's own proposals: write, publish and close them, and see how each is matched.

Limits live on the models (`ProposalCreate`, `ProposalUpdate`); this module validates with
them and reports each failure under the name of the field it concerns, so a form can show it
next to the input. Every change re-ranks the proposal's recommendations before the caller
commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from app.services import catalogue
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.rematching import Rematcher
from app.services.validation import field_errors, visible_values
from app.services.visibility import MATCHABLE_PROPOSALS
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalCreate,
    ProposalStatus,
    ProposalUpdate,
    Publication,
)

ACTIVE_MATCHES = (
    MatchStatus.suggested,
    MatchStatus.interested_academic,
    MatchStatus.interested_company,
    MatchStatus.introduced,
)
SET_ASIDE_MATCHES = (MatchStatus.declined, MatchStatus.withdrawn)
# Proposals per page of the dashboard: each brings up to top-k offer cards and its set-aside
# ones, so a page stays readable (and as costly) however many proposals the author owns.
DASHBOARD_PAGE_SIZE = 5


def _own(session: Session, proposal_id: int, author_id: int) -> Proposal:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.author_id != author_id:
        raise NotFound(f"No proposal {proposal_id}")
    return proposal


def get_own_proposal(*, session: Session, proposal_id: int, author_id: int) -> Proposal:
    """The author's proposal in any status; anyone else gets NotFound (existence not leaked)."""
    return _own(session, proposal_id, author_id)


def get_for_viewer(*, session: Session, proposal_id: int, viewer_id: int | None) -> Proposal:
    """A proposal as `viewer_id` may see it: their own in any status (drafts included),
    anyone else's only while it is public."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is not None and viewer_id is not None and proposal.author_id == viewer_id:
        return proposal
    return catalogue.get_proposal(session=session, proposal_id=proposal_id)


def check_proposal(*, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """The limits `data` breaks, by field, without writing anything (empty when none), so a
    form can show every problem at once even when some values did not parse."""
    try:
        ProposalCreate.model_validate(visible_values(data))
    except ValidationError as exc:
        return field_errors(exc)
    return {}


def create_proposal(
    *,
    session: Session,
    author_id: int,
    data: Mapping[str, Any],
    publish: bool,
    rematch: Rematcher,
) -> Proposal:
    """A new proposal by `author_id`, open at once when `publish`, else a private draft.

    Raises InvalidInput (by field) when `data` breaks a limit of `ProposalCreate`."""
    try:
        valid = ProposalCreate.model_validate(visible_values(data))
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc)) from exc
    proposal = Proposal.model_validate(
        {
            **valid.model_dump(),
            "author_id": author_id,
            "status": ProposalStatus.open if publish else ProposalStatus.draft,
        }
    )
    session.add(proposal)
    session.flush()
    rematch.proposal(session, proposal.id)  # type: ignore[arg-type]
    return proposal


EDITABLE = tuple(name for name in ProposalUpdate.model_fields if name != "status")


def update_proposal(
    *,
    session: Session,
    proposal_id: int,
    author_id: int,
    data: Mapping[str, Any],
    rematch: Rematcher,
) -> Proposal:
    """Change the author's proposal (status excepted: see `open_proposal`, `close_proposal`).

    The change is checked by `ProposalUpdate`, and the result as a whole by `ProposalCreate`
    so that a required value cannot be blanked. Raises InvalidInput by field, NotFound for
    anyone but the author."""
    proposal = _own(session, proposal_id, author_id)
    changes = visible_values({name: value for name, value in data.items() if name in EDITABLE})
    try:
        update = ProposalUpdate.model_validate(changes)
        merged = {
            **{name: getattr(proposal, name) for name in EDITABLE},
            **update.model_dump(exclude_unset=True),
        }
        valid = ProposalCreate.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc)) from exc
    for name in update.model_dump(exclude_unset=True):
        setattr(proposal, name, getattr(valid, name))
    session.add(proposal)
    session.flush()
    rematch.proposal(session, proposal.id)  # type: ignore[arg-type]
    return proposal


def open_proposal(
    *, session: Session, proposal_id: int, author_id: int, rematch: Rematcher
) -> Proposal:
    """Publish a draft (or reopen a closed proposal) so that it is listed and matched."""
    proposal = _own(session, proposal_id, author_id)
    if proposal.status in MATCHABLE_PROPOSALS:
        raise Conflict("This proposal is already open.")
    proposal.status = ProposalStatus.open
    session.add(proposal)
    session.flush()
    rematch.proposal(session, proposal.id)  # type: ignore[arg-type]
    return proposal


def close_proposal(
    *, session: Session, proposal_id: int, author_id: int, rematch: Rematcher
) -> Proposal:
    """Stop matching the proposal. Suggestions nobody acted on are removed; introductions
    already made are kept."""
    proposal = _own(session, proposal_id, author_id)
    if proposal.status == ProposalStatus.closed:
        raise Conflict("This proposal is already closed.")
    proposal.status = ProposalStatus.closed
    session.add(proposal)
    session.flush()
    rematch.proposal(session, proposal.id)  # type: ignore[arg-type]
    return proposal


# --- the academic's dashboard -------------------------------------------------------------


@dataclass(frozen=True)
class RankedOffer:
    match: Match
    offer: Offer
    organisation: Organisation


@dataclass(frozen=True)
class ProposalOverview:
    """One of the academic's proposals with its offers: `offers` best first, `set_aside`
    those that either side dismissed."""

    proposal: Proposal
    offers: list[RankedOffer] = field(default_factory=list)
    set_aside: list[RankedOffer] = field(default_factory=list)


@dataclass(frozen=True)
class Dashboard(catalogue.Paged):
    """One page of the author's proposals (`per_page` at most, so the page costs the same
    whatever the author owns), with `total` proposals in all."""

    proposals: list[ProposalOverview]
    publication_count: int
    total: int = 0
    page: int = 1
    per_page: int = DASHBOARD_PAGE_SIZE

    @property
    def shown(self) -> int:
        return len(self.proposals)


STATUS_ORDER = {
    ProposalStatus.open: 0,
    ProposalStatus.matched: 0,
    ProposalStatus.draft: 1,
    ProposalStatus.closed: 2,
}


def _shown(match: Match, offer: Offer, today: date) -> bool:
    """An introduction stays (the contact is the point); anything else only while the offer
    still takes projects. Offers hidden by an administrator never show."""
    if offer.hidden:
        return False
    if match.status == MatchStatus.introduced:
        return True
    return offer.status == OfferStatus.open and (offer.deadline is None or offer.deadline >= today)


def _best_first(items: Iterable[RankedOffer]) -> list[RankedOffer]:
    return sorted(
        items,
        key=lambda item: (
            item.match.rank_for_proposal is None,
            item.match.rank_for_proposal or 0,
            -item.match.score,
            item.offer.id,
        ),
    )


def dashboard(
    *,
    session: Session,
    author_id: int,
    page: int = 1,
    per_page: int = DASHBOARD_PAGE_SIZE,
    today: date | None = None,
) -> Dashboard:
    """Page `page` (1-based, brought within range) of the author's proposals, drafts
    included, open ones first, newest first; each open or matched proposal with its stored
    matches ranked, and closed ones with their introductions only. Four statements whatever
    the author owns: the count, the page, its matches with their offers, the publications."""
    today = today or date.today()
    own = col(Proposal.author_id) == author_id
    total = int(session.exec(select(func.count()).where(own)).one())
    page = catalogue.page_within(page, total, per_page)
    status_order = sa.case(
        *((col(Proposal.status) == status, place) for status, place in STATUS_ORDER.items()),
        else_=len(STATUS_ORDER),
    )
    proposals = list(
        session.exec(
            select(Proposal)
            .where(own)
            .order_by(status_order, col(Proposal.id).desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    ids = [p.id for p in proposals]
    ranked: dict[int, list[RankedOffer]] = {p.id: [] for p in proposals}  # type: ignore[misc]
    aside: dict[int, list[RankedOffer]] = {p.id: [] for p in proposals}  # type: ignore[misc]
    by_id = {p.id: p for p in proposals}
    rows = (
        session.exec(
            select(Match, Offer, Organisation)
            .join(Offer, col(Offer.id) == Match.offer_id)
            .join(Organisation, col(Organisation.id) == Offer.organisation_id)
            .where(col(Match.proposal_id).in_(ids))
        )
        if ids
        else []
    )
    for match, offer, organisation in rows:
        item = RankedOffer(match=match, offer=offer, organisation=organisation)
        proposal = by_id[match.proposal_id]
        if match.status in SET_ASIDE_MATCHES:
            if not offer.hidden:
                aside[match.proposal_id].append(item)
        elif _shown(match, offer, today) and (
            proposal.status in MATCHABLE_PROPOSALS or match.status == MatchStatus.introduced
        ):
            ranked[match.proposal_id].append(item)
    publication_count = int(
        session.exec(
            select(func.count()).select_from(Publication).where(Publication.author_id == author_id)
        ).one()
    )
    return Dashboard(
        proposals=[
            ProposalOverview(
                proposal=p,
                offers=_best_first(ranked[p.id]),  # type: ignore[index]
                set_aside=_best_first(aside[p.id]),  # type: ignore[index]
            )
            for p in proposals
        ],
        publication_count=publication_count,
        total=total,
        page=page,
        per_page=per_page,
    )


@dataclass(frozen=True)
class Coverage:
    """Whether the offers that fit a proposal cover each of its needs. Offers are judged on
    what they offer (a compute offer on compute, a data offer on data), so a proposal needing
    both is covered by a compute offer and a data offer together; a need that no fitting offer
    covers is told to the author instead of lowering the scores."""

    needs_compute: bool
    needs_data: bool
    data_domains: tuple[str, ...]
    compute_offers: int
    data_offers: int

    @property
    def uncovered(self) -> list[str]:
        """The needs no fitting offer covers: "compute" and/or "data"."""
        missing = []
        if self.needs_compute and not self.compute_offers:
            missing.append("compute")
        if self.needs_data and not self.data_offers:
            missing.append("data")
        return missing


def coverage(proposal: Proposal, offers: Iterable[Offer]) -> Coverage:
    """How the fitting `offers` (the proposal's recommendations) cover its compute and data
    needs; a data offer counts for a proposal naming data domains only if it shares one."""
    wanted = set(proposal.data_domains or [])
    compute = data = 0
    for offer in offers:
        if offer.kind.offers_compute:
            compute += 1
        if offer.kind.offers_data and (not wanted or wanted & set(offer.data_domains or [])):
            data += 1
    return Coverage(
        needs_compute=(proposal.gpu_hours_needed or 0) > 0,
        needs_data=proposal.needs_data,
        data_domains=tuple(sorted(wanted)),
        compute_offers=compute,
        data_offers=data,
    )
