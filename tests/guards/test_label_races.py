"""Two workers on one chunk's labels, on PostgreSQL: whatever the interleaving, no order gets a second label.

A worker can be presumed dead while it is only slow (its claim went stale); another then takes the chunk
over. Both hold rows in memory. The guard is that every write to a label row is conditional on what the
writer read (state and ``label_requested_at``), and that a label request only goes out for rows its
worker really moved. Here the fake Sendcloud holds one worker in an HTTP call while the other works.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from sendcloud_integration.models import OrderShipment, SendcloudIntegration, ShipmentState
from tests.conftest import requires_postgres
from tests.factories import OrderFactory
from tests.guards.helpers import PausingSendcloud, Worker, oid, queue, released_on_exit, run_chunk, shipment
from webshop.models import Order, Shop

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def takeover(settings: Any) -> None:
    """Any claim counts as stale at once: a second worker may take a chunk the first still works on."""
    settings.SENDCLOUD_STALE_AFTER_SECONDS = 0


def already_pushed(fake: PausingSendcloud, orders: list[Order]) -> None:
    """The orders are in Sendcloud already, so the chunk goes straight to its label work."""
    for order in orders:
        fake.know(oid(order), order.order_number)
    OrderShipment.objects.filter(order__in=orders).update(pushed_at=timezone.now())


def test_an_outdated_worker_cannot_forget_a_label_request_made_after_its_own(
    takeover: None, shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    """Worker A asks for a label and hangs; B takes over, finds no label and asks again. While B's request
    is on its way, A's comes back "429: nothing done". A must not take B's request for its own and reset
    the row: B's label would then be lost to the row and a third request would buy a second label."""
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order], create_label=True)
    already_pushed(fake, [order])
    first_request = fake.pause_label_request(1, answer=(429, {"Retry-After": "0"}, ""))
    second_request = fake.pause_label_request(2)
    a = Worker(batch)

    with released_on_exit(first_request, second_request):
        a.start()
        first_request.wait_reached()
        b = Worker(batch)  # finds the row LABELLING with no shipment: looks it up, finds none, asks again
        b.start()
        second_request.wait_reached()
        first_request.release()  # A now learns that Sendcloud did nothing with its request
        a.finish()
        second_request.release()  # B's request is answered: a shipment for the order
        b.finish()
    run_chunk(batch)

    assert fake.created_for(oid(order)) == 1
    row = shipment(order)
    assert row.state == ShipmentState.LABELLED
    assert row.sendcloud_shipment_id == fake.shipment_of(oid(order)).id


def test_rows_another_worker_requested_meanwhile_are_not_requested_again(
    takeover: None, shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    """Worker A reads the chunk's rows, then checks an earlier shipment of one of them (a GET) before it
    asks for labels. Meanwhile B takes over and asks for all of them. When A goes on, the rows it still
    believes LABEL_QUEUED are B's: A must send no label request for them."""
    orders = [OrderFactory(shop=shop) for _ in range(4)]
    batch = queue(shop, orders, create_label=True)
    already_pushed(fake, orders)
    refused = fake.create_shipment(oid(orders[0]), "carrier:address unknown")  # an earlier batch's, refused
    OrderShipment.objects.filter(order=orders[0]).update(sendcloud_shipment_id=refused.id)
    a_checks = fake.pause_shipment_read(1)
    a = Worker(batch)

    with released_on_exit(a_checks):
        a.start()
        a_checks.wait_reached()
        b = Worker(batch)
        b.start()
        b.finish()  # B read the refused shipment too, then requested and stored all four labels
        assert fake.received("labels") == 1
        a_checks.release()
        a.finish()
    run_chunk(batch)

    assert fake.received("labels") == 1, "A sent no label request of its own"
    for order in orders:
        assert fake.created_for(oid(order)) == (2 if order == orders[0] else 1)  # the refused one + its new one
        assert shipment(order).state == ShipmentState.LABELLED
