"""A mixed batch through real processes: home delivery, service points (one closed), customs (one incomplete).

Five orders are labelled with one create-label call: a home delivery in NL; an NL pickup at an open service
point; an NL pickup at a point that has closed; a parcel to Switzerland with every customs field; a parcel
to the US whose second line has no HS code. The three good ones are labelled; the closed point fails in the
label phase after Sendcloud's availability check, and the US order fails the pre-check, so neither is ever
sent for a label (and the US order is not even pushed). The Swiss customs declaration is stored and printed
right after its label in the merged PDF, and every body sent validates against the official v3 schemas.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from pypdf import PdfReader

from sendcloud_integration.models import OrderShipment, Phase, ShipmentState
from sendcloud_sandbox.config import SandboxConfig
from sendcloud_sandbox.server import SandboxServer
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack
from tests.integration.helpers import stored_document, wait_until_finished
from webshop.models import Scope

pytestmark = [requires_stack, pytest.mark.integration]

BASE = "/api/services/webshop/v1"
SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "sendcloud_schemas"
PICKUP = "postnl:standard/service_point"
EXPRESS = "dhl_express:express"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """The stack's sandbox, recording request bodies so they can be checked against the specs."""
    server = SandboxServer(config=SandboxConfig(label_delay_seconds=0.2, seed=7, record_bodies=True)).start()
    yield server
    server.stop()


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def api(stack: Stack, token: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{stack.web_url}{BASE}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def test_mixed_batch_labels_the_good_orders_and_names_the_problem_of_the_bad_ones(stack: Stack) -> None:
    stack.worker()
    shop = ShopFactory(slug="pickup-and-customs")
    SendcloudIntegrationFactory(shop=shop, shipping_option_code="postnl:standard", sender_eori_number="NL123456789000")
    token = issue_token(shop, scopes=[Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_READ])
    # The catalogue tells the pre-check which methods deliver to a service point.
    assert api(stack, token, "POST", "/integrations/sendcloud/shipping-methods", {}).status_code == 200
    home = OrderFactory(shop=shop, order_number="H-1")
    pickup = OrderFactory(shop=shop, order_number="SP-1", shipping_option_code=PICKUP, service_point_id="1000001")
    closed = OrderFactory(shop=shop, order_number="SP-2", shipping_option_code=PICKUP, service_point_id="1000005")
    swiss = OrderFactory(
        shop=shop,
        order_number="CH-1",
        shipping_option_code=EXPRESS,
        customs_invoice_number="INV-2026-0042",
        receiver_vat_number="CHE-123.456.789 MWST",
        address={"street": "Bahnhofstrasse", "postal_code": "8001", "city": "Zürich", "country": "CH"},
        lines=[{"hs_code": "6109.10", "origin_country": "PT"}, {"hs_code": "691200", "origin_country": "NL"}],
    )  # fmt: skip
    american = OrderFactory(
        shop=shop,
        order_number="US-1",
        shipping_option_code=EXPRESS,
        customs_invoice_number="INV-2026-0043",
        address={"street": "Broadway", "postal_code": "10001", "city": "New York", "country": "US"},
        lines=[{"hs_code": "610910", "origin_country": "PT"}, {"sku": "SKU-7", "origin_country": "CN"}],
    )  # fmt: skip
    orders = [home, pickup, closed, swiss, american]

    answer = api(
        stack, token, "POST", "/orders/sendcloud/shipments/create-label", {"order_ids": [o.pk for o in orders]}
    )
    assert answer.status_code == 200, answer.text
    batch = wait_until_finished(answer.json()["status_check_url"].rsplit("/", 1)[-1], timeout=120)

    rows = {row.order.order_number: row for row in OrderShipment.objects.filter(batch=batch).select_related("order")}
    assert {number: row.state for number, row in rows.items()} == {
        "H-1": ShipmentState.LABELLED,
        "SP-1": ShipmentState.LABELLED,
        "SP-2": ShipmentState.FAILED,
        "CH-1": ShipmentState.LABELLED,
        "US-1": ShipmentState.FAILED,
    }
    assert rows["SP-2"].failed_phase == Phase.LABEL
    assert "service point 1000005 is not available" in rows["SP-2"].last_error
    assert "no label was bought" in rows["SP-2"].last_error
    assert rows["US-1"].failed_phase == Phase.PUSH
    assert (
        "Customs data is incomplete for a parcel to US: HS code missing on line 2 (SKU-7)." in rows["US-1"].last_error
    )
    assert rows["CH-1"].customs_declaration
    assert not rows["H-1"].customs_declaration

    # No label for the two bad orders: never asked for, none made; the US order never even left.
    log = stack.sandbox.request_log()
    upserts = [r["body"] for r in log if r["route"] == "POST /orders"]
    label_requests = [r["body"] for r in log if r["route"] == "POST /orders/create-labels-async"]
    checks = [r["path"] for r in log if r["route"] == "POST /service-points/{id}/check-availability"]
    asked = {order["order_id"] for body in label_requests for order in body["orders"]}
    assert str(closed.pk) not in asked
    assert str(american.pk) not in asked
    assert asked == {str(home.pk), str(pickup.pk), str(swiss.pk)}
    assert sorted(path.rsplit("/", 2)[-2] for path in checks) == ["1000001", "1000005"]
    sent = {order["order_number"]: order for body in upserts for order in body}
    assert "US-1" not in sent
    state = stack.sandbox.snapshot()
    assert sorted(s["order_number"] for s in state["shipments"]["items"]) == ["CH-1", "H-1", "SP-1"]
    assert state["duplicate_labels"] == 0

    # What was sent: the point and the customs data, in the official v3 shapes.
    for body in upserts:
        jsonschema.validate(body, schema("orders_batch.json"))
    for body in label_requests:
        jsonschema.validate(body, schema("create_labels_async.json"))
    assert sent["SP-1"]["service_point_details"] == {"id": "1000001"}
    assert "service_point_details" not in sent["H-1"]
    assert "customs_details" not in sent["H-1"]
    assert sent["CH-1"]["customs_details"] == {
        "commercial_invoice_number": "INV-2026-0042",
        "shipment_type": "commercial_goods",
        "export_type": "commercial_b2c",
        "tax_numbers": {
            "sender": [{"name": "EORI", "country_code": "NL", "value": "NL123456789000"}],
            "receiver": [{"name": "VAT", "country_code": "CH", "value": "CHE-123.456.789 MWST"}],
        },
    }
    assert [item["hs_code"] for item in sent["CH-1"]["order_details"]["order_items"]] == ["610910", "691200"]

    # The batch API says which documents each order has; the merged PDF prints the declaration after its label.
    detail = requests.get(answer.json()["status_check_url"], headers={"Authorization": f"Bearer {token}"}, timeout=30)
    documents = {r["order_number"]: r["documents"] for r in detail.json()["orders"]["results"]}
    assert documents == {
        "CH-1": ["label", "customs_declaration"],
        "H-1": ["label"],
        "SP-1": ["label"],
        "SP-2": [],
        "US-1": [],
    }
    pdf = stored_document(token, detail.json()["batch"]["labels_url"])  # the worker builds it after the batch
    assert pdf.status_code == 200, pdf.text
    texts = [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf.content)).pages]
    assert len(texts) == 4  # three labels and one customs declaration
    assert "CH-1" in texts[0]
    assert "CN23" not in texts[0]
    assert "CN23" in texts[1]
    assert "CH-1" in texts[1]
    assert "HS 610910" in texts[1]
    assert "H-1" in texts[2]
    assert "SP-1" in texts[3]
