"""Fair by account: chunks reach the broker only as fast as their account's window lets them.

What a shop would notice if this were wrong: its 50 orders waiting behind another shop's 20,000 (the
window not held), a batch that never finishes (a chunk never released, or no finish after the last one),
or its orders sent twice at once (a release racing another).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection

from sendcloud_integration.models import ChunkStatus, PushBatch, PushChunk, SendcloudIntegration
from sendcloud_integration.pipeline import dispatch as dispatch_module
from sendcloud_integration.pipeline import release
from tests.conftest import requires_postgres
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory
from tests.guards.helpers import WAIT, queue
from webshop.models import Shop

pytestmark = pytest.mark.django_db

WINDOW = 3


@pytest.fixture(autouse=True)
def _window(settings: Any) -> None:
    settings.SENDCLOUD_ACCOUNT_WINDOW = WINDOW


class Broker:
    """What the release sends, instead of a real broker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chunks: list[tuple[uuid.UUID, int]] = []
        self.finished: list[uuid.UUID] = []

    def of(self, batch: PushBatch) -> list[int]:
        return [number for batch_id, number in self.chunks if batch_id == batch.pk]


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    sent = Broker()

    def dispatch_batch(batch_id: uuid.UUID, chunk_numbers: Sequence[int]) -> None:
        with sent.lock:
            sent.chunks.extend((batch_id, number) for number in chunk_numbers)

    monkeypatch.setattr(dispatch_module, "dispatch_batch", dispatch_batch)
    monkeypatch.setattr(dispatch_module, "finish_batch", sent.finished.append)
    monkeypatch.setattr(dispatch_module, "start_batch", lambda batch_id: True)
    return sent


def pushed(shop: Shop, orders: int) -> PushBatch:
    return queue(shop, [OrderFactory(shop=shop) for _ in range(orders)], create_label=False, chunk_size=1)


def done(batch: PushBatch, number: int) -> None:
    """A worker finished the chunk, and its task reports it (``process.process_chunk``)."""
    PushChunk.objects.filter(batch=batch, number=number).update(status=ChunkStatus.DONE)
    release.chunk_finished(batch.pk, account=release.account_of(batch.pk))


def second_account() -> Shop:
    other = ShopFactory(slug="other", name="Other")
    SendcloudIntegrationFactory(shop=other, public_key="other-public", integration_id=2002)
    return other


def test_a_batch_releases_only_a_window_of_chunks_and_one_more_per_finished_chunk(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    batch = pushed(shop, 10)

    assert release.start_batch(batch.pk) == WINDOW
    assert broker.of(batch) == [1, 2, 3]
    assert release.start_batch(batch.pk) == 0, "a duplicate start_batch must not widen the window"

    done(batch, 2)
    assert broker.of(batch) == [1, 2, 3, 4]
    unreleased = PushChunk.objects.filter(batch=batch, released_at__isnull=True).count()
    assert unreleased == 10 - 4


def test_a_handed_back_chunk_keeps_its_place_in_the_window(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    """A chunk waiting for its account's budget is still that account's work: nothing more is released."""
    batch = pushed(shop, 5)
    release.start_batch(batch.pk)
    PushChunk.objects.filter(batch=batch, number=1).update(status=ChunkStatus.RUNNING)
    PushChunk.objects.filter(batch=batch, number=1).update(status=ChunkStatus.PENDING)  # handed back

    assert release.release(integration.public_key) == 0
    assert broker.of(batch) == [1, 2, 3]


def test_another_accounts_push_is_released_at_once_however_big_the_first_backlog(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    big = pushed(shop, 12)
    release.start_batch(big.pk)
    small = pushed(second_account(), 2)

    release.start_batch(small.pk)

    assert broker.of(small) == [1, 2]
    assert broker.of(big) == [1, 2, 3], "the big push still has only its window in the broker"


def test_two_shops_on_one_account_share_its_window_oldest_batch_first(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    first = pushed(shop, 2)
    sibling = ShopFactory(slug="sibling", name="Sibling")
    SendcloudIntegrationFactory(shop=sibling, public_key=integration.public_key, integration_id=3003)
    second = pushed(sibling, 2)

    release.start_batch(second.pk)

    assert broker.of(first) == [1, 2]
    assert broker.of(second) == [1]
    done(first, 1)
    assert broker.of(second) == [1, 2]


def test_the_last_chunk_finishes_its_batch_and_only_the_last(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    batch = pushed(shop, 2)
    release.start_batch(batch.pk)

    done(batch, 1)
    assert broker.finished == []
    done(batch, 2)
    assert broker.finished == [batch.pk]


def test_shops_without_an_integration_are_released_too(shop: Shop, broker: Broker) -> None:
    """Their chunks fail at once (the push checked the integration; it was removed since): they must not
    wait in the database forever."""
    integration = SendcloudIntegrationFactory(shop=shop)
    batch = pushed(shop, 2)
    integration.delete()

    assert release.top_up_all() == 2
    assert broker.of(batch) == [1, 2]


def test_the_sweep_tops_every_account_up(shop: Shop, integration: SendcloudIntegration, broker: Broker) -> None:
    """A chain broken by a crash: a chunk done, and its task died before releasing the next."""
    one = pushed(shop, 5)
    two = pushed(second_account(), 5)
    release.start_batch(one.pk)
    PushChunk.objects.filter(batch=one, number__in=[1, 2]).update(status=ChunkStatus.DONE)

    assert release.top_up_all() == 2 + WINDOW
    assert broker.of(one) == [1, 2, 3, 4, 5]
    assert broker.of(two) == [1, 2, 3]


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_chunks_finishing_at_once_never_overfill_the_window(
    shop: Shop, integration: SendcloudIntegration, broker: Broker
) -> None:
    """Eight workers finish a chunk at the same moment: each frees one place, and no more than that is
    released (the account's release is serialised by a row lock)."""
    batch = pushed(shop, 40)
    PushChunk.objects.filter(batch=batch, number__lte=8).update(released_at=batch.created_at)
    PushChunk.objects.filter(batch=batch, number__lte=8).update(status=ChunkStatus.DONE)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            barrier.wait(WAIT)
            release.release(integration.public_key)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)

    assert errors == []
    assert sorted(broker.of(batch)) == [9, 10, 11], "exactly the window, each chunk once"
    in_window = PushChunk.objects.filter(
        batch=batch, released_at__isnull=False, status__in=[ChunkStatus.PENDING, ChunkStatus.RUNNING]
    )
    assert in_window.count() == WINDOW


def test_a_deleted_batch_releases_nothing(shop: Shop, integration: SendcloudIntegration, broker: Broker) -> None:
    """Its start message outlived it (staff deleted the batch): nothing to send, and nothing is claimed."""
    batch = pushed(shop, 2)
    batch_id = batch.pk
    batch.delete()

    assert release.start_batch(batch_id) == 0
    assert broker.chunks == []


# Equivalent mutants `make mutation` leaves alive here (docs/testing.md): ``flat=True`` on the values of
# the lock query (they are thrown away), and ``released_at__isnull=True`` on the release's update, which
# the account's row lock already guarantees for the rows it picked.
