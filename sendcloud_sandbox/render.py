"""Response shapes of orders, shipments and integrations, as in the v3 OpenAPI specs.

Kept apart from storage so the wire format lives in one place. Quirks of the real API are kept on
purpose because a client must cope with them: the order ``id`` is an integer in the POST answer but
a string in GET answers, ``shipment_id`` is a string, parcel ids are integers, money values in
shipments are strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sendcloud_sandbox.jsonapi import JsonDict
from sendcloud_sandbox.state import (
    ANNOUNCEMENT_FAILED,
    StoredOrder,
    StoredShipment,
)

DEFAULT_ANNOUNCEMENT_ERROR = "Service error: An error occurred while connecting to the carrier."
_CARRIER_NAMES = {
    "postnl": "PostNL",
    "dhl": "DHL",
    "dhl_express": "DHL Express",
    "dpd": "DPD",
    "ups": "UPS",
    "gls": "GLS",
    "bpost": "bpost",
    "colissimo": "Colissimo",
    "fedex": "FedEx",
}
INTEGRATION_CREATED_AT = "2024-01-01T00:00:00Z"


def iso(timestamp: float) -> str:
    """A Unix timestamp in Sendcloud's ISO 8601 style (UTC, microseconds, ``Z``)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def carrier_of(ship_with: Mapping[str, Any]) -> JsonDict:
    """The carrier object for a ship_with: the part of the shipping option code before ':'."""
    properties = ship_with.get("properties")
    code_value = properties.get("shipping_option_code") if isinstance(properties, Mapping) else None
    code = str(code_value or "postnl").split(":", 1)[0]
    return {"code": code, "name": _CARRIER_NAMES.get(code, code.replace("_", " ").title())}


def render_order(order: StoredOrder) -> JsonDict:
    """An order as ``GET /orders`` and ``GET /orders/{id}`` return it."""
    return {
        "id": str(order.id),
        "order_id": order.order_id,
        "order_number": order.order_number,
        "created_at": iso(order.created_at),
        "modified_at": iso(order.modified_at),
        **{key: value for key, value in order.payload.items() if key not in ("id", "order_id", "order_number")},
    }


def label_link(base_url: str, parcel_id: int) -> str:
    """Where a parcel's label is downloaded."""
    return f"{base_url}/api/v3/parcels/{parcel_id}/documents/label"


def _tracking_url(shipment: StoredShipment, tracking_number: str) -> str:
    query = urlencode(
        {
            "carrier": carrier_of(shipment.ship_with)["code"],
            "code": tracking_number,
            "destination": shipment.to_address.get("country_code", ""),
            "lang": "en-us",
            "source": shipment.from_address.get("country_code", ""),
            "type": "parcel",
            "verification": shipment.to_address.get("postal_code", ""),
        }
    )
    return f"https://tracking.sandbox.invalid/forward?{query}"


def _documents(shipment: StoredShipment, parcel_id: int, base_url: str) -> list[JsonDict]:
    """An announced parcel's documents: its label, and a customs declaration when it leaves the customs area."""
    documents: list[JsonDict] = [
        {"type": "label", "document_type": "label", "size": "a6", "link": label_link(base_url, parcel_id)}
    ]
    if shipment.customs_declaration:
        documents.append(
            {
                "type": "cn23",
                "document_type": "customs-declaration",
                "size": "a4",
                "link": f"{base_url}/api/v3/parcels/{parcel_id}/documents/customs-declaration",
            }
        )
    return documents


def render_shipment(shipment: StoredShipment, *, now: float, base_url: str) -> JsonDict:
    """A shipment as ``GET /shipments/{id}`` returns it, with parcel statuses as of ``now``."""
    status = shipment.status(now)
    ready = shipment.has_label(now)
    finished = status != "ANNOUNCING"
    parcels = []
    for parcel in shipment.parcels:
        parcels.append(
            {
                "id": parcel.id,
                "status": {"code": status, "message": shipment.status_message(now)},
                "documents": _documents(shipment, parcel.id, base_url) if ready else [],
                "tracking_number": parcel.tracking_number if ready else "",
                "tracking_url": _tracking_url(shipment, parcel.tracking_number) if ready else None,
                "dimensions": parcel.contents.dimensions,
                "weight": parcel.contents.weight,
                "additional_carrier_data": {"awb_tracking_number": None, "box_number": None},
                "created_at": iso(shipment.created_at),
                "updated_at": iso(shipment.ready_at if finished else shipment.created_at),
                "announced_at": iso(shipment.ready_at) if ready else None,
                "label_notes": [],
                "package_type": "package",
                "parcel_items": parcel.contents.items,
            }
        )
    errors = []
    if status == ANNOUNCEMENT_FAILED:
        errors.append(
            {
                "status": "500",
                "code": "parcel_announcement_error",
                "detail": shipment.failure_message or DEFAULT_ANNOUNCEMENT_ERROR,
            }
        )
    return {
        "id": shipment.id,
        "order_number": shipment.order_number,
        "reference": None,
        "external_reference_id": None,
        "total_order_price": shipment.total_order_price,
        "from_address": shipment.from_address,
        "to_address": shipment.to_address,
        "ship_with": shipment.ship_with,
        "carrier": carrier_of(shipment.ship_with),
        "customs_information": None,
        "errors": errors,
        "parcels": parcels,
    }


def render_integration(integration_id: int, webhook: tuple[bool, str | None] = (False, None)) -> JsonDict:
    """An API integration as ``GET /integrations`` lists it; ``webhook`` is (webhook_active, webhook_url)."""
    return {
        "id": integration_id,
        "shop_name": f"Sandbox integration {integration_id}",
        "shop_url": "https://shop.sandbox.invalid/",
        "type": "api",
        "started_failing_at": None,
        "last_fetched_at": None,
        "created_at": INTEGRATION_CREATED_AT,
        "updated_at": INTEGRATION_CREATED_AT,
        "service_point_enabled": False,
        "service_point_carriers": [],
        "webhook_active": webhook[0],
        "webhook_url": webhook[1],
        "feedback_type": None,
    }
