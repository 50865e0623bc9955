"""Reading pasted BibTeX into plain publication records (bibtexparser 2, pylatexenc).

Only parsing lives here: which entries become publications is decided by
`app.services.publications.import_bibtex`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import bibtexparser
from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.latexwalker import LatexWalkerError

from app.services.errors import DomainError

log = logging.getLogger(__name__)

VENUE_FIELDS = ("journal", "journaltitle", "booktitle", "school", "institution")
YEAR = re.compile(r"\b(\d{4})\b")
_latex = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=True)


class InvalidBibtex(DomainError):
    """The pasted text is not BibTeX we can read; nothing is imported."""


@dataclass(frozen=True)
class BibEntry:
    """One entry as plain text: LaTeX markup, braces and accents decoded. `year` is the
    4-digit number found in the year (or date) field, None when there is none; `raw_year`
    is what was written. `problem` is set when the entry itself is malformed."""

    key: str
    line: int
    title: str
    abstract: str
    year: int | None
    raw_year: str
    venue: str
    problem: str = ""


def plain(value: object) -> str:
    """LaTeX to plain text on one line: `{\\'e}` -> é, `{GAN}s` -> GANs, `\\emph{x}` -> x."""
    text = str(value or "")
    try:
        text = _latex.latex_to_text(text)
    except (LatexWalkerError, RecursionError):
        # RecursionError: absurdly deep braces; the text is kept, braces dropped.
        log.info("could not decode LaTeX in %r; keeping it without braces", text[:80])
        text = text.replace("{", "").replace("}", "")
    return " ".join(text.split())


def _entry(entry: Entry, problem: str = "") -> BibEntry:
    fields = {f.key.lower(): f.value for f in entry.fields}
    raw_year = plain(fields.get("year") or fields.get("date") or "")
    found = YEAR.search(raw_year)
    venue = next((plain(fields[name]) for name in VENUE_FIELDS if fields.get(name)), "")
    if not venue:
        archive = fields.get("archiveprefix") or fields.get("eprinttype")
        venue = plain(archive) if archive else ""
    return BibEntry(
        key=entry.key,
        line=(entry.start_line or 0) + 1,
        title=plain(fields.get("title")),
        abstract=plain(fields.get("abstract")),
        year=int(found.group(1)) if found else None,
        raw_year=raw_year,
        venue=venue,
        problem=problem,
    )


def parse(text: str) -> list[BibEntry]:
    """Every entry of `text`, in order. Raises InvalidBibtex when a block cannot be read
    (naming its line) or when there is no entry at all."""
    library = bibtexparser.parse_string(text)
    entries: list[BibEntry] = []
    for block in library.blocks:
        if isinstance(block, Entry):
            entries.append(_entry(block))
        elif isinstance(block, DuplicateBlockKeyBlock) and isinstance(
            block.ignore_error_block, Entry
        ):
            # Two entries with one key are usually two papers; titles decide duplicates.
            entries.append(_entry(block.ignore_error_block))
        elif isinstance(block, DuplicateFieldKeyBlock) and isinstance(
            block.ignore_error_block, Entry
        ):
            fields = ", ".join(sorted(block.duplicate_keys))
            entries.append(
                _entry(block.ignore_error_block, problem=f"the field {fields} appears twice")
            )
        elif block in library.failed_blocks:
            line = (block.start_line or 0) + 1
            start = " ".join((block.raw or "").split())[:60]
            raise InvalidBibtex(
                f"The BibTeX could not be read at line {line} (“{start}…”): check that "
                "the key is followed by a comma and that every brace and quote is closed. "
                "Nothing was imported."
            )
    entries.sort(key=lambda entry: entry.line)
    if not entries:
        raise InvalidBibtex(
            "No BibTeX entries found. Paste entries such as "
            "@article{key, title = {…}, year = {2024}, journal = {…}}. Nothing was imported."
        )
    return entries
