"""Form fields shared by every blueprint's forms, so that the same kind of input behaves the
same on every page."""

from __future__ import annotations

import re
from typing import Any

from wtforms import Field, IntegerField
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput

# Digits, optionally grouped in threes by commas or spaces as Tandem prints numbers ("20,000").
_WHOLE_NUMBER = re.compile(r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:[, ][0-9]{3})+)")


class WholeNumberField(IntegerField):
    """A whole number typed as text.

    - Empty or blank means *no value* (`data` is None), never an error: every optional
      number on every form, from search filters to offer capacities, reads it that way. A
      number that must be given says so with `ValueRequired`.
    - "20000", " 20000 " and "20,000" are all 20000.
    - Anything else gets one message (`invalid_value_message`), not one per validator, and
      stays on the page as typed: a text input keeps it, where a browser's number input
      would drop it.
    """

    widget = TextInput()

    def __init__(
        self,
        label: str | None = None,
        validators: Any = None,
        invalid_value_message: str | None = None,
        **kwargs: Any,
    ) -> None:
        render_kw = {"inputmode": "numeric", **(kwargs.pop("render_kw", None) or {})}
        super().__init__(
            label,
            validators,
            invalid_value_message=invalid_value_message or "Enter a whole number, e.g. 12.",
            render_kw=render_kw,
            **kwargs,
        )

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = str(valuelist[0]).strip()
        if not text:
            self.data = None
            return
        if not _WHOLE_NUMBER.fullmatch(text):
            self.data = None
            raise ValueError(self.invalid_value_message)
        digits = re.sub(r"[, ]", "", text)
        # Past 30 digits no quantity is meant, and past 4,300 Python refuses to read the
        # number (with a message of its own): it is read as a number past any range, so the
        # field's range check says what the field takes.
        if len(digits.lstrip("+-")) > 30:
            digits = ("-" if digits.startswith("-") else "") + "1" + "0" * 30
        self.data = int(digits)

    def pre_validate(self, form: Any) -> None:
        if self.process_errors:
            raise StopValidation()


class ValueRequired:
    """The field must hold a value: empty or blank input is refused with `message`.

    Unlike WTForms' `InputRequired`, which accepts a few spaces, this reads the field's
    parsed value; and unlike `DataRequired`, it accepts 0."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form: Any, field: Field) -> None:
        if field.data is None or (isinstance(field.data, str) and not field.data.strip()):
            field.errors[:] = []
            raise StopValidation(self.message)
