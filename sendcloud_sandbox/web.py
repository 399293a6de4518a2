"""Transport-neutral request, response and delivery types.

The application logic (auth, limits, faults, handlers) works on these plain objects so it can be
exercised without sockets; only ``server.py`` knows about HTTP connections. ``Outcome`` is how the
application tells the transport to answer, to hang up without answering, or to reset the connection.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sendcloud_sandbox.jsonapi import ApiError, error_document, error_object


@dataclass(frozen=True)
class Request:
    """One HTTP request as the application sees it; header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str

    @classmethod
    def build(cls, method: str, target: str, headers: Mapping[str, str], body: bytes, base_url: str) -> Request:
        """Split a request target (path plus query string) into its parts."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            base_url=base_url,
        )

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; a 400 in Sendcloud's shape when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(
                400,
                [error_object(400, "invalid", f"JSON parse error - {exc}", title="Parse error")],
            ) from exc


@dataclass
class Response:
    """A complete answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer (compact separators: benchmarks push thousands of orders through)."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status=status, body=body, headers=dict(headers or {}))


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    """The JSON:API error document of an ApiError."""
    return json_response(error.status, error_document(error.errors), headers)


class Delivery(enum.Enum):
    """How the transport must finish the exchange."""

    RESPOND = "respond"
    DROP = "drop"
    RESET = "reset"


@dataclass
class Outcome:
    """What the transport does: answer, hang up silently, or reset (optionally after part of a body)."""

    response: Response | None
    delivery: Delivery = Delivery.RESPOND
    partial: bool = False
