"""A company's offers: create, edit, open and close them, and its exclusion list.

Every function acts for one signed-in company member and only on offers of their organisation;
an offer of another organisation is reported as not found, so its existence does not leak.
Limits are the models' own (`OfferCreate`, `OfferUpdate`): pydantic errors are returned per
field (`InvalidInput.field_errors`), together with the rules that span several fields.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from annotated_types import MaxLen
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from app.services import catalogue
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.rematching import Rematcher
from app.services.validation import field_errors, visible_text, visible_values
from models import (
    Offer,
    OfferCreate,
    OfferKind,
    OfferStatus,
    OfferUpdate,
    Organisation,
    Role,
    User,
)

COMPUTE_KINDS = tuple(kind for kind in OfferKind if kind.offers_compute)
DATA_KINDS = tuple(kind for kind in OfferKind if kind.offers_data)
# Names and domains are compared as the matcher compares them (matching/eligibility.py).
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
INSTITUTION_NAME_LENGTH = (2, 200)


@dataclass(frozen=True)
class Membership:
    """The signed-in company member and their organisation."""

    user: User
    organisation: Organisation


# --- who may act --------------------------------------------------------------------------


def membership(*, session: Session, user_id: int) -> Membership:
    """The company member and their organisation; NotFound for anyone else (academics,
    administrators, members without an organisation)."""
    user = session.get(User, user_id)
    if user is None or not user.active or user.role != Role.company:
        raise NotFound("Only company members have offers.")
    organisation = session.get(Organisation, user.organisation_id) if user.organisation_id else None
    if organisation is None:
        raise NotFound("Your account belongs to no organisation, so it cannot hold offers.")
    return Membership(user=user, organisation=organisation)


def own_offer(*, session: Session, user_id: int, offer_id: int) -> Offer:
    """An offer of the member's organisation, whatever its status; NotFound otherwise."""
    offer = session.get(Offer, offer_id)
    try:
        member = membership(session=session, user_id=user_id)
    except NotFound:
        member = None
    if offer is None or member is None or offer.organisation_id != member.organisation.id:
        raise NotFound(f"No offer {offer_id}")
    return offer


def viewable_offer(*, session: Session, offer_id: int, viewer_id: int | None) -> Offer:
    """The offer as the viewer may see it: members of its organisation see it in any status
    (drafts included); everyone else only public offers."""
    if viewer_id is not None:
        try:
            return own_offer(session=session, user_id=viewer_id, offer_id=offer_id)
        except NotFound:
            pass
    return catalogue.get_offer(session=session, offer_id=offer_id)


def is_member(*, session: Session, user_id: int | None, offer: Offer) -> bool:
    if user_id is None:
        return False
    user = session.get(User, user_id)
    return (
        user is not None
        and user.active
        and user.role == Role.company
        and user.organisation_id == offer.organisation_id
    )


# --- validation ---------------------------------------------------------------------------


def max_exclusions() -> int:
    """How many exclusions one offer may hold (the limit declared on `OfferCreate`)."""
    for rule in OfferCreate.model_fields["excluded_institutions"].metadata:
        if isinstance(rule, MaxLen):
            return int(rule.max_length)
    raise AssertionError("OfferCreate.excluded_institutions declares no maximum length")


def _exclusion_problem(entry: str) -> str | None:
    lowered = entry.lower()
    if lowered.startswith(("http://", "https://", "www.")) or "/" in entry:
        return "write the bare domain, e.g. uni.example.edu (no https://, www. or path)"
    if "@" in entry.lstrip("@"):
        domain = entry.rsplit("@", 1)[1]
        return f"write the domain only ({domain}), not an email address"
    if " " not in entry.strip() and "." in entry:
        if not DOMAIN.match(lowered.lstrip("@")):
            return "this is not a valid email domain; write it like uni.example.edu"
        return None
    low, high = INSTITUTION_NAME_LENGTH
    if not low <= len(entry) <= high:
        return f"an institution name needs {low} to {high} characters"
    return None


def check_exclusions(entries: Iterable[str]) -> list[str]:
    """Validated exclusions: trimmed, domains lowercased without a leading @, duplicates
    (ignoring case) dropped, blank lines skipped. Raises InvalidInput naming each bad line."""
    cleaned: list[str] = []
    seen: set[str] = set()
    problems: list[str] = []
    for number, raw in enumerate(entries, start=1):
        entry = " ".join(visible_text(raw).split())
        if not entry:
            continue
        problem = _exclusion_problem(entry)
        if problem:
            problems.append(f"Line {number} (“{entry[:60]}”): {problem}.")
            continue
        if " " not in entry and "." in entry:
            entry = entry.lower().lstrip("@")
        if entry.casefold() not in seen:
            seen.add(entry.casefold())
            cleaned.append(entry)
    if not problems and len(cleaned) > max_exclusions():
        problems.append(f"Please list at most {max_exclusions():,} institutions or domains.")
    if problems:
        raise InvalidInput({"excluded_institutions": problems})
    return cleaned


# The offer's dates: neither may be set to a day already past (one that has passed since it
# was set may stay, so that an old offer can still be edited).
DATES = ("deadline", "available_until")


