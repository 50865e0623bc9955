"""Typed domain errors, each mapped once to a response by the views."""


class DomainError(Exception):
    """A request that the domain refuses; the message is shown to the user."""


class NotFound(DomainError):
    """The record does not exist, or the current user may not see it."""


class Forbidden(DomainError):
    """The current user may see the record but not do this to it."""


class Conflict(DomainError):
    """The request contradicts the record's current state (e.g. acting on a closed match)."""
