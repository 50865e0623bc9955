"""Programme reporting: from suggestion to outcome, the GPU hours granted and used, the time
to an agreement, and outcomes by research field and by the lab's resource level.

Read by the admin page (everything) and the partner API (`public_only`: only pairs whose
proposal and offer are public, as the partner feed's consent rule says). A collaboration's
furthest stage is read from its history as well as its current stage, so one that signed an
agreement and then ended without a result still counts as having reached the agreement.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.services import feed
from models import (
    Collaboration,
    CollaborationEvent,
    CollaborationStage,
    LabResourceLevel,
    Match,
    MatchStatus,
    Proposal,
)

# The stages a collaboration moves through, in order (ending without a result can happen
# from any of them and says nothing about how far it got).
PROGRESSION: tuple[CollaborationStage, ...] = (
    CollaborationStage.introduced,
    CollaborationStage.talking,
    CollaborationStage.agreement_signed,
    CollaborationStage.started,
    CollaborationStage.completed,
    CollaborationStage.published,
)
FUNNEL_LABELS: dict[str, str] = {
    "suggested": "Suggested",
    "interested": "Interest from a side",
    "introduced": "Introduced",
    "talking": "Talking",
    "agreement_signed": "Agreement signed",
    "started": "Started",
    "outcome": "Outcome recorded",
    "published": "Published",
}
LAB_LABELS: dict[str, str] = {
    LabResourceLevel.under_resourced.value: "Under-resourced labs",
    LabResourceLevel.typical.value: "Typical labs",
    LabResourceLevel.well_resourced.value: "Well-resourced labs",
}
NO_FIELD = "(no field given)"


@dataclass
class GroupRow:
    """Collaborations of one group (a field or a lab resource level), by furthest stage."""

    group: str
    introduced: int = 0
    agreement_signed: int = 0
    started: int = 0
    completed: int = 0
    published: int = 0
    ended_without_result: int = 0
    gpu_hours_granted: int = 0
    gpu_hours_used: int = 0


@dataclass(frozen=True)
class ProgrammeReport:
    funnel: list[tuple[str, str, int]]
    gpu_hours_granted: int
    gpu_hours_used: int
    days_to_agreement_median: float | None
    agreements_timed: int
    by_field: list[GroupRow]
    by_lab: list[GroupRow]
    public_only: bool

    def to_dict(self) -> dict:
        return {
            "funnel": [{"step": k, "label": label, "count": n} for k, label, n in self.funnel],
            "gpu_hours_granted": self.gpu_hours_granted,
            "gpu_hours_used": self.gpu_hours_used,
            "days_to_agreement_median": self.days_to_agreement_median,
            "agreements_timed": self.agreements_timed,
            "by_field": [asdict(row) for row in self.by_field],
            "by_lab": [asdict(row) for row in self.by_lab],
        }


def _reached(stage: CollaborationStage, history: Iterable[str]) -> int:
    """Index in PROGRESSION of the furthest stage reached (current stage or history)."""
    stages = {stage.value, *history}
    return max(i for i, step in enumerate(PROGRESSION) if step.value in stages | {"introduced"})


def _count(session: Session, where: sa.ColumnElement[bool]) -> int:
    return session.exec(select(func.count()).select_from(Match).where(where)).one()


def programme_report(*, session: Session, public_only: bool = False) -> ProgrammeReport:
    """The whole report (see module). Reads only; O(matches) in SQL counts and
    O(collaborations) in Python."""
    consent = (
        sa.and_(
            col(Match.proposal_id).in_(
                select(Proposal.id).where(feed.RESOURCES["proposals"].public())
            ),
            col(Match.offer_id).in_(
                select(feed.RESOURCES["offers"].model.id).where(feed.RESOURCES["offers"].public())
            ),
        )
        if public_only
        else sa.true()
    )
    suggested = _count(session, consent)
    interested = _count(
        session,
        sa.and_(
            consent,
            sa.or_(
                col(Match.academic_interested_at).is_not(None),
                col(Match.company_interested_at).is_not(None),
                Match.status == MatchStatus.introduced,
            ),
        ),
    )
    rows = session.exec(
        select(
            Collaboration, Match.introduced_at, Proposal.research_areas, Proposal.lab_resource_level
        )
        .join(Match, col(Match.id) == col(Collaboration.match_id))
        .join(Proposal, col(Proposal.id) == col(Match.proposal_id))
        .where(Match.status == MatchStatus.introduced, consent)
        .order_by(col(Collaboration.id))
    ).all()
    ids = [collaboration.id for collaboration, *_ in rows]
    history: dict[int, list[str]] = defaultdict(list)
    agreed_at: dict[int, datetime] = {}
    if ids:
        for collaboration_id, to_stage, created_at in session.exec(
            select(
                CollaborationEvent.collaboration_id,
                CollaborationEvent.to_stage,
                CollaborationEvent.created_at,
            ).where(col(CollaborationEvent.collaboration_id).in_(ids))
        ).all():
            history[collaboration_id].append(to_stage)
            if to_stage == CollaborationStage.agreement_signed.value:
                agreed_at.setdefault(collaboration_id, created_at)
    reached_counts = [0] * len(PROGRESSION)
    outcomes = published = granted = used = 0
    days: list[float] = []
    fields: dict[str, GroupRow] = {}
    labs = {level: GroupRow(label) for level, label in LAB_LABELS.items()}
    for collaboration, introduced_at, areas, lab in rows:
        reached = _reached(collaboration.stage, history[collaboration.id])
        for i in range(reached + 1):
            reached_counts[i] += 1
        outcomes += collaboration.stage.is_outcome
        published += collaboration.stage is CollaborationStage.published
        granted += collaboration.gpu_hours_granted or 0
        used += collaboration.gpu_hours_used or 0
        day = _days_to_agreement(collaboration, introduced_at, agreed_at.get(collaboration.id))
        if day is not None and reached >= PROGRESSION.index(CollaborationStage.agreement_signed):
            days.append(day)
        groups = [fields.setdefault(area, GroupRow(area)) for area in (areas or [NO_FIELD])]
        level = lab.value if isinstance(lab, LabResourceLevel) else str(lab)
        groups.append(labs.setdefault(level, GroupRow(level)))
        for row in groups:
            _add(row, collaboration, reached)
    steps = [
        ("suggested", suggested),
        ("interested", interested),
        *((stage.value, reached_counts[i]) for i, stage in enumerate(PROGRESSION[:4])),
        ("outcome", outcomes),
        ("published", published),
    ]
    return ProgrammeReport(
        funnel=[(key, FUNNEL_LABELS[key], count) for key, count in steps],
        gpu_hours_granted=granted,
        gpu_hours_used=used,
        days_to_agreement_median=round(statistics.median(days), 1) if days else None,
        agreements_timed=len(days),
        by_field=sorted(fields.values(), key=lambda row: (-row.introduced, row.group)),
        by_lab=list(labs.values()),
        public_only=public_only,
    )


def _days_to_agreement(
    collaboration: Collaboration, introduced_at: datetime | None, agreed_at: datetime | None
) -> float | None:
    """Days from the introduction to the agreement: its stated signing date when given, else
    when it was recorded; None without an introduction time or an agreement."""
    if introduced_at is None:
        return None
    if collaboration.agreement_signed_on is not None:
        return float(max(0, (collaboration.agreement_signed_on - introduced_at.date()).days))
    if agreed_at is not None:
        return max(0.0, (agreed_at - introduced_at).total_seconds() / 86_400)
    return None


def _add(row: GroupRow, collaboration: Collaboration, reached: int) -> None:
    row.introduced += 1
    row.agreement_signed += reached >= PROGRESSION.index(CollaborationStage.agreement_signed)
    row.started += reached >= PROGRESSION.index(CollaborationStage.started)
    row.completed += collaboration.stage is CollaborationStage.completed
    row.published += collaboration.stage is CollaborationStage.published
    row.ended_without_result += collaboration.stage is CollaborationStage.ended_without_result
    row.gpu_hours_granted += collaboration.gpu_hours_granted or 0
    row.gpu_hours_used += collaboration.gpu_hours_used or 0


CSV_COLUMNS = (
    "grouping",
    "group",
    "introduced",
    "agreement_signed",
    "started",
    "completed",
    "published",
    "ended_without_result",
    "gpu_hours_granted",
    "gpu_hours_used",
)


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str | int) -> str | int:
    """`value` as a spreadsheet shows it as typed: text that would start a formula gets a
    leading apostrophe (the OWASP advice); numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_rows(report: ProgrammeReport) -> list[list[str | int]]:
    """The report's table as CSV rows (a header first): one row per field and per lab
    resource level. Field names are typed by academics, so no cell can start a formula."""
    rows: list[list[str | int]] = [list(CSV_COLUMNS)]
    for grouping, groups in (("field", report.by_field), ("lab", report.by_lab)):
        for row in groups:
            values = asdict(row)
            rows.append([grouping, *(values[name] for name in CSV_COLUMNS[1:])])
    return [[spreadsheet_text(cell) for cell in row] for row in rows]


