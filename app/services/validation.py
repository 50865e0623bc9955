"""Pydantic's validation errors as messages at the fields of a form, and the text that counts
as typed at all.

The limits live once, on the models' Create/Update schemas; every form shows their errors
through `field_errors`, worded for people rather than programmers. Text is passed through
`visible_text` (`visible_values` for a whole form) before those limits are checked, so that a
title of zero-width spaces is as empty as no title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import ValidationError

# Fields whose numbers read without thousands separators (a year is 2024, not 2,024).
UNGROUPED_FIELDS = frozenset({"year"})

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Characters that show nothing: controls, format characters (zero-width spaces and joiners,
# word joiner, byte-order mark, soft hyphen, direction marks) and every kind of space.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
# Letters and symbols that are drawn as blank space (Hangul fillers, the blank Braille cell).
BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Combining marks show only on a character before them: on their own they show nothing.
MARK_CATEGORIES = frozenset({"Mn", "Me"})


def _invisible(character: str) -> bool:
    return (
        character.isspace()
        or character in BLANK_GLYPHS
        or unicodedata.category(character) in INVISIBLE_CATEGORIES
    )


def visible_text(text: str) -> str:
    """`text` without the invisible characters at either end; "" when nothing in it shows.

    A required field is checked on this, so that text made only of zero-width, format,
    control or space characters (e.g. "\\u200b\\u2060", "\\ufeff ") gets the message of an
    empty field instead of being stored as a blank title. Invisible characters inside the
    text are kept: joiners there shape scripts and emoji."""
    shown = [
        not _invisible(character) and unicodedata.category(character) not in MARK_CATEGORIES
        for character in text
    ]
    if not any(shown):
        return ""
    start = 0
    while _invisible(text[start]):
        start += 1
    end = len(text)
    while _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def visible_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every text value passed through `visible_text`; in a list of texts (areas,
    domains, exclusions), an entry with nothing visible is dropped, as the forms drop a
    blank entry."""
    cleaned: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, str):
            value = visible_text(value)
        elif isinstance(value, list) and all(isinstance(entry, str) for entry in value):
            value = [entry for entry in map(visible_text, value) if entry]
        cleaned[name] = value
    return cleaned


def _as_date(value: Any) -> date | None:
    """A date limit from an error's context (pydantic gives it as ISO text, 2000-01-01);
    None for a number."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return date.fromisoformat(value)
    return None


def _long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def friendly(error: Mapping[str, Any], *, field: str = "") -> str:
    """One pydantic error as a sentence; chosen by the error's type code, never its text."""

    def _number(value: Any) -> str:
        grouped = isinstance(value, int | float) and field not in UNGROUPED_FIELDS
        return f"{value:,}" if grouped else str(value)

    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "This field is required."
        return f"Please write at least {_number(ctx['min_length'])} characters."
    if kind == "string_too_long":
        return f"Please keep this to at most {_number(ctx['max_length'])} characters."
    if kind == "greater_than_equal":
        if (earliest := _as_date(ctx["ge"])) is not None:
            return f"Please enter a date on or after {_long_date(earliest)}."
        return f"Please enter a number of at least {_number(ctx['ge'])}."
    if kind == "less_than_equal":
        if (latest := _as_date(ctx["le"])) is not None:
            return f"Please enter a date on or before {_long_date(latest)}."
        return f"Please enter a number of at most {_number(ctx['le'])}."
    if kind == "too_long":
        return f"Please list at most {_number(ctx['max_length'])} entries."
    if kind == "missing" or error.get("input") is None:
        return "This field is required."
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "Please enter a whole number."
    if kind in {"date_type", "date_parsing", "date_from_datetime_parsing"}:
        return "Please enter a date such as 2030-06-30."
    if kind == "enum":
        return "Please choose one of the options."
    return str(error["msg"]).rstrip(".") + "."


def _start(text: str, length: int = 40) -> str:
    """The beginning of an entry, enough to find it in what was typed."""
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """The errors grouped by top-level field name; an entry of a list is named by number."""
    grouped: dict[str, list[str]] = {}
    for error in exc.errors():
        location = error["loc"]
        name = str(location[0]) if location else ""
        message = friendly(error, field=name)
        if len(location) > 1 and isinstance(location[1], int):
            typed = error.get("input")
            quoted = f" (“{_start(typed)}”)" if isinstance(typed, str) and typed else ""
            message = f"Entry {location[1] + 1}{quoted}: {message}"
        if message not in grouped.setdefault(name, []):
            grouped[name].append(message)
    return grouped
