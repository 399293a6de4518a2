"""``/_sandbox/*``: inspect and steer the sandbox (no auth, no rate limits, not logged).

Tests use these to assert on what reached "Sendcloud" (orders, labels, the duplicate-label detector,
the request log) and to change faults, config and accounts while the client runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sendcloud_sandbox.config import Account
from sendcloud_sandbox.jsonapi import ApiError, error_object, not_found
from sendcloud_sandbox.web import Request, Response, error_response, json_response

if TYPE_CHECKING:
    from sendcloud_sandbox.app import SandboxApp

_FAULT_OPTIONS = frozenset({"faults", "fault_rate", "fault_rate_kinds", "seed"})


def dispatch(app: SandboxApp, request: Request) -> Response:
    """Route one ``/_sandbox`` request; bad input is a 400 with the reason."""
    path = request.path[len("/_sandbox") :] or "/"
    try:
        return _route(app, request, path)
    except ApiError as exc:
        return error_response(exc)
    except ValueError as exc:
        return error_response(ApiError(400, [error_object(400, "invalid", str(exc))]))


def _route(app: SandboxApp, request: Request, path: str) -> Response:
    method = request.method
    if (method, path) == ("GET", "/health"):
        return json_response(200, {"status": "ok"})
    if (method, path) == ("GET", "/state"):
        include_items = request.param("items") not in ("0", "false", "no")
        return json_response(200, app.snapshot(include_items=include_items))
    if (method, path) == ("GET", "/requests"):
        return json_response(200, {"data": app.request_log(_limit(request.param("limit")))})
    if (method, path) == ("POST", "/reset"):
        return _reset(app, request)
    if path == "/faults":
        if method == "POST":
            _set_faults(app, request.json())
        return json_response(200, app.faults.describe())
    if path == "/config":
        if method == "POST":
            app.update_config(_object(request.json()))
        return json_response(200, app.config.to_dict())
    if (method, path) == ("GET", "/accounts"):
        return json_response(200, {"data": [account.to_dict() for account in app.accounts.all()]})
    if (method, path) == ("POST", "/accounts"):
        account = Account.from_dict(_object(request.json()))
        app.add_account(account)
        return json_response(201, {"data": account.to_dict()})
    if method == "DELETE" and path.startswith("/accounts/"):
        if not app.accounts.remove(path[len("/accounts/") :]):
            raise not_found("No such account.")
        return Response(status=204)
    raise not_found()


def _object(body: Any) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise ValueError("the body must be a JSON object")
    return body


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValueError("limit must be a non-negative integer")
    return int(raw)


def _reset(app: SandboxApp, request: Request) -> Response:
    """Clear state, log and counters; ``{"faults": true}`` / ``{"accounts": true}`` reset those too."""
    options = _object(request.json())
    unknown = set(options) - {"faults", "accounts"}
    if unknown:
        raise ValueError(f"unknown reset options: {sorted(unknown)}")
    app.reset(clear_faults=bool(options.get("faults")), reset_accounts=bool(options.get("accounts")))
    return json_response(200, {"status": "reset"})


def _set_faults(app: SandboxApp, body: Any) -> None:
    """Accept ``{"faults": {...}, "fault_rate": .., "fault_rate_kinds": [..], "seed": ..}`` or a bare table."""
    options = _object(body)
    if options and not set(options) <= _FAULT_OPTIONS:
        options = {"faults": options}
    app.update_config(options)
