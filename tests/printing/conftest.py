"""Fixtures of the printing tests: the sandbox as Sendcloud, and a batch whose labels are done.

``labelled_batch`` is a real run of the label phase against the sandbox: three orders, one of them in three
parcels, on two carriers, with first SKUs in another order than their order numbers, so that each ``sort``
gives another page order.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.push import services
from sendcloud_integration.shipping.catalogue import sync_catalogue
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.documents import finish
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import no_waiting, run_chunk_until_done
from webshop.models import OrderParcel, Shop


@pytest.fixture(autouse=True)
def _fast(settings: Any, tmp_path: Path) -> None:
    no_waiting(settings, tmp_path)


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    config = SandboxConfig(label_delay_seconds=0.01, rate_limits_enabled=False)
    server = SandboxServer(port=0, config=config).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def labelled_batch(shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer) -> PushBatch:
    """A-1 (PostNL, 3 parcels, first SKU "C"), A-2 (DHL Express, SKU "A"), A-3 (PostNL, SKU "B"): labelled."""
    three = OrderFactory(shop=shop, order_number="A-1", lines=[{"sku": "C-1", "quantity": 3}, {"sku": "A-9"}])
    for position, weight in enumerate(["4.000", None, None]):
        OrderParcel.objects.create(
            order=three,
            position=position,
            weight_kg=Decimal(weight) if weight else None,
            length_cm=Decimal("40"),
            width_cm=Decimal("30"),
            height_cm=Decimal("20"),
        )
    three.weight_kg = Decimal("9.000")
    three.save()
    express = OrderFactory(
        shop=shop,
        order_number="A-2",
        shipping_option_code="dhl_express:express",
        address={"country": "DE", "postal_code": "10117", "city": "Berlin", "street": "Unter den Linden"},
        lines=[{"sku": "A-1"}],
    )
    plain = OrderFactory(shop=shop, order_number="A-3", lines=[{"sku": "B-1"}])
    sync_catalogue(integration)
    result = services.push_orders(
        shop=shop,
        order_ids=[three.pk, express.pk, plain.pk],
        create_label=True,
        actor=services.Actor.command("test"),
    )
    batch = PushBatch.objects.get(pk=result.batch_id)
    run_chunk_until_done(batch, deadline_seconds=30, pause=0.05)
    assert set(OrderShipment.objects.filter(batch=batch).values_list("state", flat=True)) == {ShipmentState.LABELLED}
    finish(batch)
    return batch
