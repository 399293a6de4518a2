"""The label phase against the project's Sendcloud sandbox (real HTTP, in-process), under faults.

The sandbox creates a second label when asked twice, like the real API, and counts it: its duplicate
detector must stay at zero however the label requests fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader

from sendcloud_integration.models import BatchStatus, OrderShipment, PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.pipeline import batches
from sendcloud_integration.push import services
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import run_chunk_until_done
from webshop.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    config = SandboxConfig(label_delay_seconds=0.1, rate_limits_enabled=False, seed=5, timeout_seconds=1.0)
    server = SandboxServer(port=0, config=config).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    settings.SENDCLOUD_READ_TIMEOUT = 0.4
    settings.SENDCLOUD_MAX_ATTEMPTS = 30
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 0.05
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 0.2
    try:
        yield server
    finally:
        server.stop()


def run_until_done(batch: PushBatch, *, deadline_seconds: float = 60) -> None:
    run_chunk_until_done(batch, deadline_seconds=deadline_seconds, pause=0.2)


def test_timeouts_after_commit_and_carrier_refusals_never_buy_a_second_label(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    sandbox.set_faults(
        {
            "POST /orders/create-labels-async": [
                {"kind": "commit_then_timeout", "probability": 0.5},
                {"kind": "announcement_failed", "probability": 0.2, "message": "Carrier says no"},
            ],
            "GET /shipments/{id}": [{"kind": "server_error", "probability": 0.2}],
            "GET /shipments": [{"kind": "server_error", "probability": 0.2}],
            # A 200 whose PDF is cut off half-way: the split must refuse it, never store half a label.
            "GET /parcel-documents/{type}": [{"kind": "malformed_json", "probability": 0.3}],
        },
        seed=3,
    )
    orders = [OrderFactory(shop=shop) for _ in range(45)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)

    run_until_done(batch)

    state = sandbox.snapshot(include_items=False)
    faults = {str(r.get("fault")) for r in sandbox.request_log() if r.get("fault")}
    assert any("commit_then_timeout" in f for f in faults), "the run should have met a timed-out label request"
    assert state["duplicate_labels"] == 0
    rows = OrderShipment.objects.filter(batch=batch)
    assert set(rows.values_list("state", flat=True)) <= {ShipmentState.LABELLED, ShipmentState.FAILED}
    labelled = rows.filter(state=ShipmentState.LABELLED)
    assert labelled.count() > 0
    assert all(r.label_file and r.tracking_number for r in labelled)
    for failed in rows.filter(state=ShipmentState.FAILED):
        assert "Carrier says no" in failed.last_error
    finished = batches.finish_batch(batch_id=batch.pk)
    assert finished.status in {BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS}
    assert finished.labelled_count == labelled.count()


def test_labels_are_read_and_fetched_in_bulk(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    # Labels are ready by the first poll, so the counts below are exact.
    sandbox.update_config(label_delay_seconds=0.0)
    orders = [OrderFactory(shop=shop) for _ in range(45)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)

    run_until_done(batch)

    gets = Counter(r["route"] for r in sandbox.request_log() if r["method"] == "GET")
    assert gets == {"GET /shipments": 1, "GET /parcel-documents/{type}": 3}
    assert sum(gets.values()) / 45 <= 0.2
    rows = OrderShipment.objects.filter(batch=batch).select_related("order")
    assert {r.state for r in rows} == {ShipmentState.LABELLED}
    for shipment in rows:
        with shipment.label_file.open("rb") as handle:
            reader = PdfReader(handle)
            assert len(reader.pages) == 1
            text = reader.pages[0].extract_text()
        assert f"Order: {shipment.order.order_number}" in text
        assert f"Tracking: {shipment.tracking_number}" in text
    assert sandbox.snapshot(include_items=False)["duplicate_labels"] == 0
