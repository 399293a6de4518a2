"""One order's shipment after the label, for the doors: the push state, each parcel's status, the history."""

from __future__ import annotations

from dataclasses import dataclass

from sendcloud_integration.models import OrderShipment, ParcelEvent, ShipmentParcel
from sendcloud_integration.tracking import returns, statuses
from webshop.models import Order, Shop


@dataclass(frozen=True)
class OrderTracking:
    order: Order
    shipment: OrderShipment | None
    parcels: list[ShipmentParcel]
    history: list[ParcelEvent]
    return_portal_url: str

    def kind(self, parcel: ShipmentParcel) -> str:
        return statuses.kind_of(parcel.status_id, parcel.status_code).value


def order_tracking(*, shop: Shop, order_id: int, with_return_portal: bool = True) -> OrderTracking | None:
    """The shop's order with its shipment, parcels and history; None for no such order in this shop."""
    order = Order.objects.filter(shop=shop, pk=order_id).first()
    if order is None:
        return None
    shipment = OrderShipment.objects.filter(order=order).first()
    if shipment is None:
        return OrderTracking(order, None, [], [], "")
    parcels = list(ShipmentParcel.objects.filter(shipment=shipment).order_by("position"))
    history = list(ParcelEvent.objects.filter(shipment=shipment).order_by("occurred_at", "pk"))
    portal = returns.return_portal_url(shipment) if with_return_portal else shipment.return_portal_url
    return OrderTracking(order, shipment, parcels, history, portal)
