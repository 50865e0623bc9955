"""People's responses to a synthetic catalogue's recommendations: a share of the recommended
pairs moved into every match state, as the match services would leave them (see
`app.services.synthetic`)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services.corpus import load_snapshot, make_matcher
from app.services.synthetic_vocabulary import (
    DECLINE_REASONS,
)
from app.services.visibility import COMMITTED
from matching import Encoder
from matching.scoring import ScoreWeights
from models import (
    Embedding,
    Match,
    MatchStatus,
    Offer,
    Organisation,
    Proposal,
    ProposalStatus,
    Publication,
    Role,
    User,
    utcnow,
)

PROPOSALS_PER_ACADEMIC = 2  # on average; every academic writes at least one
ACADEMICS_PER_UNIVERSITY = 100
OFFERS_PER_COMPANY = 8
REPORTED_TABLES: tuple[type[Any], ...] = (
    Organisation,
    User,
    Publication,
    Proposal,
    Offer,
    Match,
    Embedding,
)

# The share of the new catalogue's recommended matches moved into each state (at least one
# each when there are enough matches). The rest stay suggested.
MATCH_SHARES: dict[MatchStatus, float] = {
    MatchStatus.interested_academic: 0.06,
    MatchStatus.interested_company: 0.05,
    MatchStatus.introduced: 0.03,
    MatchStatus.declined: 0.04,
    MatchStatus.withdrawn: 0.01,
}


@dataclass(frozen=True)
class _Pair:
    proposal: Proposal
    offer: Offer


def respond(
    *,
    session: Session,
    encoder: Encoder,
    k: int,
    proposal_ids: Iterable[int],
    seed: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    now: datetime | None = None,
    shares: dict[MatchStatus, float] | None = None,
) -> dict[MatchStatus, int]:
    """Record people's responses to a share of the pairs the engine recommends for
    `proposal_ids` (each proposal's and each offer's top `k`), one share per state, as the
    match services (`app.services.matches`) would leave them: interest sets that side's
    time (and the company's contact person); an introduction needs both sides, capacity left
    on the offer, and makes an open proposal matched; a withdrawal is an introduction
    dismissed afterwards; a dismissal keeps the pair out of both top-k lists. A proposal
    gets at most one introduction.

    The responses are stored as matches without scores: the recompute that follows
    (`recommendations.recompute_all`) scores and explains them with the rest, and ranks
    around them, as it does after real responses. Returns how many pairs went to each
    state. Flushes, never commits."""
    shares = shares or MATCH_SHARES
    now = now or utcnow()
    rng = random.Random(seed + 1)
    wanted = set(proposal_ids)
    snapshot = load_snapshot(session=session)
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    pairs = [
        _Pair(snapshot.proposals[p], snapshot.offers[o])
        for p, o in sorted(matcher.recommend(snapshot.corpus, k).ranks())
        if snapshot.proposals[p].id in wanted
    ]
    rng.shuffle(pairs)
    quota = {
        state: max(1, round(share * len(pairs))) if len(pairs) >= len(shares) else 0
        for state, share in shares.items()
    }

    hours_used: Counter[int] = Counter()
    projects_used: Counter[int] = Counter()
    for offer_id, hours in session.execute(
        select(Match.offer_id, Proposal.gpu_hours_needed)
        .join(Proposal, col(Proposal.id) == Match.proposal_id)
        .where(col(Match.status).in_(COMMITTED))
    ):
        hours_used[offer_id] += hours
        projects_used[offer_id] += 1
    contacts: dict[int, int] = {}
    for user_id, organisation_id in session.execute(
        select(User.id, User.organisation_id)
        .where(User.role == Role.company, col(User.active).is_(True))
        .order_by(col(User.id))
    ):
        contacts.setdefault(organisation_id, user_id)

    def fits(pair: _Pair) -> bool:
        """Would an introduction still pass eligibility's capacity checks?"""
        offer, need = pair.offer, pair.proposal.gpu_hours_needed
        if projects_used[offer.id] >= offer.max_projects:
            return False
        compute = need > 0 and offer.kind.offers_compute
        return not compute or need <= offer.gpu_hours_budget - hours_used[offer.id]

    introduced: set[int] = set()
    assigned: dict[int, MatchStatus] = {}
    for state in (MatchStatus.introduced, MatchStatus.withdrawn):
        for index, pair in enumerate(pairs):
            if quota[state] == 0:
                break
            if index in assigned or pair.proposal.id in introduced or not fits(pair):
                continue
            assigned[index] = state
            quota[state] -= 1
            introduced.add(pair.proposal.id)  # type: ignore[arg-type]
            if state == MatchStatus.introduced:
                hours_used[pair.offer.id] += pair.proposal.gpu_hours_needed  # type: ignore[index]
                projects_used[pair.offer.id] += 1  # type: ignore[index]
    for state in (
        MatchStatus.declined,
        MatchStatus.interested_academic,
        MatchStatus.interested_company,
    ):
        for index in range(len(pairs)):
            if quota[state] == 0:
                break
            if index not in assigned:
                assigned[index] = state
                quota[state] -= 1

    version = matcher.weights.version
    rows = []
    for index, state in sorted(assigned.items()):
        pair = pairs[index]
        contact = pair.offer.created_by_id or contacts.get(pair.offer.organisation_id)
        rows.append(_response(rng, pair, state, contact, version, now))
    if rows:
        session.execute(sa.insert(Match.__table__), rows)
    # An introduction makes an open proposal matched; withdrawing later does not reopen it.
    matched = sorted(
        {pairs[i].proposal.id for i, state in assigned.items() if state in _INTRODUCED}  # type: ignore[misc]
    )
    table = Proposal.__table__
    for start in range(0, len(matched), 500):
        session.execute(
            sa.update(table)
            .where(
                table.c.id.in_(matched[start : start + 500]),
                table.c.status == ProposalStatus.open.value,
            )
            .values(status=ProposalStatus.matched.value, updated_at=now)
        )
    # The rows changed under the objects the snapshot loaded.
    session.expire_all()
    return dict(Counter(assigned.values()))


_INTRODUCED = (MatchStatus.introduced, MatchStatus.withdrawn)


def _response(
    rng: random.Random,
    pair: _Pair,
    state: MatchStatus,
    contact: int | None,
    version: str,
    now: datetime,
) -> dict[str, Any]:
    """The match row a response leaves, with a placeholder score (the recompute scores it)."""
    first = now - timedelta(days=rng.uniform(2, 60))
    second = first + timedelta(days=rng.uniform(0, 1.5))
    academic_first = rng.random() < 0.5
    row: dict[str, Any] = {
        "proposal_id": pair.proposal.id,
        "offer_id": pair.offer.id,
        "status": state.value,
        "score": 0.0,
        "components": {},
        "explanation": {},
        "algorithm_version": version,
        "rank_for_proposal": None,
        "rank_for_offer": None,
        "academic_interested_at": None,
        "company_interested_at": None,
        "company_contact_id": None,
        "introduced_at": None,
        "declined_by": None,
        "decline_reason": "",
        "allocation_round_id": None,
        "created_at": first - timedelta(days=rng.uniform(1, 30)),
        "updated_at": first,
    }
    if state == MatchStatus.interested_academic:
        row["academic_interested_at"] = first
    elif state == MatchStatus.interested_company:
        row |= {"company_interested_at": first, "company_contact_id": contact}
    elif state in _INTRODUCED:
        row |= {
            "academic_interested_at": first if academic_first else second,
            "company_interested_at": second if academic_first else first,
            "company_contact_id": contact,
            "introduced_at": second,
            "updated_at": second,
        }
    if state in (MatchStatus.declined, MatchStatus.withdrawn):
        side = rng.choice(("academic", "company"))
        row |= {
            "declined_by": side,
            "decline_reason": rng.choice(DECLINE_REASONS),
            "updated_at": row["updated_at"] + timedelta(days=rng.uniform(0.5, 20)),
        }
        if state == MatchStatus.declined and rng.random() < 0.3:
            # The other side had said interested before this side dismissed the pair.
            other = "company" if side == "academic" else "academic"
            row[f"{other}_interested_at"] = first
            if other == "company":
                row["company_contact_id"] = contact
    return row
