"""The sweep's staleness tests, each on both sides of its threshold.

Too eager, and the sweep re-dispatches chunks that workers are busy with (duplicate messages, a second
worker on a chunk); too timid, or turned around, and a push whose dispatch was lost never starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from sendcloud_integration.models import (
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    PushBatch,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import dispatch as dispatch_module
from sendcloud_integration.pipeline.sweep import ORPHAN_LABELS_PER_SWEEP, sweep
from tests.factories import OrderFactory
from tests.guards.helpers import PausingSendcloud, oid, queue
from webshop.models import Shop

pytestmark = pytest.mark.django_db

STALE = 300


@pytest.fixture(autouse=True)
def _stale_after(settings: Any) -> None:
    settings.SENDCLOUD_STALE_AFTER_SECONDS = STALE


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[uuid.UUID, list[int]]]:
    """What the sweep sends to the broker (and what ``push_orders`` sends after commit: nothing here)."""
    sent: list[tuple[uuid.UUID, list[int]]] = []

    def dispatch(batch_id: uuid.UUID, chunk_numbers: Sequence[int] | None = None) -> None:
        sent.append((batch_id, list(chunk_numbers or [])))

    monkeypatch.setattr(dispatch_module, "dispatch_batch", dispatch)
    monkeypatch.setattr(dispatch_module, "start_batch", lambda batch_id: None)
    return sent


def pushed_ago(shop: Shop, age: timedelta, *, orders: int = 1) -> PushBatch:
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(orders)], create_label=False)
    PushBatch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - age)
    return batch


def test_a_push_whose_start_message_was_lost_is_released_by_the_next_sweep(
    shop: Shop, integration: SendcloudIntegration, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    """The broker was down after the push committed: the batch is QUEUED and none of its chunks released."""
    batch = pushed_ago(shop, timedelta(seconds=10), orders=3)

    report = sweep()

    assert dispatched == [(batch.pk, [1])]
    assert report.released_chunks == 1
    assert PushChunk.objects.get(batch=batch).released_at is not None
    assert sweep().released_chunks == 0, "released once: it is in its account's window now"
    assert dispatched == [(batch.pk, [1])]


@pytest.mark.parametrize(
    ("released_ago", "sent_again"), [(timedelta(seconds=STALE - 5), False), (timedelta(seconds=STALE + 5), True)]
)
def test_a_released_chunk_nobody_took_is_sent_again_once_its_release_is_stale(
    shop: Shop,
    integration: SendcloudIntegration,
    dispatched: list[tuple[uuid.UUID, list[int]]],
    released_ago: timedelta,
    sent_again: bool,
) -> None:
    """Released, but its message never reached a worker (the broker was down, or the sender died)."""
    batch = pushed_ago(shop, timedelta(hours=1))
    PushChunk.objects.filter(batch=batch).update(released_at=timezone.now() - released_ago)

    report = sweep()

    assert dispatched == ([(batch.pk, [1])] if sent_again else [])
    assert report.redispatched_chunks == (1 if sent_again else 0)
    assert report.released_chunks == 0


@pytest.mark.parametrize(
    ("claimed_ago", "sent_again"), [(timedelta(seconds=STALE - 5), False), (timedelta(seconds=STALE + 5), True)]
)
@pytest.mark.parametrize("status", [ChunkStatus.RUNNING, ChunkStatus.PENDING])
def test_a_claimed_chunk_is_sent_again_only_once_its_claim_is_stale(
    shop: Shop,
    integration: SendcloudIntegration,
    dispatched: list[tuple[uuid.UUID, list[int]]],
    claimed_ago: timedelta,
    sent_again: bool,
    status: str,
) -> None:
    """RUNNING: its worker may have died. PENDING with a claim time: handed back (or released) and not taken."""
    batch = pushed_ago(shop, timedelta(hours=1))
    claimed_at = timezone.now() - claimed_ago
    PushChunk.objects.filter(batch=batch).update(status=status, claimed_at=claimed_at, released_at=claimed_at)

    sweep()

    assert dispatched == ([(batch.pk, [1])] if sent_again else [])
    chunk = PushChunk.objects.get(batch=batch)
    assert chunk.status == (ChunkStatus.PENDING if sent_again else status)


def test_a_chunk_of_a_finished_batch_is_never_sent_again(
    shop: Shop, integration: SendcloudIntegration, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    batch = pushed_ago(shop, timedelta(hours=1))
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.FAILED)
    PushChunk.objects.filter(batch=batch).update(
        status=ChunkStatus.RUNNING, claimed_at=timezone.now() - timedelta(hours=1)
    )

    sweep()

    assert dispatched == []


def test_only_the_abandoned_chunks_of_a_batch_are_sent_again(
    shop: Shop, integration: SendcloudIntegration, dispatched: list[tuple[uuid.UUID, list[int]]]
) -> None:
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(3)], create_label=False, chunk_size=1)
    long_ago, now = timezone.now() - timedelta(hours=1), timezone.now()
    PushChunk.objects.filter(batch=batch, number=1).update(status=ChunkStatus.RUNNING, claimed_at=long_ago)
    PushChunk.objects.filter(batch=batch, number=2).update(status=ChunkStatus.RUNNING, claimed_at=now)
    PushChunk.objects.filter(batch=batch, number=3).update(status=ChunkStatus.DONE, claimed_at=long_ago)

    sweep()

    assert dispatched == [(batch.pk, [1])]
    statuses = dict(PushChunk.objects.filter(batch=batch).values_list("number", "status"))
    assert statuses == {1: ChunkStatus.PENDING, 2: ChunkStatus.RUNNING, 3: ChunkStatus.DONE}


@pytest.mark.parametrize(("age", "finished"), [(timedelta(seconds=5), False), (timedelta(seconds=60), True)])
def test_a_batch_whose_callback_never_came_is_finished_but_not_a_brand_new_one(
    shop: Shop,
    integration: SendcloudIntegration,
    dispatched: list[tuple[uuid.UUID, list[int]]],
    age: timedelta,
    finished: bool,
) -> None:
    batch = pushed_ago(shop, age)
    OrderShipment.objects.filter(batch=batch).update(state=ShipmentState.PUSHED)
    PushChunk.objects.filter(batch=batch).update(status=ChunkStatus.DONE, claimed_at=timezone.now())
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)

    report = sweep()

    assert report.finished_batches == (1 if finished else 0)
    assert PushBatch.objects.get(pk=batch.pk).status == (BatchStatus.COMPLETED if finished else BatchStatus.RUNNING)


def test_orphaned_label_rows_are_reconciled_at_most_a_sweepful_at_a_time(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    """Each costs GETs; the sweep settles ``ORPHAN_LABELS_PER_SWEEP`` of them and leaves the rest to the next."""
    orders = [OrderFactory(shop=shop) for _ in range(ORPHAN_LABELS_PER_SWEEP + 1)]
    long_ago = timezone.now() - timedelta(hours=1)
    for order in orders:
        fake.know(oid(order), order.order_number)
    OrderShipment.objects.bulk_create(
        OrderShipment(order=o, shop=shop, state=ShipmentState.LABEL_QUEUED, create_label=True, updated_at=long_ago)
        for o in orders
    )

    first = sweep()
    left = OrderShipment.objects.filter(state=ShipmentState.LABEL_QUEUED).count()
    second = sweep()

    assert (first.reconciled_labels, left, second.reconciled_labels) == (ORPHAN_LABELS_PER_SWEEP, 1, 1)
    assert not OrderShipment.objects.filter(state=ShipmentState.LABEL_QUEUED).exists()
    assert fake.received("labels") == 0, "the sweep never asks for a label"
