"""A small programme history for the reporting tests: matches at every step and
collaborations at several stages (with their history), one of them on a hidden proposal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from matching.scoring import COMPONENTS, ScoreWeights
from models import (
    Collaboration,
    CollaborationEvent,
    CollaborationStage,
    DeclineReason,
    LabResourceLevel,
    Match,
    MatchStatus,
)

INTRODUCED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PATH = ("introduced", "talking", "agreement_signed", "started", "completed", "published")


def record_programme(
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> dict[str, Any]:
    """Expected, everything: 7 suggested, 5 with interest, 4 introduced, 4 talking,
    3 agreements (after 10, 30 and 20 days), 2 started, 3 outcomes, 1 published; GPU hours
    1,700 granted and 1,100 used. The hidden proposal's pair (200 h granted and used, 20 days)
    is left out of what partners see."""
    author = make_user(name="Ada Okafor", email="ada@nb.example.org")
    under = LabResourceLevel.under_resourced
    energy = make_proposal(author_id=author.id, research_areas=["energy"], lab_resource_level=under)
    vision = make_proposal(
        author_id=author.id,
        title="Robust vision for field robots",
        research_areas=["vision"],
        lab_resource_level=LabResourceLevel.typical,
    )
    both = make_proposal(
        author_id=author.id,
        title="Seeing the grid",
        research_areas=["energy", "vision"],
        lab_resource_level=under,
    )
    hidden = make_proposal(
        author_id=author.id,
        title="Hidden work",
        research_areas=["energy"],
        lab_resource_level=under,
        hidden=True,
    )
    first, second = make_offer(title="Helios H100 hours"), make_offer(title="Nimbus A100 hours")

    def match(proposal: Any, offer: Any, status: MatchStatus, **fields: Any) -> Match:
        row = Match(
            proposal_id=proposal.id,
            offer_id=offer.id,
            score=0.5,
            components={"proposal": 0.5, "publications": 0.4, "lexical": 0.2, "fit": 0.9},
            algorithm_version="tandem-2/w-test",
            status=status,
            **fields,
        )
        session.add(row)
        session.flush()
        return row

    def collaboration(row: Match, stages: tuple[str, ...], **fields: Any) -> Collaboration:
        record = Collaboration(
            match_id=row.id,
            stage=CollaborationStage(stages[-1]),
            stage_changed_at=INTRODUCED + timedelta(days=len(stages)),
            **fields,
        )
        session.add(record)
        session.flush()
        for n, (before, after) in enumerate(zip((None, *stages), stages, strict=False)):
            session.add(
                CollaborationEvent(
                    collaboration_id=record.id,
                    from_stage=before,
                    to_stage=after,
                    created_at=INTRODUCED + timedelta(days=n),
                )
            )
        return record

    introduced = {"introduced_at": INTRODUCED, "academic_interested_at": INTRODUCED}
    published = collaboration(
        match(energy, first, MatchStatus.introduced, **introduced),
        PATH,
        agreement_kind="collaboration",
        agreement_signed_on=date(2026, 3, 12),
        gpu_hours_granted=1000,
        gpu_hours_used=800,
        outcome_link="10.1234/tandem.5678",
    )
    ended = collaboration(
        match(vision, first, MatchStatus.introduced, **introduced),
        ("introduced", "talking", "agreement_signed", "ended_without_result"),
        agreement_kind="nda",
        agreement_signed_on=date(2026, 4, 1),
        gpu_hours_granted=500,
        gpu_hours_used=100,
        end_reason="capacity",
        end_reason_text="The cluster was needed elsewhere.",
    )
    talking = collaboration(
        match(both, second, MatchStatus.introduced, **introduced), ("introduced", "talking")
    )
    private = collaboration(
        match(hidden, first, MatchStatus.introduced, **introduced),
        ("introduced", "completed"),
        agreement_signed_on=date(2026, 3, 22),
        gpu_hours_granted=200,
        gpu_hours_used=200,
    )
    match(energy, second, MatchStatus.declined, declined_by="company")
    match(vision, second, MatchStatus.interested_academic, academic_interested_at=INTRODUCED)
    match(both, first, MatchStatus.suggested)
    session.commit()
    return {
        "published": published,
        "ended": ended,
        "talking": talking,
        "private": private,
        "proposals": (energy, vision, both, hidden),
        "offers": (first, second),
    }


AS_FIXED = np.array([ScoreWeights().normalised()[c] for c in COMPONENTS])
"""Today's fixed weights in `COMPONENTS` order: the score a decided match was ranked by."""


def record_decision(
    session: Session,
    *,
    proposal_id: int,
    offer_id: int,
    components: np.ndarray,
    grade: int,
    at: datetime,
    interested: str = "company",
) -> Match:
    """One decided match as the app records it, by `grade`: 0 dismissed by the company for
    its topic, 1 interest from `interested`, 2 introduced, 3 agreement signed, 4 published."""
    match = Match(
        proposal_id=proposal_id,
        offer_id=offer_id,
        score=float(components @ AS_FIXED),
        components=dict(zip(COMPONENTS, components.tolist(), strict=True)),
        algorithm_version=ScoreWeights().version,
        updated_at=at,
    )
    if grade == 0:
        match.status = MatchStatus.declined
        match.declined_by = "company"
        match.decline_reason_code = DeclineReason.topic
    elif grade == 1:
        match.status = MatchStatus(f"interested_{interested}")
        setattr(match, f"{interested}_interested_at", at)
    else:
        match.status = MatchStatus.introduced
        match.introduced_at = at
    session.add(match)
    if grade >= 3:
        session.flush()
        stage = CollaborationStage.agreement_signed if grade == 3 else CollaborationStage.published
        session.add(Collaboration(match_id=match.id, stage=stage, stage_changed_at=at))
    return match
