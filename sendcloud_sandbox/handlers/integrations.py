"""``/integrations``: the account's API integrations (orders must name one of them), and their webhook."""

from __future__ import annotations

from urllib.parse import urlsplit

from sendcloud_sandbox.jsonapi import ApiError, not_found
from sendcloud_sandbox.render import render_integration
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.web import Response, json_response

INTEGRATION_NOT_FOUND = "The Integration could not be found with the search criteria given"


def list_integrations(ctx: HandlerContext) -> Response:
    """``GET /integrations``."""
    data = [render_integration(i, ctx.state.webhook(i)) for i in ctx.account.integration_ids]
    return json_response(200, {"data": data})


def _integration_id(ctx: HandlerContext) -> int:
    raw = ctx.params["id"]
    if not raw.isdigit() or int(raw) not in ctx.integration_ids:
        raise not_found(INTEGRATION_NOT_FOUND)
    return int(raw)


def get_integration(ctx: HandlerContext) -> Response:
    """``GET /integrations/{id}``."""
    integration_id = _integration_id(ctx)
    return json_response(200, {"data": render_integration(integration_id, ctx.state.webhook(integration_id))})


def _invalid(detail: str, pointer: str) -> ApiError:
    return ApiError.single(400, "invalid", detail, pointer=pointer, title="Invalid")


def patch_integration(ctx: HandlerContext) -> Response:
    """``PATCH /integrations/{id}``: the webhook settings (other fields are accepted and ignored); 204."""
    integration_id = _integration_id(ctx)
    body = ctx.request.json()
    if not isinstance(body, dict):
        raise _invalid("Expected an object.", "/")
    active = body.get("webhook_active")
    if active is not None and not isinstance(active, bool):
        raise _invalid("Must be a valid boolean.", "/webhook_active")
    url = body.get("webhook_url")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _invalid("Enter a valid URL.", "/webhook_url")
    ctx.state.set_webhook(integration_id, active=active, url=url)
    return Response(status=204)
