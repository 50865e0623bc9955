"""Typed domain errors, each mapped once to a response by the views."""


class DomainError(Exception):
    """A request that the domain refuses; the message is shown to the user."""


class NotFound(DomainError):
    """The record does not exist, or the current user may not see it."""