def _rule_errors(
    values: Mapping[str, Any], *, invalid: set[str], today: date, kept: frozenset[str]
) -> dict[str, list[str]]:
    """The rules that span fields, over the fields that passed their own limits (`invalid`
    names those that did not; a rule involving one is skipped). `kept` names the dates that
    are as stored, and so may be in the past. The per-project limit is also a database
    CHECK: it is caught here so that it is a message at the field, never a failed commit."""

    def known(*names: str) -> bool:
        return not invalid.intersection(names)

    errors: dict[str, list[str]] = defaultdict(list)
    kind, budget = values.get("kind"), values.get("gpu_hours_budget")
    per_project, deadline = values.get("max_hours_per_project"), values.get("deadline")
    until = values.get("available_until")
    if known("kind", "gpu_hours_budget", "max_hours_per_project") and kind in COMPUTE_KINDS:
        if budget <= 0:
            errors["gpu_hours_budget"].append(
                "An offer of compute needs a GPU-hour budget above 0, e.g. 20000."
            )
        elif per_project <= 0:
            errors["max_hours_per_project"].append(
                "An offer of compute needs a per-project limit above 0, e.g. 5000."
            )
    if known("gpu_hours_budget", "max_hours_per_project") and per_project > budget:
        errors["max_hours_per_project"].append(
            f"The per-project limit ({per_project:,} GPU hours) cannot exceed the total budget "
            f"({budget:,} GPU hours)."
        )
    if known("kind", "dataset_description") and kind in DATA_KINDS:
        if not str(values.get("dataset_description") or "").strip():
            errors["dataset_description"].append(
                "An offer of data needs a description of the dataset: what it contains, its "
                "size and its licence."
            )
    if "deadline" not in kept and known("deadline") and deadline is not None and deadline < today:
        errors["deadline"].append(
            f"The deadline cannot be in the past (today is {today:%d %B %Y}). "
            "Leave it empty for an offer without a deadline."
        )
    if "available_until" not in kept and known("available_until") and until and until < today:
        errors["available_until"].append(
            f"The resources cannot stop being available in the past (today is "
            f"{today:%d %B %Y}). Give the last day they can be used, or leave it empty if "
            "open-ended."
        )
    if known("deadline", "available_until") and deadline and until and until < deadline:
        errors["available_until"].append(
            "The resources must stay available at least until the deadline for projects."
        )
    return dict(errors)


def _validated(
    data: Mapping[str, Any], *, today: date, kept: frozenset[str] = frozenset()
) -> OfferCreate:
    """Validate a full offer: the model's limits, the exclusion list and the cross-field
    rules, reporting every error at once. Dates named in `kept` may be in the past."""
    errors: dict[str, list[str]] = defaultdict(list)
    exclusions: list[str] = []
    try:
        exclusions = check_exclusions(data.get("excluded_institutions") or [])
    except InvalidInput as exc:
        errors.update(exc.field_errors)
    candidate = visible_values({**data, "excluded_institutions": exclusions})
    values: OfferCreate | None = None
    try:
        values = OfferCreate.model_validate(candidate)
    except ValidationError as exc:
        for name, messages in field_errors(exc).items():
            errors[name].extend(messages)
    typed = values.model_dump() if values is not None else {**_defaults(), **candidate}
    rules = _rule_errors(typed, invalid=set(errors) | _untyped(typed), today=today, kept=kept)
    for name, messages in rules.items():
        errors[name].extend(messages)
    if errors or values is None:
        raise InvalidInput(errors)
    return values


def _untyped(values: Mapping[str, Any]) -> set[str]:
    """Fields the rules cannot read: not (yet) of their model type."""
    untyped = {
        name
        for name in ("gpu_hours_budget", "max_hours_per_project")
        if not isinstance(values.get(name), int)
    }
    untyped |= {
        name
        for name in DATES
        if values.get(name) is not None and not isinstance(values.get(name), date)
    }
    if values.get("kind") not in set(OfferKind):
        untyped.add("kind")
    if not isinstance(values.get("dataset_description"), str):
        untyped.add("dataset_description")
    return untyped


def _defaults() -> dict[str, Any]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in OfferCreate.model_fields.items()
        if not info.is_required()
    }


# --- offers -------------------------------------------------------------------------------


def organisation_exclusions(*, session: Session, organisation_id: int) -> list[str]:
    """The organisation's exclusion list: the union of its offers' lists, in first-seen order
    (compared ignoring case). There is no column of its own; see `save_exclusions`."""
    seen: set[str] = set()
    union: list[str] = []
    for entries in session.exec(
        select(Offer.excluded_institutions)
        .where(Offer.organisation_id == organisation_id)
        .order_by(col(Offer.id))
    ):
        for entry in entries or []:
            if entry.casefold() not in seen:
                seen.add(entry.casefold())
                union.append(entry)
    return union


def offer_count(*, session: Session, organisation_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).select_from(Offer).where(Offer.organisation_id == organisation_id)
        ).one()
    )


