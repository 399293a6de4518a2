"""Push → chord → every order in Sendcloud → batch completed, through real processes."""

from __future__ import annotations

import pytest
import requests

from sendcloud_integration.models import BatchStatus, OrderShipment, PushChunk, ShipmentState
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack
from tests.integration.helpers import push, wait_until_finished
from webshop.demo import make_orders

pytestmark = [requires_stack, pytest.mark.integration]


def test_push_reaches_sendcloud_and_the_chord_finishes_the_batch(stack: Stack) -> None:
    stack.worker()
    shop = ShopFactory(slug="e2e")
    SendcloudIntegrationFactory(shop=shop, shipping_option_code="")
    token = issue_token(shop)
    orders = make_orders(shop, 250)

    answer = push(stack, token, [o.pk for o in orders])

    assert answer["summary"]["queued_orders"] == 250
    assert answer["total_chunks"] == 3
    batch = wait_until_finished(answer["batch"]["id"], timeout=90)
    assert batch.status == BatchStatus.COMPLETED
    assert (batch.pushed_count, batch.failed_count, batch.chunks_done) == (250, 0, 3)
    assert set(PushChunk.objects.filter(batch=batch).values_list("status", flat=True)) == {"done"}
    assert OrderShipment.objects.filter(batch=batch, state=ShipmentState.PUSHED).count() == 250
    assert not OrderShipment.objects.filter(batch=batch, sendcloud_order_id="").exists()
    state = stack.sandbox.snapshot(include_items=False)
    assert state["orders"] == {"count": 250, "upserts": 250}
    assert state["duplicate_labels"] == 0
    upserts = [r for r in stack.sandbox.request_log() if r["method"] == "POST" and r["path"].endswith("/orders")]
    assert len(upserts) == 3  # one request per chunk, not one per order

    status = requests.get(answer["batch"]["status_url"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert status.headers["X-RateLimit-Limit"] == "1000"
