"""Password rules: at least 12 characters and not built from a common password.

The list of common passwords is the 30,000-entry list zxcvbn ships (it is installed, so
nothing is downloaded); zxcvbn's own strength estimate then refuses guessable patterns.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from flask_security import PasswordUtil, password_length_validator
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from app.auth.messages import MESSAGES

COMMON_PASSWORD_MESSAGE = (
    "This password is on a list of common passwords that attackers try first. "
    "Choose something longer and less predictable, such as a few unrelated words."
)


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    """True when the password, or its letters without the digits and symbols around them,
    is a common password ('Password1234!' is 'password' with decoration)."""
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return True
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    return len(core) >= 4 and core in common_passwords()


class TandemPasswordUtil(PasswordUtil):
    """The library's checks (length, then zxcvbn's strength estimate) in Tandem's words:
    zxcvbn's own warnings ("This is similar to a commonly used password") are not, so a
    password it refuses gets Tandem's PASSWORD_TOO_SIMPLE message, or the common-password
    message when that is the reason."""

    def validate(self, password: str, is_register: bool, **kwargs: Any) -> tuple[list | None, str]:
        messages, normalised = super().validate(password, is_register, **kwargs)
        if password_length_validator(normalised):
            return messages, normalised
        if is_common(normalised):
            return [COMMON_PASSWORD_MESSAGE], normalised
        if messages:
            return [MESSAGES["PASSWORD_TOO_SIMPLE"][0]], normalised
        return None, normalised