def _kept_dates(data: Mapping[str, Any], stored: Offer | None) -> frozenset[str]:
    """The dates in `data` that are the stored offer's own (none for a new offer)."""
    if stored is None:
        return frozenset()
    return frozenset(name for name in DATES if data.get(name) == getattr(stored, name))


def check_offer(
    *, data: Mapping[str, Any], stored: Offer | None = None, today: date | None = None
) -> dict[str, list[str]]:
    """The problems `data` (`OfferCreate` fields) has, by field, without writing anything
    (empty when none), so a form can show every problem at once even when some values did
    not parse. A date in the past is a problem unless it is the `stored` offer's own (an
    edit may keep a deadline that has passed)."""
    try:
        _validated(data, today=today or date.today(), kept=_kept_dates(data, stored))
    except InvalidInput as exc:
        return {name: list(messages) for name, messages in exc.field_errors.items()}
    return {}


def create_offer(
    *,
    session: Session,
    user_id: int,
    data: Mapping[str, Any],
    rematch: Rematcher,
    open_now: bool = False,
    today: date | None = None,
) -> Offer:
    """A new offer of the member's organisation, a draft unless `open_now`.

    `data` holds `OfferCreate` fields; `excluded_institutions` may be raw lines."""
    member = membership(session=session, user_id=user_id)
    values = _validated(data, today=today or date.today())
    offer = Offer(
        **values.model_dump(),
        organisation_id=member.organisation.id,
        created_by_id=member.user.id,
        status=OfferStatus.open if open_now else OfferStatus.draft,
    )
    session.add(offer)
    session.flush()
    rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return offer


def update_offer(
    *,
    session: Session,
    user_id: int,
    offer_id: int,
    data: Mapping[str, Any],
    rematch: Rematcher,
    today: date | None = None,
) -> Offer:
    """Apply `OfferUpdate` fields to an offer of the member's organisation (its status is
    changed only by `open_offer` and `close_offer`). A deadline or end of availability
    already past may stay as it is; a changed one must not be in the past."""
    offer = own_offer(session=session, user_id=user_id, offer_id=offer_id)
    changes = visible_values({name: value for name, value in data.items() if name != "status"})
    try:
        OfferUpdate.model_validate(changes)
    except ValidationError as exc:
        errors = field_errors(exc)
    else:
        errors = {}
    merged = {**{name: getattr(offer, name) for name in OfferCreate.model_fields}, **changes}
    try:
        values = _validated(merged, today=today or date.today(), kept=_kept_dates(merged, offer))
    except InvalidInput as exc:
        for name, messages in exc.field_errors.items():
            known = errors.setdefault(name, [])
            known.extend(message for message in messages if message not in known)
    if errors:
        raise InvalidInput(errors)
    for name, value in values.model_dump().items():
        setattr(offer, name, value)
    session.add(offer)
    session.flush()
    rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return offer


def open_offer(
    *,
    session: Session,
    user_id: int,
    offer_id: int,
    rematch: Rematcher,
    today: date | None = None,
) -> Offer:
    """Publish a draft (or reopen a closed offer) so that it is listed and matched."""
    offer = own_offer(session=session, user_id=user_id, offer_id=offer_id)
    today = today or date.today()
    if offer.status == OfferStatus.open:
        raise Conflict("This offer is already open.")
    if offer.deadline is not None and offer.deadline < today:
        raise Conflict(
            f"The deadline ({offer.deadline:%d %B %Y}) has passed. Edit the offer to set a later "
            "deadline (or none), then open it."
        )
    offer.status = OfferStatus.open
    session.add(offer)
    session.flush()
    rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return offer


def close_offer(*, session: Session, user_id: int, offer_id: int, rematch: Rematcher) -> Offer:
    """Stop taking projects: the offer leaves every list of suggestions; matches either side
    already acted on are kept."""
    offer = own_offer(session=session, user_id=user_id, offer_id=offer_id)
    if offer.status == OfferStatus.closed:
        raise Conflict("This offer is already closed.")
    offer.status = OfferStatus.closed
    session.add(offer)
    session.flush()
    rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return offer


def save_exclusions(
    *, session: Session, user_id: int, entries: Iterable[str], rematch: Rematcher
) -> list[Offer]:
    """Make `entries` the exclusion list of every offer of the member's organisation, and
    refresh the offers whose list changed. Returns the offers changed.

    The list lives on the offers (no column of its own), so an organisation without offers
    cannot keep one yet."""
    member = membership(session=session, user_id=user_id)
    cleaned = check_exclusions(entries)
    offers = list(
        session.exec(
            select(Offer)
            .where(Offer.organisation_id == member.organisation.id)
            .order_by(col(Offer.id))
        )
    )
    if not offers:
        raise InvalidInput(
            {
                "excluded_institutions": [
                    "Your organisation has no offers yet, and the list is kept with its offers. "
                    "Create an offer first: its form has the same list."
                ]
            }
        )
    changed = [offer for offer in offers if offer.excluded_institutions != cleaned]
    for offer in changed:
        offer.excluded_institutions = list(cleaned)
        session.add(offer)
    session.flush()
    for offer in changed:
        rematch.offer(session, offer.id)  # type: ignore[arg-type]
    return changed
