"""A chunk caught by a Redis outage (the request budget lives in Redis) keeps its orders' attempts.

The outage is nobody's failure and nothing was sent for the step that needed Redis, so the chunk is handed
back without counting an attempt: however long Redis is away, its orders are pushed once it is back
rather than failed with "Gave up after N attempts".
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
import responses
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sendcloud_integration.models import ChunkStatus, OrderShipment, PushBatch, PushChunk, SendcloudIntegration
from sendcloud_integration.models import ShipmentState as S
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud import budget
from tests.factories import OrderFactory
from webshop.models import Shop

pytestmark = pytest.mark.django_db

ORDERS_URL = "https://sendcloud.test/api/v3/orders"


def accept_all(request: Any) -> tuple[int, dict[str, str], str]:
    sent = json.loads(request.body)
    data = [{"id": 7000 + i, "order_id": o["order_id"], "order_number": o["order_number"]} for i, o in enumerate(sent)]
    return 201, {}, json.dumps({"data": data})


@pytest.mark.parametrize(
    "outage",
    [
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        RedisTimeoutError("Timeout reading from socket"),
        BusyLoadingError("Redis is loading the dataset in memory"),
    ],
    ids=["refused", "hung", "loading"],
)
@responses.activate
def test_an_outage_longer_than_every_attempt_still_pushes_the_orders_afterwards(
    shop: Shop, integration: SendcloudIntegration, settings: Any, outage: Exception
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 2
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=False, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)

    with mock.patch.object(budget, "acquire", side_effect=outage):
        for _ in range(settings.SENDCLOUD_MAX_ATTEMPTS + 1):
            outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
            assert outcome.retry_in is not None, "handed back to be tried again"
            assert outcome.counts_attempt is False
            assert set(OrderShipment.objects.filter(batch=batch).values_list("state", flat=True)) == {S.QUEUED}
    assert len(responses.calls) == 0
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 0)

    # Redis is back.
    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert outcome == processing.ChunkOutcome(pushed=3)
    assert set(OrderShipment.objects.filter(batch=batch).values_list("state", flat=True)) == {S.PUSHED}
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.DONE
