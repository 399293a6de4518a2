"""Changing one order's shipping method, weight and number of parcels: ``update-order`` and the admin.

The change is refused, and nothing changes, while a batch is working on the order or once it has a label
(a label cannot be changed, only cancelled in Sendcloud and made again). It is checked against the
shipping method like the push's pre-check checks it (destination, weight per parcel, multicollo). When
the order is already in Sendcloud, it is upserted there with the new data in the same transaction as the
local change, after a slot of the account's write budget: if Sendcloud refuses or does not answer,
nothing changes here either. ``no_parcels`` replaces the order's parcels by that many boxes sharing its
weight evenly (see ``sendcloud/shipping_data.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction

from sendcloud_integration.exceptions import (
    InvalidShippingData,
    OrderNotFound,
    SendcloudRefused,
    SendcloudUnavailable,
    ShippingDataLocked,
)
from sendcloud_integration.limits import MAX_PARCELS_PER_SHIPMENT
from sendcloud_integration.models import (
    OrderShipment,
    SendcloudIntegration,
    ShipmentState,
    ShippingOption,
)
from sendcloud_integration.push.services import ready_integration
from sendcloud_integration.sendcloud import budget, payloads
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, OrdersRejected, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.shipping_data import ShippingData, shipping_data
from sendcloud_integration.shipping.catalogue import find_option
from sendcloud_integration.shipping.locks import Lock, lock_of
from webshop.models import Order, OrderParcel, Shop, load_lines_and_parcels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderShippingUpdate:
    """The order as updated, its shipment (None before its first push), and what Sendcloud answered."""

    order: Order
    option: ShippingOption
    data: ShippingData
    shipment: OrderShipment | None
    sent_to_sendcloud: bool
    sendcloud_response: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.sent_to_sendcloud:
            return f"Order {self.order.order_number} updated, in Sendcloud too."
        return f"Order {self.order.order_number} updated; it is not in Sendcloud yet, the next push sends it."


def in_sendcloud(shipment: OrderShipment | None) -> bool:
    """Whether Sendcloud holds the order (it accepted a push of it once)."""
    return shipment is not None and (shipment.pushed_at is not None or shipment.state == ShipmentState.PUSHED)


def _refuse_if_locked(order: Order, shipment: OrderShipment | None) -> None:
    lock = lock_of(shipment)
    if lock is Lock.LABELLED:
        raise ShippingDataLocked(
            f"Order {order.order_number} already has a label, so its shipping data cannot change: cancel the "
            "label first (then push it again with labels). Nothing was changed."
        )
    if lock is Lock.CANCELLING:
        raise ShippingDataLocked(
            f"Order {order.order_number}'s label is being cancelled; update it once Sendcloud confirmed the "
            "cancellation. Nothing was changed."
        )
    if lock is Lock.IN_FLIGHT:
        assert shipment is not None
        raise ShippingDataLocked(
            f"Order {order.order_number} is being sent to Sendcloud (batch {shipment.batch_id}); update it once "
            "that batch is done. Nothing was changed."
        )


def update_order_shipping(
    *,
    shop: Shop,
    order_id: int,
    weight_kg: Decimal,
    parcels: int,
    option_id: int | None = None,
    option_code: str | None = None,
) -> OrderShippingUpdate:
    """Set the order's shipping method, weight and number of parcels; upsert it in Sendcloud when it is there."""
    integration = ready_integration(shop)
    order = Order.objects.filter(shop=shop, pk=order_id).first()
    if order is None:
        raise OrderNotFound("No such order in this shop.")
    option = find_option(integration, option_id=option_id, code=option_code)
    if not 1 <= parcels <= MAX_PARCELS_PER_SHIPMENT:
        raise InvalidShippingData(
            f"The no_parcels field must be between 1 and {MAX_PARCELS_PER_SHIPMENT}.", field="no_parcels"
        )
    shipment = OrderShipment.objects.filter(order=order).first()
    _refuse_if_locked(order, shipment)
    send = in_sendcloud(shipment)
    if send:
        wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            raise SendcloudUnavailable(budget.spent_message(wait) + " Nothing was changed.")
    call_log = CallLog(shop_id=shop.pk, order_ids=[order.pk])
    try:
        with transaction.atomic():
            return _apply(integration, order, option, weight_kg, parcels, send, call_log)
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        raise SendcloudRefused(f"Sendcloud refused the credentials: {exc.message} Nothing was changed.") from exc
    except OrdersRejected as exc:
        reasons = [m for messages in exc.errors_by_index.values() for m in messages] + exc.unattributed
        raise SendcloudRefused(
            f"Sendcloud refused the updated order: {'; '.join(reasons) or exc.message}. Nothing was changed."
        ) from exc
    except TransientError as exc:
        raise SendcloudUnavailable(
            f"Sendcloud did not confirm the update ({exc.message}); nothing was changed here. Try again."
        ) from exc
    except SendcloudError as exc:
        raise SendcloudRefused(f"Sendcloud refused the updated order: {exc.message} Nothing was changed.") from exc
    finally:
        call_log.flush()


def _apply(
    integration: SendcloudIntegration,
    order: Order,
    option: ShippingOption,
    weight_kg: Decimal,
    parcels: int,
    send: bool,
    call_log: CallLog,
) -> OrderShippingUpdate:
    # The push locks orders the same way: a push and an update of one order take turns.
    Order.objects.select_for_update(no_key=True).filter(pk=order.pk).first()
    shipment = OrderShipment.objects.filter(order=order).first()
    _refuse_if_locked(order, shipment)
    send = send and in_sendcloud(shipment)
    Order.objects.filter(pk=order.pk).update(shipping_option_code=option.code, weight_kg=weight_kg)
    OrderParcel.objects.filter(order=order).delete()
    if parcels > 1:
        OrderParcel.objects.bulk_create(OrderParcel(order=order, position=n) for n in range(parcels))
    fresh = Order.objects.select_related("shipping_address", "shop").get(pk=order.pk)
    load_lines_and_parcels([fresh])
    data = shipping_data(fresh, integration)
    address = payloads.shipping_address_of(fresh)
    country = address.country.strip().upper() if address is not None else ""
    problems = payloads.option_problems(data, country, integration, option)
    if problems:
        field_name, message = problems[0]
        raise InvalidShippingData(message, field=field_name)
    response: list[dict[str, Any]] = []
    if send:
        client = build_client(integration, call_log)
        accepted = client.upsert_orders([payloads.build_order(fresh, integration)])
        response = [{"id": a.sendcloud_id, "order_id": a.order_id, "order_number": a.order_number} for a in accepted]
        integration.mark_connected(only_if_changed=True)
        logger.info("order=%s shipping data updated in Sendcloud (%s)", order.pk, option.code)
    return OrderShippingUpdate(
        order=fresh,
        option=option,
        data=data,
        shipment=shipment,
        sent_to_sendcloud=send,
        sendcloud_response=response,
    )
