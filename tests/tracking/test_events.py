"""Applying deliveries: the newest status wins whatever the order, a duplicate changes nothing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from sendcloud_integration.models import (
    OrderShipment,
    ParcelEvent,
    SendcloudIntegration,
    ShipmentParcel,
    ShipmentState,
    WebhookDelivery,
)
from sendcloud_integration.tracking import webhooks
from tests.tracking.helpers import labelled_shipment, status_body

T0 = 1_700_000_000_000  # Sendcloud's timestamps are unix milliseconds


def deliver(integration: SendcloudIntegration, body: bytes) -> str:
    delivery = WebhookDelivery.objects.create(integration=integration, body=body)
    return webhooks.process_delivery(delivery.pk)


@pytest.mark.django_db
def test_a_status_becomes_the_parcels_current_status(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    assert deliver(integration, status_body("30000001", 3, "En route to sorting center", T0)) == "applied"
    parcel = ShipmentParcel.objects.get(shipment=shipment)
    assert (parcel.status_id, parcel.status_code, parcel.status_message) == (
        3,
        "EN_ROUTE_TO_SORTING_CENTER",
        "En route to sorting center",
    )
    assert parcel.status_changed_at == datetime.fromtimestamp(T0 / 1000, tz=UTC)
    assert parcel.delivered_at is None
    assert parcel.next_poll_at is not None


@pytest.mark.django_db
def test_delivered_sets_the_delivered_time_and_stops_polling(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    deliver(integration, status_body("30000001", 11, "Delivered", T0))
    parcel = ShipmentParcel.objects.get(shipment=shipment)
    assert parcel.delivered_at == datetime.fromtimestamp(T0 / 1000, tz=UTC)
    assert parcel.next_poll_at is None
    assert OrderShipment.objects.get(pk=shipment.pk).state == ShipmentState.LABELLED  # the push states are apart


@pytest.mark.django_db
def test_an_exception_sets_the_exception_time(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    deliver(integration, status_body("30000001", 80, "Unable to deliver", T0))
    assert ShipmentParcel.objects.get(shipment=shipment).exception_at is not None


@pytest.mark.django_db
def test_an_older_event_is_recorded_but_does_not_move_the_status_back(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    deliver(integration, status_body("30000001", 11, "Delivered", T0 + 2000))
    outcome = deliver(integration, status_body("30000001", 3, "En route to sorting center", T0 + 1000))
    assert outcome == "recorded: older than the status already applied"
    parcel = ShipmentParcel.objects.get(shipment=shipment)
    assert parcel.status_id == 11
    events = list(ParcelEvent.objects.filter(shipment=shipment).values_list("status_id", "applied"))
    assert events == [(3, False), (11, True)]  # the history is in Sendcloud's order, both kept


@pytest.mark.django_db
def test_a_duplicate_delivery_changes_nothing(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    body = status_body("30000001", 3, "En route to sorting center", T0)
    deliver(integration, body)
    deliver(integration, status_body("30000001", 11, "Delivered", T0 + 1000))
    assert deliver(integration, body) == "duplicate: already recorded"
    assert ParcelEvent.objects.filter(shipment=shipment).count() == 2
    assert ShipmentParcel.objects.get(shipment=shipment).status_id == 11


@pytest.mark.django_db
def test_a_delivery_is_processed_once(integration: SendcloudIntegration) -> None:
    labelled_shipment(integration)
    delivery = WebhookDelivery.objects.create(
        integration=integration, body=status_body("30000001", 3, "En route to sorting center", T0)
    )
    assert webhooks.process_delivery(delivery.pk) == "applied"
    assert webhooks.process_delivery(delivery.pk) == "already processed, or being processed"
    delivery.refresh_from_db()
    assert delivery.processed_at is not None
    assert delivery.attempts == 1
    assert delivery.outcome == "applied"


@pytest.mark.django_db
def test_an_unknown_parcel_waits_then_is_recorded_as_unknown(
    integration: SendcloudIntegration, settings: object
) -> None:
    settings.SENDCLOUD_WEBHOOK_MAX_ATTEMPTS = 2  # type: ignore[attr-defined]
    delivery = WebhookDelivery.objects.create(integration=integration, body=status_body("39999999", 11, "x", T0))
    assert webhooks.process_delivery(delivery.pk) == "unknown parcel"
    delivery.refresh_from_db()
    assert delivery.processed_at is None  # the label phase may store the parcel yet: tried again
    webhooks.process_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.processed_at is not None
    assert delivery.attempts == 2


@pytest.mark.django_db
def test_a_parcel_stored_after_its_webhook_gets_the_status(integration: SendcloudIntegration) -> None:
    delivery = WebhookDelivery.objects.create(integration=integration, body=status_body("30000001", 1000, "Ready", T0))
    assert webhooks.process_delivery(delivery.pk) == "unknown parcel"
    shipment = labelled_shipment(integration)
    assert webhooks.process_delivery(delivery.pk) == "applied"
    assert ShipmentParcel.objects.get(shipment=shipment).status_id == 1000


@pytest.mark.django_db
def test_another_shops_parcel_is_not_touched(integration: SendcloudIntegration) -> None:
    from tests.factories import SendcloudIntegrationFactory, ShopFactory

    other = SendcloudIntegrationFactory(shop=ShopFactory(slug="other"))
    shipment = labelled_shipment(integration)
    assert deliver(other, status_body("30000001", 11, "Delivered", T0)) == "unknown parcel"
    assert ShipmentParcel.objects.get(shipment=shipment).status_id is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"timestamp": 1}', b'{"action": "parcel_status_changed", "timestamp": 1}'],
)
def test_an_unreadable_body_is_recorded_as_such(integration: SendcloudIntegration, body: bytes) -> None:
    assert deliver(integration, body).startswith("unreadable")
    assert WebhookDelivery.objects.get().processed_at is not None


@pytest.mark.django_db
def test_integration_events_are_ignored(integration: SendcloudIntegration) -> None:
    body = json.dumps({"action": "integration_updated", "timestamp": T0, "integration": {"id": 1001}}).encode()
    assert deliver(integration, body) == "ignored: integration_updated"


@pytest.mark.django_db
def test_a_return_is_recorded_in_the_shipments_history_once(integration: SendcloudIntegration) -> None:
    shipment = labelled_shipment(integration)
    body = json.dumps(
        {
            "action": "return_created",
            "timestamp": T0,
            "data": {"id": 42, "order_number": shipment.order.order_number, "return_reason_id": 3, "items": []},
        }
    ).encode()
    assert deliver(integration, body) == "applied"
    assert deliver(integration, body) == "duplicate: already recorded"
    event = ParcelEvent.objects.get(shipment=shipment)
    assert (event.action, event.data["id"], event.data["return_reason_id"]) == ("return_created", 42, 3)


@pytest.mark.django_db(transaction=True)
def test_two_workers_applying_out_of_order_end_at_the_newest(integration: SendcloudIntegration) -> None:
    """Each event in its own thread and connection, released together: the newer one always wins."""
    for round_number in range(10):
        shipment = labelled_shipment(
            integration, parcel_ids=(str(31000000 + round_number),), shipment_id=str(21000000 + round_number)
        )
        parcel_id = str(31000000 + round_number)
        bodies = [
            status_body(parcel_id, 11, "Delivered", T0 + 3000),
            status_body(parcel_id, 3, "En route to sorting center", T0 + 1000),
            status_body(parcel_id, 12, "Awaiting customer pickup", T0 + 2000),
        ]
        ids = [WebhookDelivery.objects.create(integration=integration, body=b).pk for b in bodies]
        barrier = threading.Barrier(len(ids))
        errors: list[BaseException] = []

        def run(delivery_id: int, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                webhooks.process_delivery(delivery_id)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert ShipmentParcel.objects.get(shipment=shipment).status_id == 11
        assert ParcelEvent.objects.filter(shipment=shipment).count() == 3


@pytest.mark.django_db
def test_the_sweep_resends_only_deliveries_without_a_message_on_its_way(
    integration: SendcloudIntegration, monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.SENDCLOUD_WEBHOOK_RETRY_SECONDS = 60  # type: ignore[attr-defined]
    body = status_body("30000001", 11, "Delivered", T0)
    not_taken = WebhookDelivery.objects.create(integration=integration, body=body, queued_at=None)
    queued = WebhookDelivery.objects.create(integration=integration, body=body)
    lost = WebhookDelivery.objects.create(
        integration=integration, body=body, queued_at=timezone.now() - timedelta(seconds=120)
    )
    WebhookDelivery.objects.create(integration=integration, body=body, queued_at=None, processed_at=timezone.now())
    sent: list[int] = []
    monkeypatch.setattr(webhooks, "send", lambda delivery_id: sent.append(delivery_id) or True)

    assert webhooks.resend_stale() == 2
    assert sorted(sent) == sorted([not_taken.pk, lost.pk])
    assert queued.pk not in sent
    # Sent again just now: not again at the next sweep.
    assert webhooks.resend_stale() == 0
