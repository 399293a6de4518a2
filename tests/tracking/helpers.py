"""Labelled shipments and signed webhook bodies for the tracking tests."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from sendcloud_integration.models import OrderShipment, SendcloudIntegration, ShipmentParcel, ShipmentState
from sendcloud_integration.tracking import signatures
from tests.factories import OrderFactory

WEBHOOK_URL = "/webhooks/sendcloud/{token}"


def labelled_shipment(
    integration: SendcloudIntegration, *, parcel_ids: tuple[str, ...] = ("30000001",), shipment_id: str = "20000001"
) -> OrderShipment:
    """An order of the integration's shop with a label: LABELLED, one ShipmentParcel per parcel id."""
    order = OrderFactory(shop=integration.shop)
    now = timezone.now()
    shipment = OrderShipment.objects.create(
        order=order,
        shop=integration.shop,
        state=ShipmentState.LABELLED,
        create_label=True,
        sendcloud_order_id="10000001",
        sendcloud_shipment_id=shipment_id,
        sendcloud_parcel_id=parcel_ids[0],
        tracking_number=f"3SBOX{parcel_ids[0]}",
        label_requested_at=now,
        pushed_at=now,
        labelled_at=now,
    )
    for position, parcel_id in enumerate(parcel_ids, start=1):
        ShipmentParcel.objects.create(shipment=shipment, position=position, sendcloud_parcel_id=parcel_id)
    return shipment


def status_body(parcel_id: str, status_id: int, message: str, timestamp: int) -> bytes:
    """A ``parcel_status_changed`` body as Sendcloud sends it (spec ``v3/webhooks``)."""
    payload: dict[str, Any] = {
        "action": "parcel_status_changed",
        "timestamp": timestamp,
        "carrier_status_change_timestamp": timestamp,
        "parcel": {"id": int(parcel_id), "status": {"id": status_id, "message": message}, "order_number": "x"},
    }
    # Sendcloud's own spacing (not ours): the signature covers these exact bytes.
    return json.dumps(payload, indent=1).encode()


def signed(body: bytes, key: str = "sandbox-secret") -> dict[str, str]:
    return {"HTTP_SENDCLOUD_SIGNATURE": signatures.sign(body, key)}
