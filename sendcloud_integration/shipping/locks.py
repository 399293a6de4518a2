"""The one rule for when an order's shipping data may change: not while a batch works on it, never once labelled.

Shipping data is what the push sent and the label phase reads again: the service point (checked right
before the label), the customs data (declared with the label), the shipping option, weight and parcels
(the label request). Changing any of it while the order is in flight would check, request or declare with
data other than what Sendcloud holds; once labelled, the parcel is bought.

Applied by every door that changes it: ``set_service_point`` and ``update_order_shipping`` (this package),
and the shop's order import, which asks through ``webshop.shipping_locks`` (registered in ``apps.py``:
the shop domain may not import this package).
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from sendcloud_integration.lookups import Ids  # importing it registers ``any_of``
from sendcloud_integration.models import IN_FLIGHT_STATES, OrderShipment, ShipmentState, holds_label


class Lock(enum.Enum):
    IN_FLIGHT = "a batch is sending it to Sendcloud"
    LABELLED = "it has a label"
    CANCELLING = "its label's cancellation waits for Sendcloud"


def lock_of(shipment: OrderShipment | None) -> Lock | None:
    """Why the order of this shipment may not change its shipping data now; None when it may."""
    if shipment is None:
        return None
    if shipment.state == ShipmentState.CANCEL_REQUESTED:
        return Lock.CANCELLING
    if shipment.state == ShipmentState.LABELLED or holds_label(
        labelled_at=shipment.labelled_at, cancelled_at=shipment.cancelled_at
    ):
        return Lock.LABELLED
    if shipment.state in IN_FLIGHT_STATES:
        return Lock.IN_FLIGHT
    return None


def locked_orders(order_ids: Collection[int]) -> dict[int, str]:
    """Of these orders, those whose shipping data may not change now, and why (one query)."""
    shipments = OrderShipment.objects.filter(order__pk__any_of=Ids(order_ids)).only(
        "order_id", "state", "labelled_at", "cancelled_at"
    )
    return {shipment.order_id: lock.value for shipment in shipments if (lock := lock_of(shipment)) is not None}
