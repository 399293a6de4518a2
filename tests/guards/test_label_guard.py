"""The label guard in one worker: each order gets one label, its own, and a labelled order never another.

``fake.created_for(order_id)`` counts the shipments Sendcloud made for an order: the labels the shop pays for.
"""

from __future__ import annotations

import json

import pytest
import responses

from sendcloud_integration.limits import MAX_ORDERS_PER_LABEL_REQUEST
from sendcloud_integration.models import SendcloudIntegration, ShipmentState
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.push import services
from tests.factories import OrderFactory
from tests.guards.helpers import PausingSendcloud, oid, queue, run_chunk, shipment
from tests.pipeline.labels.fake import LABELS_URL, calls_to
from webshop.models import Shop

pytestmark = pytest.mark.django_db


def test_a_409_for_one_order_of_a_group_of_twenty_is_adopted_by_that_order_only(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(MAX_ORDERS_PER_LABEL_REQUEST)]
    has_one = orders[7]
    fake.know(oid(has_one), has_one.order_number)
    existing = fake.create_shipment(oid(has_one))
    batch = queue(shop, orders, create_label=True)
    # Sendcloud: "a shipment exists already" for the group, carrying the one of orders[7].
    responses.replace(responses.POST, LABELS_URL, status=409, json={"data": existing.as_json()})

    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    fake.restore_labels()  # the orders without a label are asked for again, normally
    run_chunk(batch)

    assert shipment(has_one).sendcloud_shipment_id == existing.id
    for order in orders:
        row = shipment(order)
        assert row.state == ShipmentState.LABELLED, order
        assert fake.created_for(oid(order)) == 1, "one label per order"
        assert fake.shipments[row.sendcloud_shipment_id].order_id == oid(order), "its own shipment"
    assert len({shipment(o).tracking_number for o in orders}) == len(orders), "no two orders share a label"


def test_a_group_of_twenty_one_is_asked_for_in_two_requests_of_twenty_and_one(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(MAX_ORDERS_PER_LABEL_REQUEST + 1)]
    batch = queue(shop, orders, create_label=True)

    run_chunk(batch)

    sizes = [len(json.loads(call.request.body or b"")["orders"]) for call in calls_to(LABELS_URL)]
    assert sizes == [20, 1]
    assert all(fake.created_for(oid(o)) == 1 for o in orders)
    assert {shipment(o).state for o in orders} == {ShipmentState.LABELLED}


def test_a_labelled_order_pushed_again_with_labels_gets_no_second_label(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    run_chunk(queue(shop, [order], create_label=True))
    first = shipment(order)
    assert first.state == ShipmentState.LABELLED

    again = services.push_orders(
        shop=shop, order_ids=[order.pk], create_label=True, actor=services.Actor.command("again")
    )

    assert again.batch_id is None
    assert again.skipped == [f"{order.order_number}: label already created"]
    assert fake.created_for(oid(order)) == 1
    assert len(calls_to(LABELS_URL)) == 1
    kept = shipment(order)
    assert (kept.state, kept.label_file.name, kept.tracking_number) == (
        ShipmentState.LABELLED,
        first.label_file.name,
        first.tracking_number,
    )
