"""``/shipments``: read shipments back to learn label status, tracking numbers and documents.

Clients poll ``GET /shipments/{id}`` until parcels leave ANNOUNCING — or many at once with
``GET /shipments?shipment_uuids=a,b,c`` (or ``ids=`` parcel ids), at most 100 ids per filter as the
spec says — and search ``GET /shipments?order_number=...`` after an uncertain label request to avoid
buying a second label.
"""

from __future__ import annotations

from sendcloud_sandbox.jsonapi import ApiError, not_found
from sendcloud_sandbox.pagination import decode_cursor, page_size, paginate
from sendcloud_sandbox.render import render_shipment
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.state import CancelRefused, StoredShipment
from sendcloud_sandbox.web import Response, json_response

SHIPMENT_NOT_FOUND = "No Shipment matches the given query."
DEFAULT_PAGE_SIZE = 40
MAX_PAGE_SIZE = 100
#: ``shipment_uuids`` and ``ids``: "The list may not contain more than 100 IDs." (spec: v3/shipments)
MAX_FILTER_IDS = 100


def _filter_error(detail: str) -> ApiError:
    """A 400 in the shape of the spec's list-filter validation example."""
    return ApiError.single(400, "validation_error", f"Validation failed, {detail}", pointer="/list_shipments/filters")


def _id_list(ctx: HandlerContext, name: str) -> list[str] | None:
    """A comma-separated id filter as a list (None when absent), refused beyond 100 ids."""
    raw = ctx.request.param(name)
    if not raw:
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) > MAX_FILTER_IDS:
        raise _filter_error(f"{name} may not contain more than {MAX_FILTER_IDS} IDs")
    return ids


def _parcel_ids(ctx: HandlerContext) -> list[int] | None:
    """The ``ids`` filter: parcel ids, which are integers."""
    ids = _id_list(ctx, "ids")
    if ids is None:
        return None
    if not all(value.isdigit() for value in ids):
        raise _filter_error("ids must be a comma-separated list of integers")
    return [int(value) for value in ids]


def _integration_ids(ctx: HandlerContext) -> frozenset[int]:
    """The ``integration_id`` filter, narrowed to the account's integrations."""
    raw = ctx.request.param("integration_id")
    if not raw:
        return ctx.integration_ids
    if not raw.strip().isdigit():
        raise ApiError.single(
            400, "validation_error", "Validation failed, integration_id is not an integer", parameter="integration_id"
        )
    return ctx.integration_ids & {int(raw)}


def list_shipments(ctx: HandlerContext) -> Response:
    """``GET /shipments`` with the filters the label flow needs, newest first, cursor-paginated."""
    request = ctx.request
    now = ctx.now()
    shipments = ctx.state.list_shipments(
        integration_ids=_integration_ids(ctx),
        now=now,
        order_number=request.param("order_number"),
        external_reference_id=request.param("external_reference_id"),
        tracking_number=request.param("tracking_number"),
        parcel_status=request.param("parcel_status"),
        shipment_ids=_id_list(ctx, "shipment_uuids"),
        parcel_ids=_parcel_ids(ctx),
    )
    page, link = paginate(
        shipments,
        offset=decode_cursor(request.param("cursor")),
        size=page_size(request.param("page_size"), default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE),
        url=f"{request.base_url}/api/v3/shipments",
        query=request.query,
    )
    data = [render_shipment(shipment, now=now, base_url=request.base_url) for shipment in page]
    return json_response(200, {"data": data}, {"Link": link} if link else None)


def get_shipment(ctx: HandlerContext) -> Response:
    """``GET /shipments/{id}``."""
    shipment = _shipment_or_404(ctx)
    return json_response(200, {"data": render_shipment(shipment, now=ctx.now(), base_url=ctx.request.base_url)})


RETURN_PORTAL_NOT_FOUND = "No return portal is configured for this shipment."


def _shipment_or_404(ctx: HandlerContext) -> StoredShipment:
    shipment = ctx.state.get_shipment(ctx.params["id"], integration_ids=ctx.integration_ids)
    if shipment is None:
        raise not_found(SHIPMENT_NOT_FOUND)
    return shipment


def cancel_shipment(ctx: HandlerContext) -> Response:
    """``POST /shipments/{id}/cancel``: 200 cancelled, 202 queued (``cancel_confirm_seconds`` > 0), 409 refused."""
    shipment = _shipment_or_404(ctx)
    try:
        done = ctx.state.cancel_shipment(
            shipment,
            now=ctx.now(),
            window_seconds=ctx.config.cancel_window_seconds,
            confirm_seconds=ctx.config.cancel_confirm_seconds,
        )
    except CancelRefused as exc:
        raise ApiError.single(409, "invalid", exc.detail) from None
    if done:
        return json_response(200, {"data": {"status": "cancelled", "message": "Shipment has been cancelled"}})
    return json_response(202, {"data": {"status": "queued", "message": "Shipment cancellation has been queued"}})


def return_portal_url(ctx: HandlerContext) -> Response:
    """``GET /shipments/{id}/return-portal-url``; 404 when no return portal is configured."""
    shipment = _shipment_or_404(ctx)
    if not ctx.config.return_portal_enabled:
        raise not_found(RETURN_PORTAL_NOT_FOUND)
    url = f"https://returns.sandbox.invalid/initiate/{shipment.id}"
    return json_response(200, {"data": {"url": url}})
