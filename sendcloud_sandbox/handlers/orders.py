"""``/orders``: batch upsert (all-or-nothing), list, retrieve, delete.

The batch upsert is the heart of the order push: it validates the whole batch first and stores
nothing if any order is wrong, answers 201 in request order, and reproduces the two transient
surprises of the real endpoint: a concurrent batch with the same orders gets "still processing",
and stored orders may stay invisible for a while (asynchronous saving).
"""

from __future__ import annotations

from typing import Any

from sendcloud_sandbox.faults import NOT_YET_VISIBLE
from sendcloud_sandbox.jsonapi import ApiError, not_found, still_processing
from sendcloud_sandbox.pagination import decode_cursor, page_size, paginate
from sendcloud_sandbox.render import render_order
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.state import OrderWrite
from sendcloud_sandbox.validation import validate_order_batch
from sendcloud_sandbox.web import Response, json_response

ORDER_NOT_FOUND = "The order could not be found with the search criteria given"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 200


def _writes(body: list[Any]) -> list[OrderWrite]:
    """Turn a validated batch into upsert instructions (the request's ``id`` is not stored)."""
    return [
        OrderWrite(
            index=index,
            integration_id=order["order_details"]["integration"]["id"],
            order_id=order["order_id"],
            order_number=order["order_number"],
            payload={key: value for key, value in order.items() if key != "id"},
            explicit_id=order.get("id"),
        )
        for index, order in enumerate(body)
    ]


def post_orders(ctx: HandlerContext) -> Response:
    """``POST /orders``: create or update up to 100 orders, all or nothing."""
    body = ctx.request.json()
    errors = validate_order_batch(body, integration_ids=ctx.integration_ids, currencies=ctx.config.allowed_currencies)
    if errors:
        raise ApiError(400, errors)
    writes = _writes(body)
    keys = {(write.integration_id, write.order_id) for write in writes}
    if not ctx.state.claim(keys):
        raise still_processing()
    try:
        ctx.pause()
        now = ctx.now()
        visible_at = now + ctx.config.order_visibility_delay_seconds
        if ctx.modifier is not None and ctx.modifier.kind == NOT_YET_VISIBLE:
            hidden_for = ctx.modifier.spec.seconds
            visible_at = max(visible_at, now + (ctx.config.not_visible_seconds if hidden_for is None else hidden_for))
        stored = ctx.state.upsert_orders(writes, integration_ids=ctx.integration_ids, now=now, visible_at=visible_at)
    finally:
        ctx.state.release(keys)
    data = [{"id": order.id, "order_id": order.order_id, "order_number": order.order_number} for order in stored]
    return json_response(201, {"data": data})


def _integration_filter(ctx: HandlerContext) -> frozenset[int]:
    """The ``integration`` filter (comma-separated ids), each one the account's own."""
    raw = ctx.request.param("integration")
    if not raw:
        return ctx.integration_ids
    chosen = set()
    for part in raw.split(","):
        value = part.strip()
        if not value.isdigit() or int(value) not in ctx.integration_ids:
            raise ApiError.single(
                400,
                "invalid_choice",
                f"Select a valid choice. {value} is not one of the available choices.",
                parameter="integration",
                title="Invalid Choice",
            )
        chosen.add(int(value))
    return frozenset(chosen)


def list_orders(ctx: HandlerContext) -> Response:
    """``GET /orders``: visible orders, newest first, cursor-paginated with a Link header."""
    request = ctx.request
    orders = ctx.state.list_orders(
        integration_ids=_integration_filter(ctx),
        now=ctx.now(),
        order_id=request.param("order_id"),
        order_number=request.param("order_number"),
        status=request.param("status"),
    )
    page, link = paginate(
        orders,
        offset=decode_cursor(request.param("cursor")),
        size=page_size(request.param("page_size"), default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE),
        url=f"{request.base_url}/api/v3/orders",
        query=request.query,
    )
    return json_response(200, {"data": [render_order(order) for order in page]}, {"Link": link} if link else None)


def _order_pk(ctx: HandlerContext) -> int:
    raw = ctx.params["id"]
    if not raw.isdigit() or int(raw) < 1:
        raise not_found(ORDER_NOT_FOUND)
    return int(raw)


def get_order(ctx: HandlerContext) -> Response:
    """``GET /orders/{id}``: 404 until an asynchronously saved order is visible."""
    order = ctx.state.get_order(_order_pk(ctx), integration_ids=ctx.integration_ids, now=ctx.now())
    if order is None:
        raise not_found(ORDER_NOT_FOUND)
    return json_response(200, {"data": render_order(order)})


def delete_order(ctx: HandlerContext) -> Response:
    """``DELETE /orders/{id}``: 204, or 404 when there is no such order."""
    if not ctx.state.delete_order(_order_pk(ctx), integration_ids=ctx.integration_ids, now=ctx.now()):
        raise not_found(ORDER_NOT_FOUND)
    return Response(status=204)
