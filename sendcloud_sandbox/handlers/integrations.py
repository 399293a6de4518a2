"""``/integrations``: the account's API integrations (orders must name one of them)."""

from __future__ import annotations

from sendcloud_sandbox.jsonapi import not_found
from sendcloud_sandbox.render import render_integration
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.web import Response, json_response

INTEGRATION_NOT_FOUND = "The Integration could not be found with the search criteria given"


def list_integrations(ctx: HandlerContext) -> Response:
    """``GET /integrations``."""
    return json_response(200, {"data": [render_integration(i) for i in ctx.account.integration_ids]})


def get_integration(ctx: HandlerContext) -> Response:
    """``GET /integrations/{id}``."""
    raw = ctx.params["id"]
    if not raw.isdigit() or int(raw) not in ctx.integration_ids:
        raise not_found(INTEGRATION_NOT_FOUND)
    return json_response(200, {"data": render_integration(int(raw))})
