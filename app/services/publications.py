"""An academic's publications: their expertise profile, read by the matcher with each of
their proposals. Adding or removing one re-ranks the offers of every open proposal of theirs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from app.services import bibtex
from app.services.errors import InvalidInput, NotFound
from app.services.rematching import Rematcher
from app.services.validation import field_errors, visible_values
from models import Publication, PublicationCreate

# Caps on what one paste may add and what one profile may hold. A profile is the academic's
# expertise, read by the matcher with every proposal of theirs and re-embedded on each change:
# a few hundred papers describe anyone; thousands are a pasted bibliography database.
MAX_ENTRIES_PER_PASTE = 200
MAX_PUBLICATIONS_PER_PROFILE = 500


def title_key(title: str) -> str:
    """Titles compared without case, punctuation or LaTeX braces."""
    return " ".join(re.findall(r"\w+", title.casefold()))


def list_publications(*, session: Session, author_id: int) -> list[Publication]:
    """The author's publications, newest year first."""
    return list(
        session.exec(
            select(Publication)
            .where(Publication.author_id == author_id)
            .order_by(col(Publication.year).desc(), col(Publication.id).desc())
        )
    )


def publication_count(*, session: Session, author_id: int) -> int:
    """How many publications the author's profile lists."""
    return int(
        session.exec(
            select(func.count()).select_from(Publication).where(Publication.author_id == author_id)
        ).one()
    )


def _profile_full(count: int) -> str:
    return (
        f"Your profile already lists {count:,} publications, the most it can hold "
        f"({MAX_PUBLICATIONS_PER_PROFILE:,}). Remove some older or less relevant ones first: "
        "the matcher reads your most representative work best."
    )


def _known_titles(session: Session, author_id: int) -> set[str]:
    return {
        title_key(title)
        for title in session.exec(
            select(Publication.title).where(Publication.author_id == author_id)
        )
    }


def check_publication(*, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """The limits of `PublicationCreate` that `data` breaks, by field, writing nothing, so
    that a form can show every problem at once even when some values did not parse."""
    try:
        PublicationCreate.model_validate(visible_values(data))
    except ValidationError as exc:
        return field_errors(exc)
    return {}


def add_publication(
    *, session: Session, author_id: int, data: Mapping[str, Any], rematch: Rematcher
) -> Publication:
    """Add one publication by hand. Raises InvalidInput (by field) when `data` breaks a
    limit of `PublicationCreate` or the title is already on the profile, and (for the whole
    form, key "") when the profile is full."""
    try:
        valid = PublicationCreate.model_validate(visible_values(data))
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc)) from exc
    count = publication_count(session=session, author_id=author_id)
    if count >= MAX_PUBLICATIONS_PER_PROFILE:
        raise InvalidInput({"": [_profile_full(count)]})
    if title_key(valid.title) in _known_titles(session, author_id):
        raise InvalidInput({"title": ["A publication with this title is already listed."]})
    publication = Publication.model_validate({**valid.model_dump(), "author_id": author_id})
    session.add(publication)
    session.flush()
    rematch.author(session, author_id)
    return publication


def delete_publication(
    *, session: Session, author_id: int, publication_id: int, rematch: Rematcher
) -> Publication:
    """Remove one of the author's publications; anyone else's is NotFound."""
    publication = session.get(Publication, publication_id)
    if publication is None or publication.author_id != author_id:
        raise NotFound(f"No publication {publication_id}")
    session.delete(publication)
    session.flush()
    rematch.author(session, author_id)
    return publication


@dataclass(frozen=True)
class ImportedEntry:
    key: str
    line: int
    title: str
    year: int
    venue: str


@dataclass(frozen=True)
class SkippedEntry:
    key: str
    line: int
    title: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    imported: list[ImportedEntry] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)


def _limit_reason(exc: ValidationError) -> str:
    labels = {"title": "title", "abstract": "abstract", "year": "year", "venue": "venue"}
    return "; ".join(
        f"{labels.get(name, name)}: {message[0].lower()}{message[1:]}"
        for name, messages in field_errors(exc).items()
        for message in messages
    )


def _skip_reason(
    entry: bibtex.BibEntry, key: str, *, known: set[str], pasted: set[str]
) -> str | None:
    if entry.problem:
        return entry.problem
    if not key:
        return "it has no title"
    if entry.year is None:
        return f"its year “{entry.raw_year}” is not a year" if entry.raw_year else "it has no year"
    if key in known:
        return "this title is already on your profile"
    if key in pasted:
        return "this title appears earlier in the pasted text"
    return None


def import_bibtex(
    *, session: Session, author_id: int, text: str, rematch: Rematcher
) -> ImportReport:
    """Add every usable entry of pasted BibTeX to the author's profile.

    An entry is skipped, with its reason, when it has no title or no year, breaks a limit of
    `PublicationCreate`, or its title is already on the profile (or earlier in the paste).
    Raises bibtex.InvalidBibtex, before writing anything, when the text cannot be read, and
    InvalidInput (at "text"), also before writing anything, when it holds more than
    MAX_ENTRIES_PER_PASTE entries or would take the profile past
    MAX_PUBLICATIONS_PER_PROFILE."""
    entries = bibtex.parse(text)
    if len(entries) > MAX_ENTRIES_PER_PASTE:
        raise InvalidInput(
            {
                "text": [
                    f"This paste holds {len(entries):,} entries; please paste at most "
                    f"{MAX_ENTRIES_PER_PASTE:,} at a time, e.g. your most recent or most "
                    "relevant papers, and the rest in further pastes. Nothing was imported."
                ]
            }
        )
    known = _known_titles(session, author_id)
    pasted: set[str] = set()
    report = ImportReport()
    accepted: list[PublicationCreate] = []
    for entry in entries:
        key = title_key(entry.title)
        reason = _skip_reason(entry, key, known=known, pasted=pasted)
        valid = None
        if reason is None:
            try:
                valid = PublicationCreate.model_validate(
                    visible_values(
                        {
                            "title": entry.title,
                            "abstract": entry.abstract,
                            "year": entry.year,
                            "venue": entry.venue,
                        }
                    )
                )
            except ValidationError as exc:
                reason = _limit_reason(exc)
        if valid is None:
            report.skipped.append(
                SkippedEntry(key=entry.key, line=entry.line, title=entry.title, reason=reason or "")
            )
            continue
        pasted.add(key)
        accepted.append(valid)
        report.imported.append(
            ImportedEntry(
                key=entry.key,
                line=entry.line,
                title=valid.title,
                year=valid.year,
                venue=valid.venue,
            )
        )
    count = publication_count(session=session, author_id=author_id)
    if accepted and count + len(accepted) > MAX_PUBLICATIONS_PER_PROFILE:
        room = MAX_PUBLICATIONS_PER_PROFILE - count
        message = (
            f"Your profile lists {count:,} publications and this paste would add "
            f"{len(accepted):,}, past the most a profile can hold "
            f"({MAX_PUBLICATIONS_PER_PROFILE:,}). Paste at most {room:,} new entries, or "
            "remove some publications first."
            if room > 0
            else _profile_full(count)
        )
        raise InvalidInput({"text": [f"{message} Nothing was imported."]})
    for valid in accepted:
        session.add(Publication.model_validate({**valid.model_dump(), "author_id": author_id}))
    if accepted:
        session.flush()
        rematch.author(session, author_id)
    return report
