"""``POST /orders/create-labels-async``: request labels for up to 20 orders.

Each order is handled on its own: unknown or not-yet-visible orders and orders without a valid
shipping address become entries of ``errors``, the others get a new shipment whose parcels are
ANNOUNCING and later READY_TO_SEND (or ANNOUNCEMENT_FAILED when a fault says the carrier refused).
An order shipped with a chosen option (the request's ``ship_with``, else the order's own) is refused
when that option does not serve the order's destination, a parcel's weight, or several parcels
(multicollo), like Sendcloud does; without a chosen option the account's default is used unchecked
(Sendcloud's shipping rules pick a suitable one). An order whose address leaves the EU customs and VAT
area is refused (an entry of ``errors``, pointing at the order) unless it carries ``customs_details`` with
a shipment and export type and every item has an HS code and a country of origin; its parcels then get a
customs declaration. Like the real API the sandbox does not refuse a second
label for the same order: it creates it and counts it, which is how tests catch clients that buy
duplicate labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sendcloud_sandbox.catalogue import BY_CODE, option_code_of, refusal
from sendcloud_sandbox.faults import ANNOUNCEMENT_FAILED
from sendcloud_sandbox.jsonapi import ApiError, JsonDict, error_object
from sendcloud_sandbox.parcels import multicollo_parcels, single_parcel, weight_in_kg
from sendcloud_sandbox.render import DEFAULT_ANNOUNCEMENT_ERROR
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.service_points import BY_ID, customs_gaps, needs_customs
from sendcloud_sandbox.state import NewShipment, StoredOrder
from sendcloud_sandbox.validation import LabelRequest, OrderSelector, has_valid_shipping_address, parse_label_request
from sendcloud_sandbox.web import Response, json_response

NO_SHIPPING_ADDRESS = "The order has no valid shipping address."
CUSTOMS_REQUIRED = "Customs information is required for a shipment from {origin} to {destination}; missing: {fields}."
ORDER_NOT_FOUND = "The order could not be found with the search criteria given"


def _ship_with(request: LabelRequest, order: StoredOrder, default_code: str) -> JsonDict:
    """The request's ship_with, else the order's, else the sandbox default shipping option."""
    if request.ship_with is not None:
        return dict(request.ship_with)
    details = order.payload.get("shipping_details")
    ship_with = details.get("ship_with") if isinstance(details, Mapping) else None
    if isinstance(ship_with, Mapping):
        return dict(ship_with)
    return {"type": "shipping_option_code", "properties": {"shipping_option_code": default_code, "contract_id": None}}


def _order_ship_with(order: StoredOrder) -> Mapping[str, Any] | None:
    details = order.payload.get("shipping_details")
    ship_with = details.get("ship_with") if isinstance(details, Mapping) else None
    return ship_with if isinstance(ship_with, Mapping) else None


def _total_price(order: StoredOrder) -> JsonDict | None:
    """The order's total as the shipments API shows it (value as a string)."""
    payment = order.payload.get("payment_details")
    total = payment.get("total_price") if isinstance(payment, Mapping) else None
    if not isinstance(total, Mapping):
        return None
    try:
        value = f"{Decimal(str(total.get('value'))):.2f}"
    except InvalidOperation:
        return None
    return {"currency": total.get("currency"), "value": value}


def _failure(ctx: HandlerContext) -> str | None:
    """The carrier's refusal message when an announcement_failed fault hits this order."""
    fault = ctx.modifier
    if fault is None or fault.kind != ANNOUNCEMENT_FAILED:
        return None
    if fault.per_order_probability is not None and not ctx.roll(fault.per_order_probability):
        return None
    return fault.spec.message or DEFAULT_ANNOUNCEMENT_ERROR


def _service_point_problem(ctx: HandlerContext, order: StoredOrder, code: str | None) -> str | None:
    """Why the carrier would refuse the order's service point: none for a pickup option, or a closed one."""
    details = order.payload.get("service_point_details")
    option = BY_CODE.get(code) if code else None
    if option is not None and option.needs_service_point and not isinstance(details, Mapping):
        return f"The shipping option '{code}' requires a service point."
    if not isinstance(details, Mapping) or not str(details.get("id", "")).isdigit():
        return None
    point = BY_ID.get(int(str(details["id"])))
    if point is None:
        return f"Service point {details['id']} does not exist."
    if not point.is_open(ctx.state.service_points_age(ctx.now())):
        return f"Service point {details['id']} is not available."
    return None


