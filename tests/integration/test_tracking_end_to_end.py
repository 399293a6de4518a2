"""Labelled orders → the sandbox's signed webhooks, shuffled, duplicated, delayed and forged → every parcel
at its true final status, each event once in its history. Through gunicorn, a worker and beat."""

from __future__ import annotations

from typing import Any

import pytest

from sendcloud_integration.models import BatchStatus, ParcelEvent, ShipmentParcel, WebhookDelivery
from sendcloud_integration.tracking import setup
from sendcloud_sandbox.tracking import timeline
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack, wait_for
from tests.integration.helpers import push, wait_until_finished
from webshop.demo import make_orders

pytestmark = [requires_stack, pytest.mark.integration]

#: Two carriers' stories: the first hundred parcels are delivered, the second hundred cannot be.
DELIVERED = [[0.2, 3], [0.4, 5], [0.6, 12], [0.8, 11]]
UNDELIVERABLE = [[0.2, 3], [0.4, 8], [0.6, 80]]


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {
        "SENDCLOUD_TRACKING_SWEEP_SECONDS": "1",
        "SENDCLOUD_WEBHOOK_RETRY_SECONDS": "30",
        "SENDCLOUD_WEBHOOK_MAX_ATTEMPTS": "60",
    }


def test_shuffled_and_duplicated_webhooks_end_every_parcel_at_its_true_status(stack: Stack, settings: Any) -> None:
    settings.SENDCLOUD_API_BASE_URL = stack.sandbox.url
    settings.SENDCLOUD_PUBLIC_URL = stack.web_url
    stack.worker(concurrency=2)
    stack.beat()
    shop = ShopFactory(slug="tracking")
    integration = SendcloudIntegrationFactory(shop=shop, shipping_option_code="")
    token = issue_token(shop)
    state = setup.set_webhook(integration, active=True)
    assert state.active
    assert state.ours
    stack.sandbox.update_config(
        webhook_duplicate_rate=0.5,
        webhook_reorder=True,
        webhook_max_delay_seconds=1.0,
        webhook_bad_signature_rate=0.1,
    )

    for progression in (DELIVERED, UNDELIVERABLE):  # the labels made meanwhile take this progression
        stack.sandbox.update_config(tracking_progression=progression)
        orders = make_orders(shop, 100)
        batch_id = push(stack, token, [o.pk for o in orders], create_label=True)["batch"]["id"]
        assert wait_until_finished(batch_id, timeout=120).status == BatchStatus.COMPLETED

    shipments = {s.id: s for s in stack.sandbox.app.state.list_shipments(integration_ids=[1001], now=0)}
    assert len(shipments) == 200
    last_step = max(timeline(s)[-1].at for s in shipments.values())
    wait_for(
        lambda: (
            stack.sandbox.app.clock() > last_step
            and (c := stack.sandbox.snapshot(include_items=False)["webhooks"])["events_delivered"] == c["events"]
            and c["in_flight"] == 0
            and not WebhookDelivery.objects.filter(processed_at__isnull=True).exists()
        ),
        timeout=90,
        interval=0.5,
        what="every webhook delivered and applied",
    )

    counters = stack.sandbox.snapshot(include_items=False)["webhooks"]
    assert counters["forged"] > 0  # refused with a 401 and never stored (below)
    assert counters["sent"] > counters["events"] + counters["forged"]  # duplicates were sent too
    assert WebhookDelivery.objects.count() == counters["sent"] - counters["forged"] - counters["refused"]
    for shipment in shipments.values():
        steps = timeline(shipment)[1:]  # the first (ANNOUNCING at creation) is no change: never sent
        for sandbox_parcel in shipment.parcels:
            parcel = ShipmentParcel.objects.get(sendcloud_parcel_id=str(sandbox_parcel.id))
            assert parcel.status_id == steps[-1].status.id, (shipment.id, parcel.status_message)
            history = list(
                ParcelEvent.objects.filter(sendcloud_parcel_id=parcel.sendcloud_parcel_id)
                .order_by("occurred_at")
                .values_list("status_id", flat=True)
            )
            assert history == [step.status.id for step in steps]  # each event once, in Sendcloud's order
    delivered = ShipmentParcel.objects.filter(delivered_at__isnull=False).count()
    undeliverable = ShipmentParcel.objects.filter(status_id=80, exception_at__isnull=False).count()
    assert (delivered, undeliverable) == (100, 100)
    assert stack.sandbox.snapshot(include_items=False)["duplicate_labels"] == 0
