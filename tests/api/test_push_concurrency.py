"""Concurrent pushes on real PostgreSQL: row locks make each order queued exactly once."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState
from tests.conftest import PUSH_URL, requires_postgres
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PUSHES = 20


def test_twenty_concurrent_overlapping_pushes_queue_each_order_once(settings: Any) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    shop = ShopFactory(slug="race")
    SendcloudIntegrationFactory(shop=shop)
    orders = [OrderFactory(shop=shop) for _ in range(60)]
    tokens = [issue_token(shop) for _ in range(PUSHES)]
    rng = random.Random(7)
    # Each push asks for a random half of the orders, in random order: heavy overlap, varied lock order.
    requests = [rng.sample([o.pk for o in orders], 30) for _ in range(PUSHES)]
    barrier = threading.Barrier(PUSHES)
    answers: list[dict[str, Any]] = [{} for _ in range(PUSHES)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[index]}")
        try:
            barrier.wait(timeout=30)
            response = client.post(PUSH_URL, {"create_label": False, "order_ids": requests[index]}, format="json")
            assert response.status_code == 200, response.content
            answers[index] = response.json()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch"):
        threads = [threading.Thread(target=run, args=(i,)) for i in range(PUSHES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors

    queued = Counter(q["id"] for answer in answers for q in answer["details"]["queued_orders"])
    requested = {pk for ids in requests for pk in ids}
    assert set(queued) == requested, "every requested order was queued by some push"
    assert max(queued.values()) == 1, "no order was queued twice"
    for answer in answers:
        skipped = answer["details"]["skipped_orders"]
        assert all("already queued in batch" in line for line in skipped)
        assert answer["summary"]["queued_orders"] + answer["summary"]["skipped_orders"] == 30
    assert OrderShipment.objects.filter(state=ShipmentState.QUEUED).count() == len(requested)
    assert sum(PushBatch.objects.values_list("queued_orders", flat=True)) == len(requested)
    # Each shipment row points at the batch whose answer listed it.
    batch_of = {q["id"]: a["batch"]["id"] for a in answers for q in a["details"]["queued_orders"]}
    for order_id, batch_id in OrderShipment.objects.values_list("order_id", "batch_id"):
        assert batch_of[order_id] == str(batch_id)


def test_concurrent_pushes_of_another_shop_do_not_block_or_leak() -> None:
    shop_a, shop_b = ShopFactory(slug="a"), ShopFactory(slug="b")
    SendcloudIntegrationFactory(shop=shop_a)
    SendcloudIntegrationFactory(shop=shop_b)
    order_b = OrderFactory(shop=shop_b)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop_a)}")
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch"):
        response = client.post(PUSH_URL, {"create_label": False, "order_ids": [order_b.pk]}, format="json")
    assert response.status_code == 404
    assert not OrderShipment.objects.exists()
