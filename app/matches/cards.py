"""One match as a card: the same words, strength label and actions on both sides.

Every page that lists matches (both dashboards, a proposal's page, an offer's page) builds
its cards here and renders them with `templates/matches/_card.html`, so a researcher and a
company see one design: a plain-language strength, one headline reason, the status in words,
the actions open to the viewer's side, and the details folded away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.services.matches import (
    OPEN_FOR_INTEREST,
    Contact,
    Side,
    company_contact,
    contact_of,
)
from matching import strength
from models import Match, MatchStatus, Offer, Proposal, Role, User

# The resource-fit parts as a person reads them (matching/fit.py computes them).
FIT_PART_LABELS: Mapping[str, str] = {
    "hours": "GPU hours per project",
    "memory": "GPU memory",
    "timeline": "Available for the whole project",
    "domains": "Data domains",
}
# Checks about identities (exclusion lists, own organisation) are never shown: they would
# reveal who excluded whom.
PRIVATE_CHECKS = frozenset({"same_organisation", "excluded_by_offer", "excluded_by_proposal"})
OTHER_SIDE = {"academic": "the company", "company": "the researcher"}


@dataclass(frozen=True)
class FitPart:
    label: str
    percent: int


@dataclass(frozen=True)
class MatchCard:
    """What one match card shows. `side` is the viewer's side of the match, or None for a
    reader who is on neither side (no status, no actions)."""

    match: Match
    side: Side | None
    strength: str
    reasons: list[str]
    fit_parts: list[FitPart] = field(default_factory=list)
    contact: Contact | None = None
    takes_interest: bool = True

    @property
    def status(self) -> str:
        return self.match.status.value

    @property
    def strength_class(self) -> str:
        return self.strength.split()[0].lower()

    @property
    def can_express_interest(self) -> bool:
        mine = "interested_academic" if self.side == "academic" else "interested_company"
        return (
            self.side is not None
            and self.takes_interest
            and self.match.status in OPEN_FOR_INTEREST
            and self.status != mine
        )

    @property
    def can_withdraw_interest(self) -> bool:
        return self.side is not None and self.status == f"interested_{self.side}"

    @property
    def can_dismiss(self) -> bool:
        return self.side is not None and self.match.status in OPEN_FOR_INTEREST

    @property
    def can_undo_dismissal(self) -> bool:
        return (
            self.side is not None
            and self.match.status == MatchStatus.declined
            and self.match.declined_by == self.side
        )

    @property
    def other_side(self) -> str:
        return OTHER_SIDE.get(self.side or "", "the other side")


def viewer_side(viewer: Any, proposal: Proposal, offer: Offer) -> Side | None:
    """The side of the pair the signed-in viewer is on: the proposal's author, a member of
    the offer's organisation, or None (anyone else, including the anonymous)."""
    if viewer is None or not getattr(viewer, "is_authenticated", False) or not viewer.active:
        return None
    if viewer.role == Role.academic and proposal.author_id == viewer.id:
        return "academic"
    if viewer.role == Role.company and viewer.organisation_id == offer.organisation_id:
        return "company"
    return None


def _listing(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _topic_reason(explanation: Mapping[str, Any], match: Match, side: Side | None) -> str:
    components = match.components or {}
    publications = explanation.get("best_publications") or []
    if (
        side == "academic"
        and publications
        and components.get("publications", 0.0) > components.get("proposal", 0.0)
    ):
        return f"Close to your paper “{publications[0]['title']}”"
    terms = list(explanation.get("shared_terms") or [])[:3]
    if len(terms) >= 2:  # one shared word alone is thin evidence to headline
        return f"Both mention {_listing(terms)}"
    return "Related in topic"


def _resource_reasons(proposal: Proposal, offer: Offer) -> list[str]:
    reasons = []
    needed = proposal.gpu_hours_needed or 0
    if needed and offer.kind.offers_compute:
        per_project = offer.max_hours_per_project or 0
        if per_project >= needed:
            reasons.append(f"covers all {needed:,} GPU hours needed")
        else:
            reasons.append(f"covers {per_project:,} of the {needed:,} GPU hours needed")
    elif needed:
        reasons.append("data only: the GPU hours must come from a compute offer")
    if proposal.needs_data:
        if offer.kind.offers_data:
            wanted = set(proposal.data_domains or [])
            shared = sorted(wanted & set(offer.data_domains or []))
            if shared:
                reasons.append(f"offers {_listing(shared)} data")
            elif wanted:
                reasons.append(f"offers data, though not in {_listing(sorted(wanted))}")
            else:
                reasons.append("offers data")
        else:
            reasons.append("compute only: the data must come from a data offer")
    return reasons


def build(
    *,
    match: Match,
    proposal: Proposal,
    offer: Offer,
    side: Side | None,
    contact: Contact | None = None,
    takes_interest: bool = True,
    similar_agreements: int = 0,
) -> MatchCard:
    """The card of one match for a viewer on `side` (None: a reader on neither side);
    `similar_agreements` other proposals in its fields reached an agreement with the offer's
    organisation (`app.services.programme.similar_agreements`), said among the reasons."""
    explanation = match.explanation or {}
    fit_parts = [
        FitPart(FIT_PART_LABELS.get(name, name), round(max(0.0, min(1.0, value)) * 100))
        for name, value in (explanation.get("fit_parts") or {}).items()
    ]
    reasons = [_topic_reason(explanation, match, side), *_resource_reasons(proposal, offer)]
    if similar_agreements:
        many = similar_agreements != 1
        reasons.append(
            f"{similar_agreements} similar proposal{'s' if many else ''} "
            f"reached an agreement with this company"
        )
    return MatchCard(
        match=match,
        side=side,
        strength=strength(match.score),
        reasons=reasons,
        fit_parts=fit_parts,
        contact=contact if match.status == MatchStatus.introduced else None,
        takes_interest=takes_interest,
    )


def for_viewer(
    *,
    session: Session,
    viewer: Any,
    match: Match,
    proposal: Proposal,
    offer: Offer,
    takes_interest: bool = True,
    similar_agreements: int = 0,
) -> MatchCard:
    """The card of one match as `viewer` (the signed-in user, or anonymous) sees it: with the
    actions of their side, and the other side's contact once they are introduced."""
    side = viewer_side(viewer, proposal, offer)
    # The viewer's side is known from the signed-in user (`viewer_side` makes the checks of
    # `matches.side_of`), so the other side's contact is read without loading the viewer
    # again: one statement fewer per introduced card.
    contact = None
    if side == "company" and match.status == MatchStatus.introduced:
        contact = contact_of(session, session.get(User, proposal.author_id))
    elif side == "academic" and match.status == MatchStatus.introduced:
        contact = company_contact(session, match)
    return build(
        match=match,
        proposal=proposal,
        offer=offer,
        side=side,
        contact=contact,
        takes_interest=takes_interest,
        similar_agreements=similar_agreements,
    )


def public_checks(explanation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The constraint checks a card may show (never the identity checks)."""
    return [
        check
        for check in explanation.get("checks") or []
        if check.get("passed") or check.get("name") not in PRIVATE_CHECKS
    ]
