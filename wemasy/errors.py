"""The one base of every error a service raises for its caller to see, and what each door makes of it.

A service raises a subclass of :class:`ApplicationError` whose ``message`` is one sentence meant for a
person. The doors translate it in one place each: the API's exception handler answers ``http_status``
with the documented error body (``wemasy/api/exceptions.py``); the operator commands exit with
``exit_code`` after printing the message (``webshop/management/base.py``); the admin shows the message
as an error (``sendcloud_integration/admin/display.py``). Anything that is not an ``ApplicationError``
is a bug: a logged traceback and a 500 that names the request id.
"""

from __future__ import annotations

from typing import ClassVar


class ApplicationError(Exception):
    """A service refused what it was asked; nothing was changed unless the subclass says otherwise."""

    #: The status the API answers with.
    http_status: ClassVar[int] = 400
    #: The exit code of an operator command that stops on it (1: the request could not be carried out).
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ApplicationError):
    """A value the caller sent is unacceptable for a reason only the service knows (a catalogue, an order).

    The API answers it like a field's validation error: 422 in the Laravel shape, keyed by ``field``.
    """

    http_status = 422

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
