"""Pydantic's validation errors as messages at the fields of a form.

The limits live once, on the models' Create/Update schemas; every form shows their errors
through `field_errors`, worded for people rather than programmers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

# Fields whose numbers read without thousands separators (a year is 2024, not 2,024).
UNGROUPED_FIELDS = frozenset({"year"})


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
        return f"Please enter a number of at least {_number(ctx['ge'])}."
    if kind == "less_than_equal":
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


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """The errors grouped by top-level field name; an entry of a list is named by number."""
    grouped: dict[str, list[str]] = {}
    for error in exc.errors():
        location = error["loc"]
        name = str(location[0]) if location else ""
        message = friendly(error, field=name)
        if len(location) > 1 and isinstance(location[1], int):
            message = f"Entry {location[1] + 1}: {message}"
        if message not in grouped.setdefault(name, []):
            grouped[name].append(message)
    return grouped
