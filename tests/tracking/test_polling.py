"""The polling fallback: due parcels of integrations without a webhook, 100 a GET, less often with age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.utils import timezone

from sendcloud_integration.models import SendcloudIntegration, ShipmentParcel
from sendcloud_integration.tracking import events, polling
from tests.factories import OrderFactory
from tests.tracking.helpers import labelled_shipment

pytestmark = pytest.mark.django_db

SHIPMENTS = "https://sendcloud.test/api/v3/shipments"


def answer_with(code: str, message: str) -> Any:
    """A ``GET /v3/shipments?ids=…`` answer giving every asked parcel the same status."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        import json

        ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        data = [{"id": f"s{i}", "parcels": [{"id": int(i), "status": {"code": code, "message": message}}]} for i in ids]
        return 200, {}, json.dumps({"data": data})

    return callback


def due(integration: SendcloudIntegration, count: int) -> list[ShipmentParcel]:
    past = timezone.now() - timedelta(hours=1)
    for n in range(count):
        labelled_shipment(integration, parcel_ids=(str(31000000 + n),), shipment_id=str(21000000 + n))
    ShipmentParcel.objects.update(next_poll_at=past)
    return list(ShipmentParcel.objects.all())


@responses.activate
def test_due_parcels_are_read_100_a_request(integration: SendcloudIntegration) -> None:
    responses.add_callback(responses.GET, SHIPMENTS, callback=answer_with("DELIVERED", "Delivered"))
    due(integration, 150)
    report = polling.poll_parcels()
    assert (report.requests, report.parcels_read, report.statuses_applied) == (2, 150, 150)
    assert ShipmentParcel.objects.filter(status_id=11, delivered_at__isnull=False, next_poll_at=None).count() == 150
    # Delivered: never read again.
    assert polling.poll_parcels().requests == 0


@responses.activate
def test_an_unchanged_status_is_not_recorded_again_and_is_read_later(integration: SendcloudIntegration) -> None:
    responses.add_callback(responses.GET, SHIPMENTS, callback=answer_with("READY_TO_SEND", "Ready to send"))
    (parcel,) = due(integration, 1)
    polling.poll_parcels()
    ShipmentParcel.objects.update(next_poll_at=timezone.now() - timedelta(seconds=1))
    polling.poll_parcels()
    parcel.refresh_from_db()
    assert parcel.status_code == "READY_TO_SEND"
    assert parcel.shipment.parcel_events.count() == 1
    assert parcel.next_poll_at is not None
    assert parcel.next_poll_at > timezone.now()


@responses.activate
def test_integrations_with_a_webhook_are_not_polled(integration: SendcloudIntegration) -> None:
    SendcloudIntegration.objects.filter(pk=integration.pk).update(webhook_active=True)
    due(integration, 3)
    assert polling.poll_parcels().requests == 0
    assert not responses.calls


@responses.activate
def test_a_spent_budget_leaves_the_rest_for_later(integration: SendcloudIntegration, settings: Any) -> None:
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.SENDCLOUD_SAFE_PER_MINUTE = 1
    settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS = 0
    responses.add_callback(responses.GET, SHIPMENTS, callback=answer_with("DELIVERED", "Delivered"))
    due(integration, 150)
    report = polling.poll_parcels()
    assert (report.requests, report.deferred) == (1, 50)


def test_a_parcel_is_read_less_often_as_it_ages(settings: Any) -> None:
    settings.SENDCLOUD_TRACKING_POLL_MIN_SECONDS = 1800
    settings.SENDCLOUD_TRACKING_POLL_MAX_SECONDS = 86400
    now = timezone.now()
    delays = [events.poll_delay(now - timedelta(hours=h), now=now).total_seconds() for h in (0, 4, 48, 24 * 30)]
    assert delays == [1800, 3600, 43200, 86400]


def test_an_order_without_a_parcel_is_not_polled(integration: SendcloudIntegration) -> None:
    OrderFactory(shop=integration.shop)
    assert polling.due_parcels(integration, limit=10) == []
