"""What followed an introduction: a collaboration record per introduced match, moved on by
either side, stage by stage, with a history row per change.

Stages only move forward (`next_stages` says which are open from where): introduced ->
talking -> agreement signed (kind and date) -> started (GPU hours granted) -> completed or
published (DOI or link); "ended without result" (a reason from the short list) may close any
stage before an outcome, and a completed collaboration may still be published. A later stage
may be reached directly (an agreement signed before anyone recorded "talking").

Only the two sides (the academic who owns the proposal, the members of the offer's company)
and administrators see a record; everyone else gets NotFound, as for matches. Administrators
read but do not move records. A change is told to the other side through the match-event
path (`notices.record_collaboration`), so it arrives as they chose: at once, in their daily
or weekly digest, or not at all. Services flush, never commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import notices
from app.services.catalogue import Page, page_within
from app.services.errors import Conflict, InvalidInput, NotFound
from models import (
    AgreementKind,
    Collaboration,
    CollaborationEvent,
    CollaborationStage,
    DeclineReason,
    Match,
    MatchStatus,
    Notification,
    NotificationPreference,
    Offer,
    Proposal,
    Role,
    User,
    utcnow,
)
from models._base import EARLIEST_DATE
from models.collaboration import MAX_COLLABORATION_GPU_HOURS

Side = Literal["academic", "company"]
Viewer = Literal["academic", "company", "admin"]

S = CollaborationStage
ORDER = (S.introduced, S.talking, S.agreement_signed, S.started, S.completed, S.published)
STAGE_LABELS = {
    S.introduced: "Introduced",
    S.talking: "Talking",
    S.agreement_signed: "Agreement signed",
    S.started: "Started",
    S.completed: "Completed",
    S.published: "Published",
    S.ended_without_result: "Ended without result",
}
STAGE_HELP = {
    S.talking: "You are discussing the work.",
    S.agreement_signed: "An NDA, data-use or collaboration agreement is signed.",
    S.started: "The work has begun; say how many GPU hours were granted.",
    S.completed: "The work is done.",
    S.published: "A paper, preprint, dataset or code release came out of it.",
    S.ended_without_result: "It stopped without a result; say why.",
}
AGREEMENT_LABELS = {
    AgreementKind.nda: "Non-disclosure agreement (NDA)",
    AgreementKind.data_use: "Data-use agreement",
    AgreementKind.collaboration: "Collaboration agreement",
}
REASON_LABELS = {
    DeclineReason.topic: "The topic is not a fit",
    DeclineReason.terms: "The terms do not work (IP, publication, NDA)",
    DeclineReason.capacity: "Not enough capacity (hours, hardware, people, data)",
    DeclineReason.timing: "The timing does not work",
    DeclineReason.other: "Something else",
}
TEXT_LIMIT = 1_000
LINK_LIMIT = 500
# A DOI as printed (10.prefix/suffix), bare or as a doi: / doi.org reference.
DOI = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/[^\s<>\"\\]+)$", re.I)
# A result link is rendered as a link: https only (no http, javascript:, data:), and none of
# the characters that would end an HTML attribute or tag.
URL = re.compile(r"^https://[^\s/?#<>\"'\\@]+\.[^\s/?#<>\"'\\@]+(?:[/?#][^\s<>\"\\]*)?$", re.I)
# The outbox kind of a reminder digest (`app.notify` writes them).
REMINDER_KIND = "collaboration-reminder"
# A date a person types may be "today" in their time zone and tomorrow in UTC.
DATE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Change:
    """What a person asks for: the stage to move to and the details that stage takes."""

    stage: str
    agreement_kind: str | None = None
    agreement_signed_on: date | None = None
    gpu_hours_granted: int | None = None
    gpu_hours_used: int | None = None
    outcome_link: str = ""
    end_reason: str | None = None
    end_reason_text: str = ""


@dataclass(frozen=True)
class View:
    """A collaboration as one viewer may see it."""

    collaboration: Collaboration
    match: Match
    proposal: Proposal
    offer: Offer
    viewer: Viewer

    @property
    def can_move(self) -> bool:
        return self.viewer != "admin" and bool(next_stages(self.collaboration.stage))


def next_stages(stage: CollaborationStage) -> tuple[CollaborationStage, ...]:
    """The stages a collaboration at `stage` may move to, in order."""
    if stage in (S.published, S.ended_without_result):
        return ()
    if stage == S.completed:
        return (S.published,)
    later = ORDER[ORDER.index(stage) + 1 :]
    return (*later, S.ended_without_result)


def start(
    *,
    session: Session,
    match: Match,
    actor_id: int | None = None,
    now: datetime | None = None,
) -> Collaboration:
    """The record of an introduction, at "introduced", in the introduction's transaction;
    the existing one when there is one already. Flushes, never commits."""
    existing = session.exec(select(Collaboration).where(Collaboration.match_id == match.id)).first()
    if existing is not None:
        return existing
    now = now or utcnow()
    collaboration = Collaboration(
        match_id=match.id,  # type: ignore[arg-type]
        stage=S.introduced,
        stage_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(collaboration)
    session.flush()
    session.add(
        CollaborationEvent(
            collaboration_id=collaboration.id,  # type: ignore[arg-type]
            actor_id=actor_id,
            from_stage=None,
            to_stage=S.introduced.value,
            details={},
            created_at=now,
        )
    )
    session.flush()
    return collaboration


def side_of(*, session: Session, proposal: Proposal, offer: Offer, user: User | None) -> Viewer:
    """Which side the user is on, or "admin"; NotFound for anyone else (a record's existence
    is not revealed to people who are not on it)."""
    if user is None or not user.active:
        raise NotFound("No such collaboration.")
    if user.role == Role.admin:
        return "admin"
    if user.role == Role.academic and proposal.author_id == user.id:
        return "academic"
    if user.role == Role.company and user.organisation_id == offer.organisation_id:
        return "company"
    raise NotFound("No such collaboration.")


def get(*, session: Session, collaboration_id: int, user_id: int) -> View:
    """The collaboration as the user may see it; NotFound when it does not exist or the user
    is on neither side and is no administrator."""
    collaboration = session.get(Collaboration, collaboration_id)
    match = session.get(Match, collaboration.match_id) if collaboration else None
    proposal = session.get(Proposal, match.proposal_id) if match else None
    offer = session.get(Offer, match.offer_id) if match else None
    if collaboration is None or match is None or proposal is None or offer is None:
        raise NotFound("No such collaboration.")
    viewer = side_of(
        session=session, proposal=proposal, offer=offer, user=session.get(User, user_id)
    )
    return View(collaboration, match, proposal, offer, viewer)


def for_match(*, session: Session, match_id: int, user_id: int) -> View:
    """The collaboration of an introduced match, for someone who may see it."""
    collaboration = session.exec(
        select(Collaboration).where(Collaboration.match_id == match_id)
    ).first()
    if collaboration is None:
        raise NotFound("No such collaboration.")
    return get(session=session, collaboration_id=collaboration.id, user_id=user_id)  # type: ignore[arg-type]


def visible(*, session: Session, user_id: int, page: int = 1, per_page: int = 20) -> Page[View]:
    """One page of the collaborations the user may see, most recently moved first: their own
    (either side), or every one for an administrator. A page number past the end shows the
    last page."""
    user = session.get(User, user_id)
    query = (
        select(Collaboration, Match, Proposal, Offer)
        .join(Match, col(Match.id) == col(Collaboration.match_id))
        .join(Proposal, col(Proposal.id) == col(Match.proposal_id))
        .join(Offer, col(Offer.id) == col(Match.offer_id))
    )
    nothing: Page[View] = Page(items=[], total=0, page=1, per_page=per_page)
    if user is None or not user.active:
        return nothing
    if user.role == Role.academic:
        query = query.where(Proposal.author_id == user.id)
    elif user.role == Role.company:
        if user.organisation_id is None:
            return nothing
        query = query.where(Offer.organisation_id == user.organisation_id)
    elif user.role != Role.admin:
        return nothing
    viewer: Viewer = "admin" if user.role == Role.admin else user.role.value  # type: ignore[assignment]
    total = int(session.exec(select(sa.func.count()).select_from(query.subquery())).one())
    page = page_within(page, total, per_page)
    rows = session.exec(
        query.order_by(col(Collaboration.stage_changed_at).desc(), col(Collaboration.id).desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    views = [View(c, m, p, o, viewer) for c, m, p, o in rows]
    return Page(items=views, total=total, page=page, per_page=per_page)


def history(*, session: Session, collaboration_id: int) -> list[tuple[CollaborationEvent, str]]:
    """Every change, oldest first, with the name of who made it ("" for none)."""
    events = session.exec(
        select(CollaborationEvent)
        .where(CollaborationEvent.collaboration_id == collaboration_id)
        .order_by(col(CollaborationEvent.created_at), col(CollaborationEvent.id))
    ).all()
    names: dict[int, str] = {}
    for event in events:
        if event.actor_id is not None and event.actor_id not in names:
            actor = session.get(User, event.actor_id)
            names[event.actor_id] = actor.name if actor else ""
    return [(event, names.get(event.actor_id, "") if event.actor_id else "") for event in events]


def _link(value: str, errors: dict[str, list[str]]) -> str | None:
    value = value.strip()
    if not value:
        errors.setdefault("outcome_link", []).append(
            "Please give the DOI (e.g. 10.1234/abcd.5678) or a link (https://…) of the result."
        )
        return None
    if len(value) > LINK_LIMIT:
        errors.setdefault("outcome_link", []).append(
            f"Please keep the link under {LINK_LIMIT} characters."
        )
        return None
    doi = DOI.match(value)
    if doi:
        return f"https://doi.org/{doi.group(1)}"
    if URL.match(value):
        return value
    errors.setdefault("outcome_link", []).append(
        "This is neither a DOI (10.1234/abcd.5678) nor a web link starting with https://."
    )
    return None


def _hours(name: str, value: int | None, most: int, errors: dict[str, list[str]]) -> None:
    if value is None:
        return
    if value < 0:
        errors.setdefault(name, []).append("Please give a number of GPU hours of 0 or more.")
    elif value > most:
        errors.setdefault(name, []).append(
            f"That is more than {most:,} GPU hours, more than this offer could give; please "
            "check the number."
        )


def validate(*, change: Change, current: CollaborationStage, offer: Offer, now: datetime) -> dict:
    """The values to store for `change`, or InvalidInput naming each field at fault."""
    errors: dict[str, list[str]] = {}
    try:
        target = CollaborationStage(change.stage)
    except ValueError:
        raise InvalidInput({"stage": ["Please choose the stage it has reached."]}) from None
    allowed = next_stages(current)
    if target not in allowed:
        if not allowed:
            raise Conflict("This collaboration has reached its outcome; it cannot move on.")
        names = ", ".join(STAGE_LABELS[s] for s in allowed)
        raise InvalidInput(
            {"stage": [f"From “{STAGE_LABELS[current]}” it can move on to: {names}."]}
        )
    values: dict[str, Any] = {"stage": target}
    most = offer.gpu_hours_budget if offer.gpu_hours_budget > 0 else MAX_COLLABORATION_GPU_HOURS

    if target == S.agreement_signed or change.agreement_kind or change.agreement_signed_on:
        required = target == S.agreement_signed
        if change.agreement_kind:
            try:
                values["agreement_kind"] = AgreementKind(change.agreement_kind)
            except ValueError:
                errors["agreement_kind"] = ["Please choose the kind of agreement."]
        elif required:
            errors["agreement_kind"] = ["Please choose the kind of agreement that was signed."]
        signed = change.agreement_signed_on
        if signed is None:
            if required:
                errors["agreement_signed_on"] = ["Please give the date it was signed."]
        elif signed > (now + DATE_SLACK).date():
            errors["agreement_signed_on"] = [
                "The date is in the future: give the date it was signed, today or earlier."
            ]
        elif signed < EARLIEST_DATE:
            errors["agreement_signed_on"] = [
                f"Please give a date from {EARLIEST_DATE:%Y} on, e.g. {now:%Y-%m-%d}."
            ]
        else:
            values["agreement_signed_on"] = signed

    if target == S.started or change.gpu_hours_granted is not None:
        if change.gpu_hours_granted is None:
            errors["gpu_hours_granted"] = [
                "Please give the GPU hours granted (0 when the collaboration uses no compute)."
            ]
        else:
            _hours("gpu_hours_granted", change.gpu_hours_granted, most, errors)
            values["gpu_hours_granted"] = change.gpu_hours_granted
    if change.gpu_hours_used is not None:
        _hours("gpu_hours_used", change.gpu_hours_used, MAX_COLLABORATION_GPU_HOURS, errors)
        values["gpu_hours_used"] = change.gpu_hours_used

    if target == S.published:
        values["outcome_link"] = _link(change.outcome_link, errors)

    text = change.end_reason_text.strip()
    if len(text) > TEXT_LIMIT:
        errors["end_reason_text"] = [f"Please keep it under {TEXT_LIMIT:,} characters."]
    if target == S.ended_without_result:
        try:
            values["end_reason"] = DeclineReason(change.end_reason or "")
        except ValueError:
            errors["end_reason"] = ["Please choose why it ended."]
        if values.get("end_reason") == DeclineReason.other and not text:
            errors["end_reason_text"] = ["Please say in a few words why it ended."]
        values["end_reason_text"] = text
    if errors:
        raise InvalidInput(errors)
    return values


def advance(
    *,
    session: Session,
    collaboration_id: int,
    user_id: int,
    change: Change,
    now: datetime | None = None,
    tell: bool = True,
) -> Collaboration:
    """Move the collaboration on as one side says, keep the change as a history row, and
    tell the other side (unless `tell` is False: the demo's history is not news).
    InvalidInput (field by field) or Conflict leaves nothing written; NotFound for anyone
    not on the collaboration. Flushes, never commits."""
    now = now or utcnow()
    view = get(session=session, collaboration_id=collaboration_id, user_id=user_id)
    if view.viewer == "admin":
        raise Conflict("Administrators can see collaborations; only the two sides move them on.")
    collaboration = view.collaboration
    values = validate(change=change, current=collaboration.stage, offer=view.offer, now=now)
    from_stage = collaboration.stage
    # Claim the move in one conditional statement: when both sides move it at the same
    # moment, the second waits for the first's commit (the row's write lock on PostgreSQL,
    # the database's on SQLite), finds the stage changed, and is told, not applied on top.
    table = Collaboration.__table__
    claimed = session.execute(
        sa.update(table)
        .where(table.c.id == collaboration.id, table.c.stage == from_stage.value)
        .values(stage_changed_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "The other side moved this collaboration on a moment ago; here it is as it stands now."
        )
    for name, value in values.items():
        setattr(collaboration, name, value)
    collaboration.stage_changed_at = now
    collaboration.updated_at = now
    session.add(collaboration)
    details = {
        name: value.isoformat() if isinstance(value, date) else getattr(value, "value", value)
        for name, value in values.items()
        if name != "stage" and value not in (None, "")
    }
    event = CollaborationEvent(
        collaboration_id=collaboration.id,  # type: ignore[arg-type]
        actor_id=user_id,
        from_stage=from_stage.value,
        to_stage=collaboration.stage.value,
        details=details,
        created_at=now,
    )
    session.add(event)
    session.flush()
    if not tell:
        return collaboration
    notices.record_collaboration(
        session=session,
        match=view.match,
        recipients=_other_side(session, view, view.viewer),  # type: ignore[arg-type]
        event_id=event.id,  # type: ignore[arg-type]
        now=now,
    )
    return collaboration


def _other_side(session: Session, view: View, actor_side: Side) -> list[tuple[User, Side]]:
    if actor_side == "company":
        author = session.get(User, view.proposal.author_id)
        return [(author, "academic")] if author is not None else []
    members = session.exec(
        select(User)
        .where(
            User.organisation_id == view.offer.organisation_id,
            User.role == Role.company,
            col(User.active).is_(True),
        )
        .order_by(col(User.id))
    ).all()
    return [(member, "company") for member in members]


def end_on_withdrawal(
    *,
    session: Session,
    match: Match,
    user_id: int,
    reason: DeclineReason | None,
    text: str,
    now: datetime | None = None,
) -> Collaboration | None:
    """A side withdrew from an introduced match: its collaboration ends without result, for
    the same reason, unless it already reached an outcome (then it is only marked changed)."""
    collaboration = session.exec(
        select(Collaboration).where(Collaboration.match_id == match.id)
    ).first()
    if collaboration is None:
        return None
    if not next_stages(collaboration.stage):
        # The outcome stands, but the pair left the partner feed: a changed row is how a
        # partner's sync learns it is gone (a tombstone).
        collaboration.updated_at = now or utcnow()
        session.add(collaboration)
        session.flush()
        return collaboration
    change = Change(
        stage=S.ended_without_result.value,
        end_reason=(reason or DeclineReason.other).value,
        end_reason_text=text or "Withdrawn from the introduction.",
    )
    return advance(
        session=session,
        collaboration_id=collaboration.id,
        user_id=user_id,
        change=change,
        now=now,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Stale:
    """A collaboration that has not moved for a while, as a reminder lists it."""

    collaboration_id: int
    proposal_title: str
    offer_title: str
    stage: CollaborationStage
    days: int


@dataclass(frozen=True)
class Reminder:
    """One person's reminder digest for one interval."""

    key: str
    user: User
    items: tuple[Stale, ...]


def due_reminders(*, session: Session, days: int, now: datetime | None = None) -> list[Reminder]:
    """One digest per person on either side of collaborations not at an outcome that have not
    moved for `days` days or more, keyed by the person and the interval (`days`-long windows
    counted from 1970-01-01), so a person gets at most one per interval however often this
    runs; and nobody who had one less than `days` days ago gets another (the windows are
    fixed, so without this two runs an hour apart across a boundary would both send one).
    People who turned reminders off, or all match mail off, get none."""
    now = now or utcnow()
    days = max(1, int(days))
    cutoff = now - timedelta(days=days)
    reminded = set(
        session.exec(
            select(Notification.user_id).where(
                Notification.kind == REMINDER_KIND, col(Notification.created_at) > cutoff
            )
        ).all()
    )
    rows = session.exec(
        select(Collaboration, Match, Proposal, Offer)
        .join(Match, col(Match.id) == col(Collaboration.match_id))
        .join(Proposal, col(Proposal.id) == col(Match.proposal_id))
        .join(Offer, col(Offer.id) == col(Match.offer_id))
        .where(
            col(Collaboration.stage).not_in([s.value for s in (S.completed, S.published)]),
            Collaboration.stage != S.ended_without_result,
            col(Collaboration.stage_changed_at) <= cutoff,
            Match.status == MatchStatus.introduced,
        )
        .order_by(col(Collaboration.stage_changed_at), col(Collaboration.id))
    ).all()
    by_user: dict[int, list[Stale]] = {}
    users: dict[int, User] = {}
    members: dict[int, list[User]] = {}
    for collaboration, _match, proposal, offer in rows:
        moved = collaboration.stage_changed_at
        if moved.tzinfo is None:
            moved = moved.replace(tzinfo=now.tzinfo)
        item = Stale(
            collaboration_id=collaboration.id,  # type: ignore[arg-type]
            proposal_title=proposal.title,
            offer_title=offer.title,
            stage=collaboration.stage,
            days=(now - moved).days,
        )
        if offer.organisation_id not in members:
            members[offer.organisation_id] = list(
                session.exec(
                    select(User).where(
                        User.organisation_id == offer.organisation_id, User.role == Role.company
                    )
                ).all()
            )
        author = session.get(User, proposal.author_id)
        for user in [author, *members[offer.organisation_id]]:
            if (
                user is None
                or not user.active
                or not user.collaboration_reminders
                or user.notification_preference == NotificationPreference.off
                or user.id in reminded
            ):
                continue
            users[user.id] = user  # type: ignore[index]
            by_user.setdefault(user.id, []).append(item)  # type: ignore[arg-type]
    window = int(now.timestamp() // 86_400) // days
    return [
        Reminder(
            key=f"collaboration-reminder:user-{user_id}:every-{days}d:{window}",
            user=users[user_id],
            items=tuple(items),
        )
        for user_id, items in sorted(by_user.items())
    ]


def set_reminders(*, session: Session, user_id: int, on: bool) -> User:
    """Turn the reminder digest on or off for the user."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    user.collaboration_reminders = bool(on)
    session.add(user)
    session.flush()
    return user
