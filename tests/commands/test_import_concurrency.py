"""A re-import racing a push on real PostgreSQL: the import waits for the push's row locks, then refuses.

Without its own lock the import would read the shipments before the push commits (no shipment yet, so no
lock on the shipping data), then write the new service point over an order the push has just queued.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from sendcloud_integration.models import OrderShipment, ShipmentState
from sendcloud_integration.push.lock_objects import lock_orders_for_push
from tests.conftest import requires_postgres
from tests.factories import ShopFactory
from webshop.models import Order
from webshop.services import OrderImportError, import_orders

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_reimport_during_a_push_waits_for_it_and_then_refuses_the_new_point(sample_items: list[Any]) -> None:
    shop = ShopFactory(slug="race")
    sample_items[0]["service_point"] = {"id": "1000003"}
    import_orders(shop=shop, items=sample_items)
    order = Order.objects.get(shop=shop, order_number=sample_items[0]["order_number"])
    locked, importing = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def push() -> None:
        try:
            with transaction.atomic():
                lock_orders_for_push(shop=shop, order_ids=[order.pk])  # the push's own lock
                OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.QUEUED)
                locked.set()
                importing.wait(10)
                time.sleep(0.5)  # the import is now waiting on the order's row lock
        finally:
            connection.close()

    def reimport() -> None:
        locked.wait(10)
        importing.set()
        changed = [{**sample_items[0], "service_point": {"id": "1000004"}}]
        try:
            import_orders(shop=shop, items=changed)
            outcome["result"] = "imported"
        except OrderImportError as exc:
            outcome["result"] = exc.errors
        finally:
            connection.close()

    threads = [threading.Thread(target=push), threading.Thread(target=reimport)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert outcome["result"] == [
        f"item 0 ({order.order_number}): its shipping data cannot change now (a batch is sending it to "
        "Sendcloud), but the import changes service_point.id"
    ]
    order.refresh_from_db()
    assert order.service_point_id == "1000003"  # what the push queued is what the label phase checks
