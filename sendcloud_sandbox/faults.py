"""Fault injection: deciding, per request, whether and how the sandbox misbehaves.

The real Sendcloud API fails in ways a client must survive without losing orders or buying a second
label: 429s, 5xx pages from a proxy, timeouts after the work was committed, connection resets, bodies
that are not JSON, "still processing" conflicts, orders not yet visible after a 201, and carriers
refusing an announcement. Each of those is a *kind* here. A fault table maps route keys
("POST /orders", "GET /shipments/{id}", "POST *", "*") to fault specs that fire by probability, on
fixed request numbers, or for the next N matching requests; a global ``fault_rate`` spreads random
faults over the kinds that make sense for each route.

Transport kinds decide what happens to the HTTP exchange (at most one per request). Modifier kinds
change the business outcome of a request that is otherwise answered normally (not_yet_visible,
announcement_failed) and may combine with a transport fault.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
SLOW = "slow"
TIMEOUT = "timeout"
COMMIT_THEN_TIMEOUT = "commit_then_timeout"
CONNECTION_RESET = "connection_reset"
MALFORMED_JSON = "malformed_json"
STILL_PROCESSING = "still_processing"
NOT_YET_VISIBLE = "not_yet_visible"
ANNOUNCEMENT_FAILED = "announcement_failed"

TRANSPORT_KINDS = frozenset(
    {
        RATE_LIMIT,
        SERVER_ERROR,
        SLOW,
        TIMEOUT,
        COMMIT_THEN_TIMEOUT,
        CONNECTION_RESET,
        MALFORMED_JSON,
        STILL_PROCESSING,
    }
)
MODIFIER_KINDS = frozenset({NOT_YET_VISIBLE, ANNOUNCEMENT_FAILED})
ALL_KINDS = TRANSPORT_KINDS | MODIFIER_KINDS

ORDERS_POST = "POST /orders"
LABELS_POST = "POST /orders/create-labels-async"

# Kinds that only mean something on one route; elsewhere a spec of that kind never fires.
_ROUTE_ONLY: dict[str, str] = {
    STILL_PROCESSING: ORDERS_POST,
    NOT_YET_VISIBLE: ORDERS_POST,
    ANNOUNCEMENT_FAILED: LABELS_POST,
}
_UNSAFE_ONLY = frozenset({COMMIT_THEN_TIMEOUT})
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
SERVER_ERROR_BODIES = ("html", "empty")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Options that only mean something for some kinds; giving them elsewhere is a mistake worth reporting.
_KIND_OPTIONS: dict[str, frozenset[str]] = {
    "seconds": frozenset({SLOW, TIMEOUT, COMMIT_THEN_TIMEOUT, NOT_YET_VISIBLE}),
    "status": frozenset({SERVER_ERROR}),
    "body": frozenset({SERVER_ERROR}),
    "after_commit": frozenset({SERVER_ERROR, TIMEOUT, CONNECTION_RESET, MALFORMED_JSON}),
    "partial": frozenset({CONNECTION_RESET}),
    "message": frozenset({ANNOUNCEMENT_FAILED}),
}


class FaultConfigError(ValueError):
    """A fault table or fault spec is malformed."""


def _number(spec: Mapping[str, Any], key: str, *, minimum: float = 0.0) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise FaultConfigError(f"fault {key} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _flag(spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise FaultConfigError(f"fault {key} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class FaultSpec:
    """One way a route may fail, and when.

    When none of ``probability``, ``on_requests`` and ``times`` is given the fault fires on every
    matching request. For ``announcement_failed`` a ``probability`` is rolled per order, not per
    request. ``seconds`` left unset falls back to the config's ``timeout_seconds``, ``slow_seconds``
    or ``not_visible_seconds``.
    """

    kind: str
    probability: float | None = None
    on_requests: frozenset[int] = field(default_factory=frozenset)
    times: int | None = None
    seconds: float | None = None
    status: int | None = None
    body: str | None = None
    after_commit: bool = False
    partial: bool = False
    message: str | None = None

    _KEYS = frozenset(
        {
            "kind",
            "probability",
            "on_requests",
            "times",
            "seconds",
            "status",
            "body",
            "after_commit",
            "partial",
            "message",
        }
    )

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> FaultSpec:
        """Build a spec from JSON, rejecting unknown keys and values that could never work."""
        if not isinstance(spec, Mapping):
            raise FaultConfigError(f"a fault spec must be an object, got {spec!r}")
        unknown = set(spec) - cls._KEYS
        if unknown:
            raise FaultConfigError(f"unknown fault spec keys: {sorted(unknown)}")
        kind = spec.get("kind")
        if kind not in ALL_KINDS:
            raise FaultConfigError(f"unknown fault kind {kind!r}; known: {sorted(ALL_KINDS)}")
        for option, kinds in _KIND_OPTIONS.items():
            if option in spec and kind not in kinds:
                raise FaultConfigError(f"fault option {option!r} does not apply to kind {kind!r}")
        probability = _number(spec, "probability")
        if probability is not None and probability > 1:
            raise FaultConfigError("fault probability must be between 0 and 1")
        on_requests = spec.get("on_requests", [])
        if not isinstance(on_requests, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in on_requests
        ):
            raise FaultConfigError("fault on_requests must be a list of request numbers (1-based)")
        times = spec.get("times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
            raise FaultConfigError("fault times must be an integer >= 0")
        triggers = [name for name in ("probability", "times") if spec.get(name) is not None]
        if on_requests:
            triggers.append("on_requests")
        if len(triggers) > 1:
            raise FaultConfigError(f"give at most one of probability, on_requests and times, not {triggers}")
        status = spec.get("status")
        if status is not None and status not in SERVER_ERROR_STATUSES:
            raise FaultConfigError(f"server_error status must be one of {SERVER_ERROR_STATUSES}")
        body = spec.get("body")
        if body is not None and body not in SERVER_ERROR_BODIES:
            raise FaultConfigError(f"server_error body must be one of {SERVER_ERROR_BODIES}")
        message = spec.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultConfigError("fault message must be a string")
        return cls(
            kind=kind,
            probability=probability,
            on_requests=frozenset(on_requests),
            times=times,
            seconds=_number(spec, "seconds"),
            status=status,
            body=body,
            after_commit=_flag(spec, "after_commit"),
            partial=_flag(spec, "partial"),
            message=message,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, omitting unset options."""
        result: dict[str, Any] = {"kind": self.kind}
        if self.probability is not None:
            result["probability"] = self.probability
        if self.on_requests:
            result["on_requests"] = sorted(self.on_requests)
        for key in ("times", "seconds", "status", "body", "message"):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        for key in ("after_commit", "partial"):
            if getattr(self, key):
                result[key] = True
        return result

    @property
    def is_transport(self) -> bool:
        """True when the spec changes the HTTP exchange rather than the business outcome."""
        return self.kind in TRANSPORT_KINDS


