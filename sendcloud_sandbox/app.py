"""The sandbox application: one request in, one outcome out, no sockets.

Every ``/api/v3`` request goes through the same pipeline, in the order Sendcloud's edge would apply
it: route (404), authentication (401), rate limit (429), then any injected fault, then the handler.
Faults either replace the work (a 502, a reset, a timeout with nothing stored) or follow it (the work
is stored, then the answer is lost), which is exactly the uncertainty a client has to resolve
without sending a second label request. ``/_sandbox`` requests skip the pipeline.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sendcloud_sandbox.accounts import AccountRegistry
from sendcloud_sandbox.config import Account, SandboxConfig
from sendcloud_sandbox.faults import (
    COMMIT_THEN_TIMEOUT,
    CONNECTION_RESET,
    MALFORMED_JSON,
    RATE_LIMIT,
    SERVER_ERROR,
    SLOW,
    STILL_PROCESSING,
    TIMEOUT,
    ActiveFault,
    FaultInjector,
)
from sendcloud_sandbox.handlers import API_ROUTES, admin
from sendcloud_sandbox.jsonapi import ApiError, JsonDict, error_object, not_found, rate_limited, still_processing
from sendcloud_sandbox.ratelimit import Limits, RateLimiter
from sendcloud_sandbox.requestlog import LogEntry, RequestLog
from sendcloud_sandbox.routes import HandlerContext, Route, Router
from sendcloud_sandbox.state import SandboxState
from sendcloud_sandbox.web import Delivery, Outcome, Request, Response, error_response, json_response
from sendcloud_sandbox.webhooks import WebhookDeliverer

API_PREFIX = "/api/v3"
ADMIN_PREFIX = "/_sandbox"
DEFAULT_SERVER_ERROR_STATUS = 503
# Failures that, unless ``after_commit`` is set, happen instead of the work.
_FAILURES = frozenset({SERVER_ERROR, TIMEOUT, CONNECTION_RESET, MALFORMED_JSON})
_REJECTIONS = frozenset({RATE_LIMIT, STILL_PROCESSING})
_HTML_ERROR = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_MALFORMED_PLACEHOLDER = b'{"data":[{"id":'


def _body_of(request: Request) -> Any:
    """The request's body as parsed JSON (or its text when it is not JSON); None without a body."""
    if not request.body:
        return None
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return request.body.decode("utf-8", errors="replace")


def _limits(config: SandboxConfig) -> Limits:
    return Limits.scaled(
        config.unsafe_per_minute, config.unsafe_per_second, config.safe_per_minute, config.rate_limit_scale
    )


@dataclass
class _Trace:
    """What the request log records, filled in as the pipeline goes."""

    route: str | None = None
    account: str | None = None
    faults: list[str] = field(default_factory=list)