# Stages at or past a signed agreement (an ended collaboration counts when it had signed).
AGREED = (
    CollaborationStage.agreement_signed,
    CollaborationStage.started,
    CollaborationStage.completed,
    CollaborationStage.published,
)


def similar_agreements(
    *, session: Session, pairs: Iterable[tuple[Proposal, int]]
) -> dict[tuple[int, int], int]:
    """For each (proposal, organisation id): how many OTHER proposals sharing a research area
    with it reached a signed agreement with that organisation (through any of its offers), for
    the explanation "3 similar proposals reached an agreement with this company". Counted
    over public pairs only, the partner feed's consent rule (still introduced, proposal and
    offer public: a pair one side withdrew from no longer counts). One query for all pairs."""
    pairs = list(pairs)
    organisations = {organisation_id for _, organisation_id in pairs}
    if not organisations:
        return {}
    offers = feed.RESOURCES["offers"]
    rows = session.exec(
        select(Proposal.id, Proposal.research_areas, offers.model.organisation_id)
        .join(Match, col(Match.proposal_id) == col(Proposal.id))
        .join(offers.model, col(offers.model.id) == col(Match.offer_id))
        .join(Collaboration, col(Collaboration.match_id) == col(Match.id))
        .where(
            col(offers.model.organisation_id).in_(organisations),
            Match.status == MatchStatus.introduced,
            sa.or_(
                col(Collaboration.stage).in_(AGREED),
                col(Collaboration.agreement_signed_on).is_not(None),
            ),
            feed.RESOURCES["proposals"].public(),
            offers.public(),
        )
    ).all()
    agreed: dict[int, list[tuple[int, frozenset[str]]]] = defaultdict(list)
    for proposal_id, areas, organisation_id in rows:
        agreed[organisation_id].append((proposal_id, frozenset(areas or ())))
    result: dict[tuple[int, int], int] = {}
    for proposal, organisation_id in pairs:
        areas = frozenset(proposal.research_areas or ())
        others = {
            other
            for other, their_areas in agreed.get(organisation_id, [])
            if other != proposal.id and areas & their_areas
        }
        result[(int(proposal.id or 0), organisation_id)] = len(others)
    return result
