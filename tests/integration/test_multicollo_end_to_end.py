"""A three-parcel and a one-parcel order labelled through real processes; update-order before and after.

The create-label endpoint queues both; the worker asks for one label request per order, the three-parcel
order with its ``parcels``; the batch API lists the parcels, and the batch documents the worker builds
(PDF, then ZPL fetched from the sandbox) hold every label. Then
update-order: on a pushed order it re-upserts the order in Sendcloud (the sandbox holds the new method
and weight); on a labelled one it refuses and changes nothing, here or in the sandbox.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
import requests
from pypdf import PdfReader

from sendcloud_integration.models import BatchStatus, OrderShipment, ShipmentParcel, ShipmentState
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack
from tests.integration.helpers import push, stored_document, wait_until_finished
from webshop.models import Order, OrderParcel, Scope

pytestmark = [requires_stack, pytest.mark.integration]

BASE = "/api/services/webshop/v1"


def api(stack: Stack, token: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{stack.web_url}{BASE}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def sandbox_order(stack: Stack, order: Order) -> dict[str, Any]:
    answer = requests.get(
        f"{stack.sandbox.url}/v3/orders",
        params={"order_id": str(order.pk)},
        auth=("sandbox-public", "sandbox-secret"),
        timeout=10,
    )
    return answer.json()["data"][0]


def test_three_parcels_and_one_make_four_labels_never_a_second(stack: Stack) -> None:
    stack.worker()
    shop = ShopFactory(slug="collo")
    SendcloudIntegrationFactory(shop=shop, shipping_option_code="postnl:standard")
    token = issue_token(shop, scopes=[Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_READ])
    boxes = OrderFactory(shop=shop, order_number="C-1", lines=[{"quantity": 3}])
    for position, weight in enumerate(["2.000", "1.500", "1.000"]):
        OrderParcel.objects.create(order=boxes, position=position, weight_kg=Decimal(weight))
    single = OrderFactory(shop=shop, order_number="C-2")

    answer = api(stack, token, "POST", "/orders/sendcloud/shipments/create-label", {"order_ids": [boxes.pk, single.pk]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["new_orders"], answer.json()["total_chunks"]) == (2, 1)
    batch = wait_until_finished(answer.json()["status_check_url"].rsplit("/", 1)[-1], timeout=120)

    assert batch.status == BatchStatus.COMPLETED
    assert set(OrderShipment.objects.filter(batch=batch).values_list("state", flat=True)) == {ShipmentState.LABELLED}
    assert ShipmentParcel.objects.filter(shipment__order=boxes).count() == 3
    assert ShipmentParcel.objects.filter(shipment__order=single).count() == 1
    detail = requests.get(answer.json()["status_check_url"], headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = {r["order_number"]: r for r in detail.json()["orders"]["results"]}
    assert [p["number"] for p in results["C-1"]["parcels"]] == [1, 2, 3]
    assert len({p["tracking_number"] for p in results["C-1"]["parcels"]}) == 3
    assert len(results["C-2"]["parcels"]) == 1
    labels_url = detail.json()["batch"]["labels_url"]
    pdf = stored_document(token, labels_url)  # the worker builds the shop's default document after the batch
    assert pdf.status_code == 200
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 4
    zpl = stored_document(token, labels_url, {"format": "zpl"})  # fetched from Sendcloud as ZPL by the worker
    assert zpl.status_code == 200
    assert zpl.headers["Content-Type"] == "application/zpl"
    assert zpl.content.count(b"^XA") == zpl.content.count(b"^XZ") == 4

    state = stack.sandbox.snapshot()
    assert state["duplicate_labels"] == 0
    assert sorted(len(s["parcels"]) for s in state["shipments"]["items"]) == [1, 3]
    label_requests = [r for r in stack.sandbox.request_log() if r["route"] == "POST /orders/create-labels-async"]
    assert len(label_requests) == 1  # one request, one label per parcel; no parcel asked for twice

    # update-order on a labelled order: refused, nothing changed here or at Sendcloud.
    upserts = state["orders"]["upserts"]
    methods = api(stack, token, "POST", "/integrations/sendcloud/shipping-methods", {"country": "NL"}).json()
    dpd = next(m for m in methods["shipping_methods"] if m["code"] == "dpd:home")
    refused = api(
        stack, token, "POST", "/orders/update-order",
        {"order_id": boxes.pk, "shipping_method_id": dpd["id"], "weight": 9, "no_parcels": 2},
    )  # fmt: skip
    assert refused.status_code == 409
    assert "cancel the label first (then push it again with labels)" in refused.json()["message"]
    boxes.refresh_from_db()
    assert (boxes.shipping_option_code, boxes.weight_kg, boxes.parcels.count()) == ("", None, 3)
    assert stack.sandbox.snapshot()["orders"]["upserts"] == upserts
    assert sandbox_order(stack, boxes)["shipping_details"]["ship_with"]["properties"]["shipping_option_code"] == (
        "postnl:standard"
    )

    # update-order on a pushed (not labelled) order: re-upserted with the new method and weight.
    pushed = OrderFactory(shop=shop, order_number="C-3")
    batch = wait_until_finished(push(stack, token, [pushed.pk])["batch"]["id"], timeout=60)
    assert OrderShipment.objects.get(order=pushed).state == ShipmentState.PUSHED
    updated = api(
        stack, token, "POST", "/orders/update-order",
        {"order_id": pushed.pk, "shipping_method_id": dpd["id"], "weight": "3.250", "no_parcels": 1},
    )  # fmt: skip
    assert updated.status_code == 200, updated.text
    assert updated.json()["order_metadata"]["sendcloud_shipment_created"] is True
    assert updated.json()["sendcloud_response"][0]["order_id"] == str(pushed.pk)
    stored = sandbox_order(stack, pushed)
    assert stored["shipping_details"]["ship_with"]["properties"]["shipping_option_code"] == "dpd:home"
    assert Decimal(str(stored["shipping_details"]["measurement"]["weight"]["value"])) == Decimal("3.25")
