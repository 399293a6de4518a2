"""A chunk is never worked twice at once: real workers racing for one chunk on PostgreSQL.

The claim is a conditional update (PENDING, or RUNNING with a claim older than
``SENDCLOUD_STALE_AFTER_SECONDS``). What a shop would notice if it were wrong: its orders sent to
Sendcloud twice at the same time, or a chunk whose worker died never finishing.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from sendcloud_integration.models import ChunkStatus, PushChunk, SendcloudIntegration, ShipmentState
from sendcloud_integration.pipeline import process as processing
from tests.conftest import requires_postgres
from tests.factories import OrderFactory
from tests.guards.helpers import WAIT, PausingSendcloud, Worker, queue, released_on_exit, shipment
from tests.pipeline.labels.fake import ORDERS_URL, calls_to
from webshop.models import Shop

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_second_worker_leaves_a_chunk_alone_while_the_first_is_sending_it(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    batch = queue(shop, orders, create_label=False)
    pause = fake.pause_push(1)
    first = Worker(batch)

    with released_on_exit(pause):
        first.start()
        pause.wait_reached()  # the first worker claimed the chunk a moment ago and is sending it
        second = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
        assert second == processing.ChunkOutcome(), "the second worker must find the chunk taken"
        assert fake.received("pushes") == 1
        pause.release()
        assert first.finish().pushed == 3

    assert len(calls_to(ORDERS_URL)) == 1
    assert {shipment(o).state for o in orders} == {ShipmentState.PUSHED}
    assert {shipment(o).attempts for o in orders} == {1}


def test_eight_workers_racing_for_one_chunk_send_it_once(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(5)]
    batch = queue(shop, orders, create_label=False)
    barrier = threading.Barrier(8)
    workers = [Worker(batch, before=lambda: barrier.wait(WAIT)) for _ in range(8)]

    for worker in workers:
        worker.start()
    outcomes = [worker.finish() for worker in workers]

    assert sorted(o.pushed for o in outcomes) == [0] * 7 + [5]
    assert len(calls_to(ORDERS_URL)) == 1
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.DONE


@pytest.mark.parametrize(
    ("claimed_ago", "taken_over"),
    [(timedelta(seconds=1), False), (timedelta(seconds=299), False), (timedelta(seconds=301), True)],
)
def test_a_running_chunk_is_taken_over_only_once_its_claim_is_stale(
    settings: Any,
    shop: Shop,
    integration: SendcloudIntegration,
    fake: PausingSendcloud,
    claimed_ago: timedelta,
    taken_over: bool,
) -> None:
    """A worker that died leaves its chunk RUNNING; after ``SENDCLOUD_STALE_AFTER_SECONDS`` another takes it."""
    settings.SENDCLOUD_STALE_AFTER_SECONDS = 300
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders, create_label=False)
    PushChunk.objects.filter(batch=batch).update(status=ChunkStatus.RUNNING, claimed_at=timezone.now() - claimed_ago)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert outcome.pushed == (2 if taken_over else 0)
    assert len(calls_to(ORDERS_URL)) == (1 if taken_over else 0)
    chunk = PushChunk.objects.get(batch=batch)
    assert chunk.status == (ChunkStatus.DONE if taken_over else ChunkStatus.RUNNING)


def test_a_finished_chunk_is_never_worked_again_however_old_its_claim(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders, create_label=False)
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    PushChunk.objects.filter(batch=batch).update(claimed_at=timezone.now() - timedelta(days=1))

    again = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert again == processing.ChunkOutcome()
    assert len(calls_to(ORDERS_URL)) == 1
    assert {shipment(o).attempts for o in orders} == {1}


def test_claiming_one_chunk_leaves_the_other_chunks_of_the_batch_to_their_workers(
    shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(4)]
    batch = queue(shop, orders, create_label=False, chunk_size=2)

    processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    statuses = dict(PushChunk.objects.filter(batch=batch).values_list("number", "status"))
    assert statuses == {1: ChunkStatus.DONE, 2: ChunkStatus.PENDING}
    assert [shipment(o).state for o in orders] == [ShipmentState.PUSHED] * 2 + [ShipmentState.QUEUED] * 2
    connection.close()


def test_a_worker_whose_claim_was_taken_over_does_not_finish_the_new_owners_chunk(
    settings: Any, shop: Shop, integration: SendcloudIntegration, fake: PausingSendcloud
) -> None:
    """A is slow (presumed dead), B takes the chunk over; A comes back first. While B still works, the chunk
    must stay RUNNING: DONE (or PENDING) would let the sweep or a redelivered message treat it as free."""
    settings.SENDCLOUD_STALE_AFTER_SECONDS = 0
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders, create_label=False)
    a_sends, b_sends = fake.pause_push(1), fake.pause_push(2)
    a = Worker(batch)

    with released_on_exit(a_sends, b_sends):
        a.start()
        a_sends.wait_reached()
        b = Worker(batch)
        b.start()
        b_sends.wait_reached()  # B claimed the chunk and is sending it too
        a_sends.release()
        a.finish()
        status_while_b_works = PushChunk.objects.get(batch=batch).status
        b_sends.release()
        b.finish()

    assert status_while_b_works == ChunkStatus.RUNNING


@pytest.mark.django_db
def test_a_worker_that_lost_its_claim_stops_and_leaves_the_chunk_to_its_new_owner(
    shop: Shop, integration: SendcloudIntegration
) -> None:
    """The heartbeat notices a takeover: the old worker's label run stops, and the chunk's error stays the
    new owner's."""
    from sendcloud_integration.pipeline import chunks
    from sendcloud_integration.pipeline.labels.run import ChunkScope, ClaimLost, LabelRun

    batch = queue(shop, [OrderFactory(shop=shop)], create_label=True)
    mine = chunks.claim_chunk(batch_id=batch.pk, chunk_number=1)
    assert mine is not None
    assert chunks.heartbeat(mine)  # still mine: refreshed
    new_claim = timezone.now() + timedelta(seconds=1)
    PushChunk.objects.filter(pk=mine.pk).update(claimed_at=new_claim, last_error="the new owner's")

    assert not chunks.heartbeat(mine)
    run = LabelRun(integration=integration, client=None, call_log=None, scope=ChunkScope(mine))  # type: ignore[arg-type]
    with pytest.raises(ClaimLost):
        run.heartbeat(force=True)
    chunks.record_error(mine, "the old worker's")
    assert not chunks.complete_chunk(mine)
    assert not chunks.release_chunk(mine, counts_attempt=True)
    chunk = PushChunk.objects.get(pk=mine.pk)
    assert (chunk.status, chunk.claimed_at, chunk.last_error, chunk.attempts) == (
        ChunkStatus.RUNNING,
        new_claim,
        "the new owner's",
        0,
    )
