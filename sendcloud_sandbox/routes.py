"""Route table plumbing: matching ``/api/v3`` paths to handlers, and what a handler receives.

A route's key (``"GET /shipments/{id}"``) is also the key of the fault table and of the request
log, so tests name routes the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sendcloud_sandbox.config import Account, SandboxConfig
from sendcloud_sandbox.faults import ActiveFault
from sendcloud_sandbox.state import SandboxState
from sendcloud_sandbox.web import Request, Response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class HandlerContext:
    """Everything a handler may use; ``pause`` runs a ``slow`` fault's delay (once)."""

    request: Request
    params: Mapping[str, str]
    account: Account
    config: SandboxConfig
    state: SandboxState
    modifier: ActiveFault | None
    now: Callable[[], float]
    roll: Callable[[float], bool]
    pause: Callable[[], None]

    @property
    def integration_ids(self) -> frozenset[int]:
        """The integrations the authenticated account may use."""
        return frozenset(self.account.integration_ids)


Handler = Callable[[HandlerContext], Response]


@dataclass(frozen=True)
class Route:
    """One API endpoint. ``pauses_itself``: the handler decides when a slow fault sleeps."""

    method: str
    template: str
    handler: Handler
    success_status: int = 200
    pauses_itself: bool = False

    @property
    def key(self) -> str:
        """``"METHOD /template"``, e.g. ``"GET /orders/{id}"``."""
        return f"{self.method} {self.template}"

    @property
    def unsafe(self) -> bool:
        """Whether the route counts against the unsafe-method rate limit."""
        return self.method in UNSAFE_METHODS

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` fits the template."""
        want = self.template.strip("/").split("/")
        have = path.strip("/").split("/")
        if len(want) != len(have):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(want, have, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


class Router:
    """Finds the route for a method and path; literal templates win over parameterised ones."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = sorted(routes, key=lambda route: route.template.count("{"))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The matching route and its parameters, or None."""
        for route in self._routes:
            if route.method != method:
                continue
            params = route.match(path)
            if params is not None:
                return route, params
        return None

    def allows_path(self, path: str) -> bool:
        """Whether some method serves this path (to tell 405 from 404)."""
        return any(route.match(path) is not None for route in self._routes)
