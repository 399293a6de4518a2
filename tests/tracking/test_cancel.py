"""Cancelling labels against the sandbox: 200 cancelled, 202 queued then confirmed by the parcel's status,
409 refused in Sendcloud's words; a cancelled order gets one new label only when pushed again with labels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentParcel, ShipmentState
from sendcloud_integration.push import services
from sendcloud_integration.tracking import cancel, polling
from sendcloud_integration.tracking.errors import TrackingUnavailable
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import run_chunk_until_done
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

CANCEL_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/cancel"


@pytest.fixture
def sandbox(settings: Any, tmp_path: Any) -> Iterator[SandboxServer]:
    config = SandboxConfig(label_delay_seconds=0.0, rate_limits_enabled=False, seed=5)
    server = SandboxServer(port=0, config=config).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 0.05
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 0.2
    try:
        yield server
    finally:
        server.stop()


def labelled_orders(shop: Shop, count: int) -> list[Order]:
    orders = [OrderFactory(shop=shop) for _ in range(count)]
    push(shop, orders)
    return orders


def push(shop: Shop, orders: list[Order], *, create_label: bool = True) -> services.PushResult:
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=create_label, actor=services.Actor.command("test")
    )
    if result.batch_id:
        run_chunk_until_done(PushBatch.objects.get(pk=result.batch_id), deadline_seconds=30, pause=0.05)
    return result


def state_of(order: Order) -> str:
    return OrderShipment.objects.get(order=order).state


def test_an_immediate_cancellation_cancels(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    (order,) = labelled_orders(shop, 1)
    summary = cancel.cancel_labels(shop=shop, order_ids=[order.pk])
    assert [o.order_id for o in summary.cancelled] == [order.pk]
    assert summary.cancelled[0].message == "Shipment has been cancelled"
    shipment = OrderShipment.objects.get(order=order)
    assert shipment.state == ShipmentState.CANCELLED
    assert shipment.cancelled_at is not None
    assert sandbox.snapshot(include_items=False)["cancelled_labels_per_order"] == {str(order.pk): 1}


def test_a_queued_cancellation_waits_for_the_parcels_status(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    (order,) = labelled_orders(shop, 1)
    sandbox.update_config(cancel_confirm_seconds=0.3)
    summary = cancel.cancel_labels(shop=shop, order_ids=[order.pk])
    assert [o.message for o in summary.cancellation_requested] == ["Shipment cancellation has been queued"]
    assert state_of(order) == ShipmentState.CANCEL_REQUESTED
    # The confirmation comes with the parcel's status (here read by the polling fallback).
    time.sleep(0.4)
    settings.SENDCLOUD_TRACKING_POLL_MIN_SECONDS = 0
    ShipmentParcel.objects.update(next_poll_at=None, status_changed_at=None)
    report = polling.poll_parcels()
    assert report.statuses_applied == 1
    assert state_of(order) == ShipmentState.CANCELLED
    assert ShipmentParcel.objects.get(shipment__order=order).status_code == "CANCELLED"


def test_a_refusal_shows_sendclouds_words(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    (order,) = labelled_orders(shop, 1)
    sandbox.update_config(cancel_window_seconds=0.0)
    time.sleep(0.01)
    summary = cancel.cancel_labels(shop=shop, order_ids=[order.pk])
    assert [(o.order_id, o.message) for o in summary.refused] == [
        (order.pk, "The cancellation period for this shipment has expired.")
    ]
    shipment = OrderShipment.objects.get(order=order)
    assert shipment.state == ShipmentState.LABELLED
    assert shipment.cancel_message == "The cancellation period for this shipment has expired."


def test_orders_without_a_label_are_refused_without_asking_sendcloud(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    unpushed = OrderFactory(shop=shop)
    pushed = OrderFactory(shop=shop)
    push(shop, [pushed], create_label=False)
    summary = cancel.cancel_labels(shop=shop, order_ids=[unpushed.pk, pushed.pk, 999_999])
    assert [(o.order_id, o.message) for o in summary.refused] == [
        (unpushed.pk, "it has no label"),
        (pushed.pk, "it has no label"),
        (999_999, "no such order in this shop"),
    ]
    assert not [r for r in sandbox.request_log() if r["route"] == "POST /shipments/{id}/cancel"]


def test_a_cancelled_order_gets_exactly_one_new_label_when_pushed_again_with_labels(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    orders = labelled_orders(shop, 3)
    cancel.cancel_labels(shop=shop, order_ids=[o.pk for o in orders[:2]])

    again = push(shop, orders, create_label=False)  # no label asked for: nothing happens to the cancelled ones
    assert again.retry == []
    assert len(again.skipped) == 3
    assert not OrderShipment.objects.filter(order__in=orders[:2]).exclude(state=ShipmentState.CANCELLED).exists()

    result = push(shop, orders, create_label=True)
    assert sorted(result.retry) == sorted(o.order_number for o in orders[:2])  # classified as retry
    assert [s.split(":")[1].strip() for s in result.skipped] == ["label already created"]
    state = sandbox.snapshot(include_items=False)
    first, second, third = (str(o.pk) for o in orders)
    assert state["labels_per_order"] == {first: 1, second: 1, third: 1}  # one live label each
    assert state["cancelled_labels_per_order"] == {first: 1, second: 1}
    assert state["shipments_per_order"] == {first: 2, second: 2, third: 1}
    for order in orders[:2]:
        shipment = OrderShipment.objects.get(order=order)
        assert shipment.state == ShipmentState.LABELLED
        assert shipment.label_file
        assert ShipmentParcel.objects.filter(shipment=shipment).count() == 1


def test_nothing_buys_a_label_for_a_cancelled_order_on_its_own(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    from sendcloud_integration.pipeline import sweep

    (order,) = labelled_orders(shop, 1)
    cancel.cancel_labels(shop=shop, order_ids=[order.pk])
    sweep.sweep()
    polling.poll_parcels()
    assert sandbox.snapshot(include_items=False)["shipments_per_order"] == {str(order.pk): 1}
    assert state_of(order) == ShipmentState.CANCELLED


def test_a_shop_without_an_integration_cannot_cancel(shop: Shop) -> None:
    with pytest.raises(TrackingUnavailable):
        cancel.cancel_labels(shop=shop, order_ids=[1])


class TestEndpoint:
    def test_the_summary_names_each_outcome(
        self, shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, client_for: APIClient
    ) -> None:
        orders = labelled_orders(shop, 2)
        cancel.cancel_labels(shop=shop, order_ids=[orders[1].pk])
        response = client_for.post(CANCEL_URL, {"order_ids": [orders[0].pk, orders[1].pk]}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["summary"] == {"total_orders": 2, "cancelled": 1, "cancellation_requested": 0, "refused": 1}
        assert body["details"]["cancelled"] == [
            {"order_id": orders[0].pk, "order_number": orders[0].order_number, "message": "Shipment has been cancelled"}
        ]
        assert body["details"]["refused"] == [
            {
                "order_id": orders[1].pk,
                "order_number": orders[1].order_number,
                "reason": "its label is already cancelled",
            }
        ]
        assert body["message"] == "2 order(s): 1 cancelled, 1 refused."

    def test_a_queued_cancellation_is_reported_as_requested(
        self, shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, client_for: APIClient
    ) -> None:
        (order,) = labelled_orders(shop, 1)
        sandbox.update_config(cancel_confirm_seconds=60)
        body = client_for.post(CANCEL_URL, {"order_ids": [order.pk]}, format="json").json()
        assert body["summary"]["cancellation_requested"] == 1
        assert body["details"]["cancellation_requested"][0]["message"] == "Shipment cancellation has been queued"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [({}, "order_ids"), ({"order_ids": []}, "order_ids"), ({"order_ids": list(range(1, 22))}, "order_ids")],
    )
    def test_bad_input_is_422(
        self, integration: SendcloudIntegration, client_for: APIClient, payload: dict[str, Any], field: str
    ) -> None:
        response = client_for.post(CANCEL_URL, payload, format="json")
        assert response.status_code == 422
        assert field in response.json()["errors"]

    def test_no_integration_is_400(self, client_for: APIClient) -> None:
        response = client_for.post(CANCEL_URL, {"order_ids": [1]}, format="json")
        assert response.status_code == 400
        assert "no usable Sendcloud integration" in response.json()["message"]

    def test_without_a_token_it_is_401(self, api_client: APIClient) -> None:
        assert api_client.post(CANCEL_URL, {"order_ids": [1]}, format="json").status_code == 401