def _customs_snapshot(order: StoredOrder) -> JsonDict:
    """What the customs declaration shows: the order's customs details and items, as they are now."""
    details = order.payload.get("order_details")
    items = details.get("order_items") if isinstance(details, Mapping) else None
    return {
        "customs_details": order.payload.get("customs_details"),
        "items": [dict(item) for item in items if isinstance(item, Mapping)] if isinstance(items, list) else [],
    }


def _label_one(ctx: HandlerContext, request: LabelRequest, selector: OrderSelector, index: int) -> JsonDict:
    """Create the shipment for one selector; raises ApiError for this order's error entry."""
    pointer = f"/data/attributes/orders/[{index}]"
    now = ctx.now()
    order = ctx.state.find_order(
        integration_id=request.integration_id,
        order_id=selector.order_id,
        order_number=selector.order_number,
        now=now,
    )
    if order is None:
        raise ApiError.single(404, "not_found", ORDER_NOT_FOUND, pointer=pointer, title="Not found")
    if not has_valid_shipping_address(order.payload):
        raise ApiError.single(400, "validation_error", NO_SHIPPING_ADDRESS, pointer=pointer, title="Invalid order")
    address = order.payload["shipping_address"]
    sender_country = str(ctx.account.sender_address.get("country_code", "NL")).upper()
    country = str(address.get("country_code", "")).upper()
    parcels = (
        multicollo_parcels(order.payload, selector.parcels) if selector.parcels else [single_parcel(order.payload)]
    )
    explicit = request.ship_with if request.ship_with is not None else _order_ship_with(order)
    code = option_code_of(dict(explicit)) if isinstance(explicit, Mapping) else None
    if code is not None:
        weights = [w for w in (weight_in_kg(p.weight) for p in parcels) if w is not None]
        problem = refusal(code, from_country=sender_country, to_country=country, weights_kg=weights)
        if problem is not None:
            raise ApiError.single(400, "validation_error", problem, pointer=pointer, title="Invalid shipping option")
    point_problem = _service_point_problem(ctx, order, code)
    if point_problem is not None:
        raise ApiError.single(400, "validation_error", point_problem, pointer=pointer, title="Invalid service point")
    customs = needs_customs(country, str(address.get("postal_code", "")))
    if customs and (gaps := customs_gaps(order.payload)):
        detail = CUSTOMS_REQUIRED.format(origin=sender_country, destination=country, fields=", ".join(gaps))
        raise ApiError.single(400, "validation_error", detail, pointer=pointer, title="Invalid order")
    shipment = ctx.state.create_shipment(
        order,
        NewShipment(
            to_address=dict(order.payload["shipping_address"]),
            from_address=dict(ctx.account.sender_address),
            ship_with=_ship_with(request, order, ctx.config.default_shipping_option_code),
            total_order_price=_total_price(order),
            parcels=parcels,
            ready_at=now + ctx.config.label_delay_seconds,
            failure_message=_failure(ctx),
            customs_declaration=customs,
            customs=_customs_snapshot(order) if customs else None,
            progression=tuple((seconds, int(status_id)) for seconds, status_id in ctx.config.tracking_progression),
        ),
        now=now,
    )
    parcel_ids = [parcel.id for parcel in shipment.parcels]
    entry: JsonDict = {
        "parcel_id": parcel_ids[0],
        "parcels_ids": parcel_ids,
        "shipment_id": shipment.id,
        "order_id": order.order_id,
        "order_number": order.order_number,
    }
    if request.ship_with is not None:
        entry["ship_with"] = shipment.ship_with
    return entry


def create_labels_async(ctx: HandlerContext) -> Response:
    """Answer 202 with ``data`` for the labels started and ``errors`` (only when some failed)."""
    request, errors = parse_label_request(ctx.request.json(), integration_ids=ctx.integration_ids)
    if request is None:
        raise ApiError(400, errors)
    sender_ids = ctx.account.sender_address_ids
    if request.sender_address_id is not None and sender_ids and request.sender_address_id not in sender_ids:
        raise ApiError(
            404,
            [error_object(404, "invalid", "Does not exist.", pointer="/data/attributes/sender_address_id")],
        )
    data: list[JsonDict] = []
    order_errors: list[JsonDict] = []
    for index, selector in enumerate(request.orders):
        try:
            data.append(_label_one(ctx, request, selector, index))
        except ApiError as exc:
            order_errors.extend(exc.errors)
    body: dict[str, Any] = {"data": data}
    if order_errors:
        body["errors"] = order_errors
    return json_response(202, body)
