"""The sweep's part in labels: label work that no chunk will continue is never left in flight."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from sendcloud_integration.models import (
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    Phase,
    PushBatch,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.pipeline import dispatch as dispatch_module
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.pipeline.sweep import sweep
from sendcloud_integration.push import services
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import LABELS_URL, FakeSendcloud, calls_to
from tests.pipeline.labels.test_label_phase import oid, queue, row, run_chunk
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[uuid.UUID, list[int]]]:
    sent: list[tuple[uuid.UUID, list[int]]] = []

    def dispatch(batch_id: uuid.UUID, chunk_numbers: Sequence[int] | None = None) -> None:
        sent.append((batch_id, list(chunk_numbers or [])))

    monkeypatch.setattr(dispatch_module, "dispatch_batch", dispatch)
    return sent


def orphan(order: Order, **fields: object) -> None:
    """Leave the order's row as a lost worker would have: in a label state, untouched for an hour."""
    OrderShipment.objects.filter(order=order).update(updated_at=timezone.now() - LONG_AGO, **fields)


def test_done_chunk_with_label_work_left_is_reopened_and_dispatched(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.know(oid(order), order.order_number)
    made = fake.create_shipment(oid(order))
    orphan(
        order,
        state=ShipmentState.LABELLING,
        pushed_at=timezone.now() - LONG_AGO,
        label_requested_at=timezone.now() - LONG_AGO + timedelta(minutes=50),
        sendcloud_shipment_id=made.id,
        sendcloud_parcel_id=str(made.parcel_id),
    )
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)
    PushChunk.objects.filter(batch=batch).update(status=ChunkStatus.DONE, finished_at=timezone.now())

    report = sweep()

    assert report.reopened_label_chunks == 1
    assert dispatched == [(batch.pk, [1])]
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.PENDING
    run_chunk(batch)  # what the dispatched task does
    assert row(order).state == ShipmentState.LABELLED
    assert batches.finish_batch(batch_id=batch.pk).labelled_count == 1
    assert calls_to(LABELS_URL) == []


def test_rows_of_a_deleted_batch_are_reconciled_without_requesting_labels(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    ready, uncertain_found, uncertain_missing, never_asked = (OrderFactory(shop=shop) for _ in range(4))
    batch = queue(shop, [ready, uncertain_found, uncertain_missing, never_asked])
    for order in (ready, uncertain_found, uncertain_missing):
        fake.know(oid(order), order.order_number)
    shipment = fake.create_shipment(oid(ready))
    found = fake.create_shipment(oid(uncertain_found))
    asked = timezone.now() - LONG_AGO
    orphan(
        ready,
        state=ShipmentState.LABELLING,
        label_requested_at=asked,
        sendcloud_shipment_id=shipment.id,
        sendcloud_parcel_id=str(shipment.parcel_id),
    )
    orphan(uncertain_found, state=ShipmentState.LABELLING, label_requested_at=asked)
    orphan(uncertain_missing, state=ShipmentState.LABELLING, label_requested_at=asked)
    orphan(never_asked, state=ShipmentState.LABEL_QUEUED)
    PushBatch.objects.filter(pk=batch.pk).delete()

    report = sweep()

    assert report.reconciled_labels == 4
    assert dispatched == []
    assert row(ready).state == ShipmentState.LABELLED
    assert row(ready).label_file.name.endswith(f"-{shipment.parcel_id}.pdf")
    assert row(uncertain_found).state == ShipmentState.LABELLED
    assert row(uncertain_found).sendcloud_shipment_id == found.id
    missing = row(uncertain_missing)
    assert (missing.state, missing.failed_phase) == (ShipmentState.FAILED, Phase.LABEL)
    assert "Sendcloud has no label for this order" in missing.last_error
    assert missing.label_requested_at is None
    assert row(never_asked).state == ShipmentState.FAILED
    assert "never requested" in row(never_asked).last_error
    assert calls_to(LABELS_URL) == []
    assert all(fake.created_for(oid(o)) <= 1 for o in (ready, uncertain_found, uncertain_missing, never_asked))


def test_pending_label_of_a_finished_batch_waits_then_times_out(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.know(oid(order), order.order_number)
    slow = fake.create_shipment(oid(order), "pending:1000")
    orphan(
        order,
        state=ShipmentState.LABELLING,
        label_requested_at=timezone.now() - timedelta(minutes=10),
        sendcloud_shipment_id=slow.id,
        sendcloud_parcel_id=str(slow.parcel_id),
    )
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPLETED)

    assert sweep().reconciled_labels == 0
    assert row(order).state == ShipmentState.LABELLING  # still being made: left for the next sweep

    orphan(order, label_requested_at=timezone.now() - timedelta(minutes=16))
    assert sweep().reconciled_labels == 1
    assert row(order).last_error == "Sendcloud did not produce the label within 15 minutes."


def test_label_rows_being_worked_on_are_left_alone(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "pending:1000")
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert row(order).state == ShipmentState.LABELLING

    report = sweep()

    assert (report.reopened_label_chunks, report.reconciled_labels) == (0, 0)
    assert dispatched == []
    assert row(order).state == ShipmentState.LABELLING


def test_sweep_releases_a_stale_running_chunk_once(shop: Shop, integration: SendcloudIntegration) -> None:
    result = services.push_orders(
        shop=shop, order_ids=[OrderFactory(shop=shop).pk], create_label=False, actor=services.Actor.command("t")
    )
    long_ago = timezone.now() - timedelta(hours=1)
    PushChunk.objects.update(status=ChunkStatus.RUNNING, claimed_at=long_ago)
    with mock.patch("sendcloud_integration.pipeline.dispatch.dispatch_batch") as dispatch:
        assert sweep().redispatched_chunks == 1
        assert sweep().redispatched_chunks == 0  # released and stamped: not sent again at once
    dispatch.assert_called_once_with(result.batch_id, [1])
    chunk = PushChunk.objects.get()
    assert chunk.status == ChunkStatus.PENDING
    assert chunk.claimed_at is not None
    assert chunk.claimed_at > long_ago
