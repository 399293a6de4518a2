"""A worker killed (SIGKILL) while it applies a backlog of webhook deliveries: nothing is lost, nothing is
applied twice. Through gunicorn, real Celery workers and beat. The killed worker's unacknowledged messages
come back from the broker only after its visibility timeout and kombu's restore sweep (minutes); the
tracking sweep re-sends the stored deliveries whose message is overdue, which is what recovers them here."""

from __future__ import annotations

import json
import random

import pytest
import requests

from sendcloud_integration.models import ParcelEvent, ShipmentParcel, WebhookDelivery
from sendcloud_integration.tracking.signatures import sign
from tests.factories import SendcloudIntegrationFactory, ShopFactory
from tests.integration.conftest import Stack, requires_stack, wait_for
from tests.tracking.helpers import labelled_shipment

pytestmark = [requires_stack, pytest.mark.integration]

STEPS = (3, 5, 12, 11)


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {"SENDCLOUD_TRACKING_SWEEP_SECONDS": "1", "SENDCLOUD_WEBHOOK_RETRY_SECONDS": "5"}


def test_a_killed_worker_loses_no_delivery(stack: Stack) -> None:
    integration = SendcloudIntegrationFactory(shop=ShopFactory(slug="crash"))
    parcels = [
        labelled_shipment(integration, parcel_ids=(str(32000000 + n),), shipment_id=str(22000000 + n))
        for n in range(60)
    ]
    bodies = [
        json.dumps(
            {
                "action": "parcel_status_changed",
                "timestamp": 1_700_000_000_000 + step * 1000,
                "parcel": {"id": 32000000 + n, "status": {"id": status, "message": f"status {status}"}},
            }
        ).encode()
        for n in range(len(parcels))
        for step, status in enumerate(STEPS)
    ]
    random.Random(3).shuffle(bodies)
    url = f"{stack.web_url}/webhooks/sendcloud/{integration.webhook_token}"
    with requests.Session() as session:
        for body in bodies:
            answer = session.post(url, data=body, headers={"Sendcloud-Signature": sign(body, "sandbox-secret")})
            assert answer.status_code == 200
    assert WebhookDelivery.objects.count() == len(bodies)  # all stored before any worker runs

    first = stack.worker("first", concurrency=2)
    wait_for(lambda: WebhookDelivery.objects.filter(processed_at__isnull=False).count() >= 40, timeout=60)
    first.kill()  # SIGKILL, mid-backlog
    left = WebhookDelivery.objects.filter(processed_at__isnull=True).count()
    assert left > 0, "the worker finished before it was killed: the test proves nothing"

    stack.worker("second", concurrency=2)
    stack.beat()
    wait_for(
        lambda: not WebhookDelivery.objects.filter(processed_at__isnull=True).exists(),
        timeout=90,
        what="every delivery applied after the kill",
    )
    assert ParcelEvent.objects.count() == len(bodies)  # each event once
    assert set(ShipmentParcel.objects.values_list("status_id", flat=True)) == {11}  # each at its newest