class SandboxApp:
    """Holds the sandbox's state and answers requests; thread-safe."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        config = config or SandboxConfig()
        self._config_lock = threading.Lock()
        self._config = config
        self.state = SandboxState()
        self.accounts = AccountRegistry(config.accounts)
        self.limiter = RateLimiter(_limits(config), enabled=config.rate_limits_enabled)
        self.faults = FaultInjector(
            config.faults, fault_rate=config.fault_rate, fault_rate_kinds=config.fault_rate_kinds, seed=config.seed
        )
        self.log = RequestLog(config.max_logged_requests)
        self.stopping = threading.Event()
        self.router = Router(API_ROUTES)
        self.clock = time.time
        self.webhooks = WebhookDeliverer(self)

    # ----- configuration ------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        """The current configuration (replaced as a whole on every change)."""
        with self._config_lock:
            return self._config

    def update_config(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Apply config changes (JSON form) at run time; raises ValueError on bad values."""
        with self._config_lock:
            config = self._config.updated(changes)
            self._config = config
        self.limiter.configure(_limits(config), enabled=config.rate_limits_enabled)
        self.log.resize(config.max_logged_requests)
        if "accounts" in changes:
            self.accounts.replace_all(config.accounts)
        fault_keys = {"faults", "fault_rate", "fault_rate_kinds", "seed"} & set(changes)
        if fault_keys:
            self.faults.configure(
                table=config.faults if "faults" in fault_keys else None,
                fault_rate=config.fault_rate if "fault_rate" in fault_keys else None,
                fault_rate_kinds=config.fault_rate_kinds,
                clear_fault_rate_kinds="fault_rate_kinds" in fault_keys and config.fault_rate_kinds is None,
                seed=config.seed if "seed" in fault_keys else None,
            )
        return config

    def set_faults(
        self,
        faults: Mapping[str, Any] | None = None,
        *,
        fault_rate: float | None = None,
        fault_rate_kinds: list[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Replace the fault table (restarting its schedules) and optionally the random-fault knobs."""
        changes: dict[str, Any] = {}
        if faults is not None:
            changes["faults"] = faults
        if fault_rate is not None:
            changes["fault_rate"] = fault_rate
        if fault_rate_kinds is not None:
            changes["fault_rate_kinds"] = fault_rate_kinds
        if seed is not None:
            changes["seed"] = seed
        self.update_config(changes)

    def add_account(self, account: Account) -> None:
        """Register (or rotate) an account's keys while running."""
        self.accounts.put(account)

    def reset(self, *, clear_faults: bool = False, reset_accounts: bool = False) -> None:
        """Forget orders, shipments, the request log, counters and rate-limit windows."""
        self.state.clear()
        self.log.clear()
        self.limiter.reset()
        self.faults.reset_counters()
        self.webhooks.reset()
        if clear_faults:
            self.update_config({"faults": {}, "fault_rate": 0.0})
        if reset_accounts:
            self.accounts.replace_all(self.config.accounts)

    # ----- inspection ---------------------------------------------------------------------

    def snapshot(self, *, include_items: bool = True) -> JsonDict:
        """State plus request counters: what ``GET /_sandbox/state`` returns."""
        result = self.state.snapshot(now=self.clock(), include_items=include_items)
        result["requests"] = self.log.counters()
        result["webhooks"] = self.webhooks.counters()
        return result

    def request_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` API requests, oldest first."""
        return self.log.tail(limit)

    # ----- request handling ---------------------------------------------------------------

    def handle(self, request: Request) -> Outcome:
        """Answer one request (never raises)."""
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return Outcome(admin.dispatch(self, request))
        started = time.perf_counter()
        trace = _Trace()
        try:
            outcome = self._handle_api(request, trace)
        except ApiError as exc:
            outcome = Outcome(error_response(exc))
        except Exception:  # a sandbox bug must still answer, and show up in the test output
            traceback.print_exc(file=sys.stderr)
            error = ApiError.single(500, "server_error", "Sandbox internal error (see the sandbox's stderr).")
            outcome = Outcome(error_response(error))
        self._record(request, trace, outcome, started)
        return outcome

    def _record(self, request: Request, trace: _Trace, outcome: Outcome, started: float) -> None:
        answered = outcome.response is not None and outcome.delivery is Delivery.RESPOND
        query = "&".join(f"{key}={value}" for key, values in request.query.items() for value in values)
        self.log.record(
            LogEntry(
                time=datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
                method=request.method,
                path=request.path + (f"?{query}" if query else ""),
                route=trace.route,
                account=trace.account,
                status=outcome.response.status if answered and outcome.response is not None else None,
                fault=",".join(trace.faults) or None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                body=_body_of(request) if self.config.record_bodies else None,
            )
        )

    def _handle_api(self, request: Request, trace: _Trace) -> Outcome:
        if not request.path.startswith(API_PREFIX + "/"):
            raise not_found()
        path = request.path[len(API_PREFIX) :]
        resolved = self.router.resolve(request.method, path)
        if resolved is None:
            if self.router.allows_path(path):
                raise ApiError.single(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
            raise not_found()
        route, params = resolved
        trace.route = route.key
        try:
            account = self.accounts.authenticate(request.headers.get("authorization"))
        except ApiError as exc:
            return Outcome(error_response(exc, {"WWW-Authenticate": 'Basic realm="api"'}))
        trace.account = account.public_key
        if not self.limiter.allow(account.public_key, unsafe=route.unsafe):
            raise rate_limited()
        decision = self.faults.decide(route.key)
        trace.faults = decision.kinds()
        config = self.config
        transport = decision.transport
        if transport is not None and (
            transport.kind in _REJECTIONS or (transport.kind in _FAILURES and not transport.spec.after_commit)
        ):
            return self._fault_outcome(transport, route, None, config)
        ctx = HandlerContext(
            request=request,
            params=params,
            account=account,
            config=config,
            state=self.state,
            modifier=decision.modifier,
            now=self.clock,
            roll=self.faults.roll,
            pause=self._pauser(transport, config),
        )
        if not route.pauses_itself:
            ctx.pause()
        try:
            response = route.handler(ctx)
        except ApiError as exc:
            response = error_response(exc)
        if transport is not None and (transport.kind == COMMIT_THEN_TIMEOUT or transport.kind in _FAILURES):
            return self._fault_outcome(transport, route, response, config)
        return Outcome(response)

    def _pauser(self, transport: ActiveFault | None, config: SandboxConfig) -> Callable[[], None]:
        """A once-only sleep for a ``slow`` fault (a no-op otherwise)."""
        done = threading.Event()

        def pause() -> None:
            if transport is None or transport.kind != SLOW or done.is_set():
                return
            done.set()
            seconds = transport.spec.seconds
            self._sleep(config.slow_seconds if seconds is None else seconds)

        return pause

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        self.stopping.wait(seconds)

    def _fault_outcome(
        self, fault: ActiveFault, route: Route, response: Response | None, config: SandboxConfig
    ) -> Outcome:
        """The misbehaviour itself; ``response`` is the real answer when the work was done."""
        spec = fault.spec
        if fault.kind == RATE_LIMIT:
            return Outcome(error_response(rate_limited()))
        if fault.kind == STILL_PROCESSING:
            return Outcome(error_response(still_processing()))
        if fault.kind == SERVER_ERROR:
            status = spec.status or DEFAULT_SERVER_ERROR_STATUS
            if spec.body == "empty":
                return Outcome(Response(status=status, body=b"", content_type="text/plain"))
            html = _HTML_ERROR.format(status=status, reason=_REASONS[status]).encode("ascii")
            return Outcome(Response(status=status, body=html, content_type="text/html"))
        if fault.kind in (TIMEOUT, COMMIT_THEN_TIMEOUT):
            self._sleep(config.timeout_seconds if spec.seconds is None else spec.seconds)
            return Outcome(None, Delivery.DROP)
        if fault.kind == CONNECTION_RESET:
            partial_response = response or json_response(route.success_status, {"data": []})
            return Outcome(partial_response if spec.partial else None, Delivery.RESET, partial=spec.partial)
        if fault.kind == MALFORMED_JSON:
            body = response.body if response is not None and len(response.body) > 1 else _MALFORMED_PLACEHOLDER
            status = response.status if response is not None and response.status < 300 else route.success_status
            return Outcome(Response(status=status, body=body[: max(1, len(body) // 2)]))
        raise ApiError(500, [error_object(500, "server_error", f"unhandled fault kind {fault.kind}")])
