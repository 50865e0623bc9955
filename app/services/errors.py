"""Typed domain errors, each mapped once to a response by the views."""

from collections.abc import Mapping


class DomainError(Exception):
    """A request that the domain refuses; the message is shown to the user."""


class NotFound(DomainError):
    """The record does not exist, or the current user may not see it."""


class Forbidden(DomainError):
    """The current user may see the record but not do this to it."""


class Conflict(DomainError):
    """The request contradicts the record's current state (e.g. acting on a closed match)."""


class InvalidInput(DomainError):
    """Submitted values that break a limit or a rule; `field_errors` maps each field name to
    messages a person can act on (the key "" holds messages that concern no single field)."""

    def __init__(self, field_errors: Mapping[str, list[str]]) -> None:
        self.field_errors = {name: list(messages) for name, messages in field_errors.items()}
        count = sum(len(messages) for messages in self.field_errors.values())
        super().__init__(f"{count} value{'s' if count != 1 else ''} need correcting")
