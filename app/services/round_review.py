"""The review page of an allocation round: its stored summary as a person reads it.

The headline figures (proposals assigned, GPU hours, offers used, the average fit in words and
the equity option's effect), each pass's offers with the pairs they got, and the unassigned
proposals grouped by the plain reason `matching.round_report` gave them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.services.allocation import AssignedPair, fit_score, get_round, round_pairs
from matching import strength
from matching.round_report import REASON_HEADINGS
from models import AllocationRound

EQUITY_NAMES = {
    "none": "None",
    "priority": "Priority for under-resourced labs",
    "maxmin": "Max-min: raise the lowest fit",
}


@dataclass(frozen=True)
class OfferReview:
    """One offer in one pass: its capacity used, and the pairs the round gave it."""

    offer_id: int
    title: str
    organisation: str
    organisation_verified: bool
    hours_used: float
    hours_available: float
    projects_used: int
    projects_available: int
    pairs: list[AssignedPair]


@dataclass(frozen=True)
class UnassignedGroup:
    """Unassigned proposals of a pass that share a reason; each item is a summary entry
    (`proposal_id`, `title`, `reason`)."""

    code: str
    heading: str
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class PassReview:
    name: str
    proposals: int
    assigned: int
    used_offers: list[OfferReview]
    unused_offers: list[OfferReview]
    unassigned: list[UnassignedGroup]
    solver_note: str

    @property
    def unassigned_count(self) -> int:
        return sum(len(group.items) for group in self.unassigned)


@dataclass(frozen=True)
class Headline:
    """The round at a glance. `average_fit` is out of 100 (None when nothing is assigned);
    `equity` holds one sentence per effect of the equity option."""

    proposals_assigned: int
    proposals_total: int
    hours_allocated: float
    hours_available: float
    offers_used: int
    offers_total: int
    average_fit: int | None
    average_word: str | None
    equity_name: str
    equity: list[str]


@dataclass(frozen=True)
class RoundReview:
    """Everything the review page of a round shows. `include_unverified` is None for rounds
    computed before the option existed (they included every organisation's offers)."""

    round: AllocationRound
    headline: Headline
    passes: list[PassReview]
    include_unverified: bool | None
    unverified_offers: list[dict[str, Any]]
    dismissed_pairs: int


def _solver_note(solved: dict[str, Any]) -> str:
    status, gap = solved.get("status"), solved.get("gap")
    if status == "optimal":
        return "The best possible allocation (proven)."
    if status == "feasible":
        within = f", at most {gap * 100:.1f}% below the best possible" if gap else ""
        return f"A good allocation{within}; the solver stopped before proving it the best."
    if status == "empty":
        return {
            "no proposals": "No proposal needed this kind of offer.",
            "no offers": "No offer of this kind took part.",
            "no allowed pair": "No proposal could take any offer: see the reasons below.",
        }.get(solved.get("message") or "", "Nothing to allocate.")
    return f"The solver failed: {solved.get('message') or status}."


def _equity_sentences(equity: str, passes: list[dict[str, Any]]) -> list[str]:
    if equity == "none":
        return []
    effects = [p["equity_effect"] for p in passes if p.get("equity_effect")]
    if not effects:
        return ["Its effect was not recorded for this round."]
    sentences = []
    if equity == "priority":
        now = sum(e.get("priority_assigned") or 0 for e in effects)
        plain = sum(e.get("priority_assigned_plain") or 0 for e in effects)
        sentences.append(
            f"Under-resourced labs: {now} assignment{'s' if now != 1 else ''} "
            f"({plain} without the option)."
        )
    else:
        lowest = [e["lowest_fit"] for e in effects if e.get("lowest_fit") is not None]
        plain = [e["lowest_fit_plain"] for e in effects if e.get("lowest_fit_plain") is not None]
        if lowest:
            without = f" ({min(plain)}/100 without the option)" if plain else ""
            sentences.append(f"Lowest fit among assigned pairs: {min(lowest)}/100{without}.")
    assigned = sum(e.get("assigned") or 0 for e in effects)
    assigned_plain = sum(e.get("assigned_plain") or 0 for e in effects)
    total = sum(e.get("total") or 0.0 for e in effects)
    total_plain = sum(e.get("total_plain") or 0.0 for e in effects)
    change = (total - total_plain) / total_plain * 100 if total_plain > 0 else 0.0
    cost = (
        "the same total fit"
        if abs(change) < 0.05
        else f"a total fit {abs(change):.1f}% {'lower' if change < 0 else 'higher'}"
    )
    sentences.append(
        f"{assigned} assignment{'s' if assigned != 1 else ''} ({assigned_plain} without the "
        f"option), for {cost}."
    )
    return sentences


def review_round(*, session: Session, round_id: int) -> RoundReview:
    """A stored round as its review page shows it: the headline figures, each pass's offers
    with the pairs they got, and the unassigned proposals grouped by reason."""
    allocation_round = get_round(session=session, round_id=round_id)
    pairs = round_pairs(session=session, round_id=round_id)
    summary = allocation_round.summary or {}
    passes = summary.get("passes", [])
    by_offer: dict[tuple[str, int], list[AssignedPair]] = defaultdict(list)
    for pair in pairs:
        name = "compute" if pair.assignment.gpu_hours > 0 else "data"
        by_offer[(name, pair.offer.id)].append(pair)  # type: ignore[index]

    reviews, offer_ids, offers_used = [], set(), set()
    hours_allocated = hours_available = 0.0
    for solved in passes:
        name = solved.get("name", "")
        used, unused = [], []
        for use in solved.get("offers", []):
            offer_id = use["offer_id"]
            offer_ids.add(offer_id)
            review = OfferReview(
                offer_id=offer_id,
                title=use["title"],
                organisation=use["organisation"],
                organisation_verified=use.get("organisation_verified", True),
                hours_used=use["hours_used"],
                hours_available=use["hours_available"],
                projects_used=use["projects_used"],
                projects_available=use["projects_available"],
                pairs=by_offer.get((name, offer_id), []),
            )
            if name == "compute":
                hours_allocated += review.hours_used
                hours_available += review.hours_available
            if review.projects_used:
                offers_used.add(offer_id)
                used.append(review)
            else:
                unused.append(review)
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in solved.get("unassigned", []):
            groups[item.get("reason_code") or "unknown"].append(item)
        reviews.append(
            PassReview(
                name=name,
                proposals=solved.get(
                    "proposals", solved.get("assigned", 0) + len(solved.get("unassigned", []))
                ),
                assigned=solved.get("assigned", 0),
                used_offers=used,
                unused_offers=unused,
                unassigned=[
                    UnassignedGroup(code, REASON_HEADINGS.get(code, "Reason not recorded"), items)
                    for code, items in sorted(
                        groups.items(), key=lambda group: (-len(group[1]), group[0])
                    )
                ],
                solver_note=_solver_note(solved),
            )
        )
    counts = summary.get("proposals") or {}
    assigned_ids = {pair.proposal.id for pair in pairs}
    total = counts.get("taking_part")
    if total is None:
        unassigned_ids = {i["proposal_id"] for p in passes for i in p.get("unassigned", [])}
        total = len(assigned_ids | unassigned_ids)
    average = summary.get("average_score")
    if average is None and pairs:
        average = sum(pair.assignment.score for pair in pairs) / len(pairs)
    headline = Headline(
        proposals_assigned=counts.get("assigned", len(assigned_ids)),
        proposals_total=total,
        hours_allocated=hours_allocated,
        hours_available=hours_available,
        offers_used=len(offers_used),
        offers_total=len(offer_ids),
        average_fit=fit_score(average),
        average_word=strength(average).split()[0] if average is not None else None,
        equity_name=EQUITY_NAMES.get(allocation_round.equity, allocation_round.equity),
        equity=_equity_sentences(allocation_round.equity, passes),
    )
    return RoundReview(
        round=allocation_round,
        headline=headline,
        passes=reviews,
        include_unverified=summary.get("include_unverified"),
        unverified_offers=summary.get("unverified_offers", []),
        dismissed_pairs=sum(1 for pair in pairs if pair.dismissed),
    )
