"""Domain errors raised by the services. Interfaces (API, admin, commands) turn them into answers."""

from __future__ import annotations


class PushRefused(Exception):
    """The push cannot start at all; nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IntegrationUnavailable(PushRefused):
    """The shop has no usable Sendcloud integration (missing, inactive, or without credentials)."""


class NoOrdersFound(PushRefused):
    """None of the requested ids is an order of this shop."""
