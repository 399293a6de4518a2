"""Multicollo, per-order shipping methods and weights, end to end against the sandbox (real HTTP, in-process).

Every body the sandbox receives is checked against JSON-schema fragments of Sendcloud's official v3 specs,
vendored in ``tests/fixtures/sendcloud_schemas/`` (the orders batch, ``create-labels-async``, the
shipping-options filter): a multicollo order, an express order and an order on the shop's default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pypdf import PdfReader

from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentParcel, ShipmentState
from sendcloud_integration.printing import builder, documents
from sendcloud_integration.printing.profiles import resolve_spec
from sendcloud_integration.push import services
from sendcloud_integration.shipping.catalogue import sync_catalogue
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.documents import finish
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import run_chunk_until_done
from webshop.models import Order, OrderParcel, Shop

pytestmark = pytest.mark.django_db

SCHEMAS = Path(__file__).resolve().parents[2] / "fixtures" / "sendcloud_schemas"


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    config = SandboxConfig(label_delay_seconds=0.05, rate_limits_enabled=False, record_bodies=True)
    server = SandboxServer(port=0, config=config).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


def run_until_done(batch: PushBatch, *, deadline_seconds: float = 30) -> None:
    run_chunk_until_done(batch, deadline_seconds=deadline_seconds, pause=0.1)


def parcels(order: Order, *weights: str | None) -> None:
    for position, weight in enumerate(weights):
        OrderParcel.objects.create(
            order=order, position=position, weight_kg=Decimal(weight) if weight else None, length_cm=Decimal("40"),
            width_cm=Decimal("30"), height_cm=Decimal("20"),
        )  # fmt: skip


def push_with_labels(shop: Shop, orders: list[Order]) -> PushBatch:
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    return PushBatch.objects.get(pk=result.batch_id)


def test_multicollo_express_and_default_orders_match_the_official_specs(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, dispatched: list[int]
) -> None:
    multicollo = OrderFactory(shop=shop, order_number="A-1", lines=[{"quantity": 3}, {"quantity": 1}])
    parcels(multicollo, "4.000", None, None)
    multicollo.weight_kg = Decimal("9.000")
    multicollo.save()
    integration.sender_eori_number = "NL123456789000"
    integration.save()
    express = OrderFactory(  # outside the EU customs area: with what customs need
        shop=shop,
        order_number="A-2",
        shipping_option_code="dhl_express:express",
        customs_invoice_number="INV-A-2",
        address={"country": "GB", "postal_code": "SW1A 1AA", "city": "London", "street": "Downing Street"},
        lines=[{"hs_code": "610910", "origin_country": "PT"}],
    )
    default = OrderFactory(shop=shop, order_number="A-3")
    sync_catalogue(integration)

    batch = push_with_labels(shop, [multicollo, express, default])
    run_until_done(batch)

    assert dict(OrderShipment.objects.filter(batch=batch).values_list("order__order_number", "state")) == {
        "A-1": ShipmentState.LABELLED,
        "A-2": ShipmentState.LABELLED,
        "A-3": ShipmentState.LABELLED,
    }
    log = sandbox.request_log()
    upserts = [r["body"] for r in log if r["route"] == "POST /orders"]
    label_requests = [r["body"] for r in log if r["route"] == "POST /orders/create-labels-async"]
    option_filters = [r["body"] for r in log if r["route"] == "POST /shipping-options"]
    for body in upserts:
        jsonschema.validate(body, schema("orders_batch.json"))
    for body in label_requests:
        jsonschema.validate(body, schema("create_labels_async.json"))
    for body in option_filters:
        jsonschema.validate(body, schema("shipping_option_filter.json"))
    assert (len(option_filters), len(upserts), len(label_requests)) == (6, 1, 2)

    sent = {order["order_number"]: order for body in upserts for order in body}
    assert sent["A-1"]["shipping_details"]["measurement"]["weight"] == {"value": 9.0, "unit": "kg"}
    assert sent["A-2"]["shipping_details"]["ship_with"]["properties"]["shipping_option_code"] == "dhl_express:express"
    assert sent["A-3"]["shipping_details"]["ship_with"]["properties"]["shipping_option_code"] == "postnl:standard"
    # ship_with applies to a whole label request: one request per shipping method, never mixed.
    by_code = {body["ship_with"]["properties"]["shipping_option_code"]: body for body in label_requests}
    assert set(by_code) == {"postnl:standard", "dhl_express:express"}
    assert len(by_code["dhl_express:express"]["orders"]) == 1
    split = next(o for o in by_code["postnl:standard"]["orders"] if o.get("parcels"))
    assert [p["weight"] for p in split["parcels"]] == [
        {"value": "4.000", "unit": "kg"},
        {"value": "2.500", "unit": "kg"},
        {"value": "2.500", "unit": "kg"},
    ]
    assert sum(item["quantity"] for p in split["parcels"] for item in p["parcel_items"]) == 4
    assert split["parcels"][0]["dimensions"] == {"length": "40.0", "width": "30.0", "height": "20.0", "unit": "cm"}

    shipment = OrderShipment.objects.get(order=multicollo)
    kept = list(ShipmentParcel.objects.filter(shipment=shipment).order_by("position"))
    assert len(kept) == 3
    assert len({p.sendcloud_parcel_id for p in kept}) == 3
    assert all(p.tracking_number and p.label_file for p in kept)
    assert shipment.tracking_number == kept[0].tracking_number
    assert OrderShipment.objects.get(order=express).carrier == "dhl_express"
    with shipment.label_file.open("rb") as handle:
        assert len(PdfReader(handle).pages) == 3
    finish(batch)
    state = documents.request_document(batch=batch, spec=resolve_spec(shop))
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "ready"
    state.document.refresh_from_db()
    with state.document.file.open("rb") as merged:
        pages = PdfReader(merged).pages
        # One label per parcel (A-1's three, A-2's one, A-3's one), and right after A-2's label its customs
        # declaration (GB is outside the EU customs union).
        assert len(pages) == 6
        assert "CN23" in (pages[4].extract_text() or "")
        assert "A-2" in (pages[4].extract_text() or "")
    state = sandbox.snapshot()
    assert state["duplicate_labels"] == 0
    assert sorted(len(s["parcels"]) for s in state["shipments"]["items"]) == [1, 1, 3]


def test_an_option_that_does_not_serve_the_country_fails_locally_before_any_request(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    sync_catalogue(integration)
    to_us = OrderFactory(shop=shop, address={"country": "US", "postal_code": "10001", "city": "New York"})
    too_heavy = OrderFactory(shop=shop, weight_kg=Decimal("30"))
    mailbox_split = OrderFactory(shop=shop, shipping_option_code="postnl:mailbox")
    parcels(mailbox_split, "0.500", "0.500")
    before = len(sandbox.request_log())

    batch = push_with_labels(shop, [to_us, too_heavy, mailbox_split])
    run_until_done(batch)

    errors = dict(OrderShipment.objects.filter(batch=batch).values_list("order_id", "last_error"))
    assert "Shipping method 'PostNL Standard' (postnl:standard) does not ship to US." in errors[to_us.pk]
    assert (
        "The order weighs 30.000 kg, but Shipping method 'PostNL Standard' (postnl:standard) takes"
        in (errors[too_heavy.pk])
    )
    assert "cannot ship an order in several parcels (this one has 2)" in errors[mailbox_split.pk]
    assert len(sandbox.request_log()) == before  # not one request spent on them