def _check_route_key(key: str) -> None:
    if key == "*":
        return
    method, _, path = key.partition(" ")
    if method not in _METHODS or not (path == "*" or path.startswith("/")):
        raise FaultConfigError(
            f"bad fault route key {key!r}: use 'METHOD /path' (path as in the API, e.g. "
            "'GET /shipments/{id}', without /api/v3), 'METHOD *' or '*'"
        )


def parse_fault_table(raw: Any) -> dict[str, list[FaultSpec]]:
    """Check a JSON fault table ``{route key: [spec, ...]}`` and parse its specs."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FaultConfigError("faults must be an object mapping route keys to lists of fault specs")
    table: dict[str, list[FaultSpec]] = {}
    for key, specs in raw.items():
        _check_route_key(key)
        if isinstance(specs, Mapping):
            specs = [specs]
        if not isinstance(specs, list):
            raise FaultConfigError(f"faults[{key!r}] must be a list of fault specs")
        table[key] = [spec if isinstance(spec, FaultSpec) else FaultSpec.parse(spec) for spec in specs]
    return table


def parse_fault_kinds(raw: Any) -> list[str]:
    """Check the list of kinds ``fault_rate`` may pick from."""
    if not isinstance(raw, list) or not all(isinstance(kind, str) for kind in raw):
        raise FaultConfigError("fault_rate_kinds must be a list of fault kinds")
    unknown = set(raw) - ALL_KINDS
    if unknown:
        raise FaultConfigError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(ALL_KINDS)}")
    return list(raw)


def applies_to(kind: str, route_key: str) -> bool:
    """Whether a fault kind means anything on a route (e.g. announcement failures only on labels)."""
    only = _ROUTE_ONLY.get(kind)
    if only is not None and only != route_key:
        return False
    return not (kind in _UNSAFE_ONLY and route_key.startswith("GET "))


@dataclass(frozen=True)
class ActiveFault:
    """A fault chosen for one request; ``per_order_probability`` only for announcement failures."""

    spec: FaultSpec
    origin: str
    per_order_probability: float | None = None

    @property
    def kind(self) -> str:
        """The fault kind, for dispatch and the request log."""
        return self.spec.kind


@dataclass(frozen=True)
class FaultDecision:
    """What to inject into one request: at most one transport fault and one modifier."""

    transport: ActiveFault | None = None
    modifier: ActiveFault | None = None

    def kinds(self) -> list[str]:
        """The chosen kinds, for the request log."""
        return [fault.kind for fault in (self.transport, self.modifier) if fault is not None]


@dataclass
class _ScheduledSpec:
    """A spec plus its counters: requests seen (for on_requests) and firings left (for times)."""

    spec: FaultSpec
    seen: int = 0
    remaining: int | None = None


class FaultInjector:
    """Thread-safe, seedable chooser of faults for each request."""

    def __init__(
        self,
        table: Mapping[str, list[FaultSpec]] | None = None,
        *,
        fault_rate: float = 0.0,
        fault_rate_kinds: Iterable[str] | None = None,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._table: dict[str, list[_ScheduledSpec]] = {}
        self._fault_rate = fault_rate
        self._fault_rate_kinds: frozenset[str] | None = None
        self.configure(table=table or {}, fault_rate=fault_rate, fault_rate_kinds=fault_rate_kinds)

    def configure(
        self,
        *,
        table: Mapping[str, list[FaultSpec]] | None = None,
        fault_rate: float | None = None,
        fault_rate_kinds: Iterable[str] | None = None,
        clear_fault_rate_kinds: bool = False,
        seed: int | None = None,
    ) -> None:
        """Replace the parts given; a new table starts its schedules from request 1 again."""
        with self._lock:
            if table is not None:
                self._table = {
                    key: [_ScheduledSpec(spec, remaining=spec.times) for spec in specs] for key, specs in table.items()
                }
            if fault_rate is not None:
                self._fault_rate = fault_rate
            if fault_rate_kinds is not None:
                self._fault_rate_kinds = frozenset(fault_rate_kinds)
            elif clear_fault_rate_kinds:
                self._fault_rate_kinds = None
            if seed is not None:
                self._rng.seed(seed)

    def reset_counters(self) -> None:
        """Restart every schedule (on_requests numbering, times budgets)."""
        with self._lock:
            for scheduled in self._all_scheduled():
                scheduled.seen = 0
                scheduled.remaining = scheduled.spec.times

    def roll(self, probability: float) -> bool:
        """One seeded coin flip, e.g. per order for announcement failures."""
        with self._lock:
            return self._rng.random() < probability

    def decide(self, route_key: str) -> FaultDecision:
        """Choose the faults for one request to ``route_key`` (e.g. ``"GET /shipments/{id}"``)."""
        method = route_key.split(" ", 1)[0]
        with self._lock:
            candidates = [
                *self._table.get(route_key, []),
                *self._table.get(f"{method} *", []),
                *self._table.get("*", []),
            ]
            transport: ActiveFault | None = None
            modifier: ActiveFault | None = None
            for scheduled in candidates:
                spec = scheduled.spec
                if not applies_to(spec.kind, route_key):
                    continue
                scheduled.seen += 1
                already = transport if spec.is_transport else modifier
                if already is not None:
                    continue
                active = self._fire(scheduled)
                if active is None:
                    continue
                if spec.is_transport:
                    transport = active
                else:
                    modifier = active
            if transport is None and self._fault_rate > 0 and self._rng.random() < self._fault_rate:
                random_fault = self._random_fault(route_key, with_modifiers=modifier is None)
                if random_fault is not None and random_fault.spec.is_transport:
                    transport = random_fault
                elif random_fault is not None:
                    modifier = random_fault
            return FaultDecision(transport=transport, modifier=modifier)

    def _fire(self, scheduled: _ScheduledSpec) -> ActiveFault | None:
        """Whether a spec fires on this request; consumes its schedule when it does."""
        spec = scheduled.spec
        if spec.on_requests:
            return ActiveFault(spec, "schedule") if scheduled.seen in spec.on_requests else None
        if scheduled.remaining is not None:
            if scheduled.remaining <= 0:
                return None
            scheduled.remaining -= 1
            return ActiveFault(spec, "schedule")
        if spec.probability is not None:
            if spec.kind == ANNOUNCEMENT_FAILED:
                return ActiveFault(spec, "probability", per_order_probability=spec.probability)
            return ActiveFault(spec, "probability") if self._rng.random() < spec.probability else None
        return ActiveFault(spec, "always")

    def _random_fault(self, route_key: str, *, with_modifiers: bool) -> ActiveFault | None:
        """A fault for ``fault_rate``: a random kind among those appropriate to the route."""
        kinds = sorted(
            kind
            for kind in (ALL_KINDS if with_modifiers else TRANSPORT_KINDS)
            if applies_to(kind, route_key) and (self._fault_rate_kinds is None or kind in self._fault_rate_kinds)
        )
        if not kinds:
            return None
        kind = self._rng.choice(kinds)
        if kind == SERVER_ERROR:
            spec = FaultSpec(
                kind=kind,
                status=self._rng.choice(SERVER_ERROR_STATUSES),
                body=self._rng.choice(SERVER_ERROR_BODIES),
            )
        else:
            spec = FaultSpec(kind=kind)
        return ActiveFault(spec, "fault_rate")

    def _all_scheduled(self) -> Iterable[_ScheduledSpec]:
        for specs in self._table.values():
            yield from specs

    def describe(self) -> dict[str, Any]:
        """The current table and schedule counters, for ``GET /_sandbox/faults``."""
        with self._lock:
            return {
                "faults": {
                    key: [{**s.spec.to_dict(), "seen": s.seen, "remaining": s.remaining} for s in specs]
                    for key, specs in self._table.items()
                },
                "fault_rate": self._fault_rate,
                "fault_rate_kinds": None if self._fault_rate_kinds is None else sorted(self._fault_rate_kinds),
            }
