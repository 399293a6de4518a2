"""``GET …/orders/<id>/sendcloud/shipment``: the push state, each parcel's status, the history, the return link."""

from __future__ import annotations

import pytest
import responses
from rest_framework.test import APIClient

from sendcloud_integration.models import SendcloudIntegration, WebhookDelivery
from sendcloud_integration.tracking import webhooks
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory
from tests.tracking.helpers import labelled_shipment, status_body
from webshop.models import Shop

pytestmark = pytest.mark.django_db

URL = "/api/services/webshop/v1/orders/{id}/sendcloud/shipment"
PORTAL = "https://sendcloud.test/api/v3/shipments/20000001/return-portal-url"
T0 = 1_700_000_000_000


def deliver(integration: SendcloudIntegration, body: bytes) -> None:
    webhooks.process_delivery(WebhookDelivery.objects.create(integration=integration, body=body).pk)


@responses.activate
def test_the_parcel_status_history_and_return_link(
    shop: Shop, integration: SendcloudIntegration, client_for: APIClient
) -> None:
    responses.get(PORTAL, json={"data": {"url": "https://returns.example/initiate/1"}})
    shipment = labelled_shipment(integration)
    deliver(integration, status_body("30000001", 11, "Delivered", T0 + 2000))
    deliver(integration, status_body("30000001", 3, "En route to sorting center", T0 + 1000))

    response = client_for.get(URL.format(id=shipment.order_id))
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "labelled"
    assert body["return_portal_url"] == "https://returns.example/initiate/1"
    (parcel,) = body["parcels"]
    assert parcel["status"] == {
        "id": 11,
        "code": "DELIVERED",
        "message": "Delivered",
        "kind": "delivered",
        "changed_at": "2023-11-14T22:13:22+00:00",
    }
    assert parcel["delivered_at"] == "2023-11-14T22:13:22+00:00"
    assert [(e["status_id"], e["applied"], e["source"]) for e in body["history"]] == [
        (3, False, "webhook"),
        (11, True, "webhook"),
    ]
    # The link is read once: a second view asks Sendcloud nothing.
    client_for.get(URL.format(id=shipment.order_id))
    assert len(responses.calls) == 1


@responses.activate
def test_no_return_portal_reads_as_null(shop: Shop, integration: SendcloudIntegration, client_for: APIClient) -> None:
    responses.get(PORTAL, status=404, json={"errors": [{"status": "404", "code": "not_found", "detail": "No portal"}]})
    shipment = labelled_shipment(integration)
    body = client_for.get(URL.format(id=shipment.order_id)).json()
    assert body["return_portal_url"] is None
    assert body["parcels"][0]["status"]["kind"] == "unknown"


def test_an_order_never_pushed_has_no_shipment(
    shop: Shop, integration: SendcloudIntegration, client_for: APIClient
) -> None:
    order = OrderFactory(shop=shop)
    body = client_for.get(URL.format(id=order.pk)).json()
    assert (body["state"], body["parcels"], body["history"]) == (None, [], [])


@pytest.mark.parametrize("order_id", ["999999", "abc", "1" * 25])
def test_an_unknown_or_ill_formed_id_is_404(
    integration: SendcloudIntegration, client_for: APIClient, order_id: str
) -> None:
    response = client_for.get(URL.format(id=order_id))
    assert response.status_code == 404
    assert response.json()["message"] == "No such order."


def test_another_shops_order_is_404(integration: SendcloudIntegration, client_for: APIClient) -> None:
    other = SendcloudIntegrationFactory(shop=ShopFactory(slug="other"))
    shipment = labelled_shipment(other)
    assert client_for.get(URL.format(id=shipment.order_id)).status_code == 404


def test_without_a_token_it_is_401(api_client: APIClient) -> None:
    assert api_client.get(URL.format(id=1)).status_code == 401


def test_the_batch_api_shows_each_parcels_status(
    shop: Shop, integration: SendcloudIntegration, client_for: APIClient
) -> None:
    from sendcloud_integration.models import OrderShipment, PushBatch

    shipment = labelled_shipment(integration)
    batch = PushBatch.objects.create(shop=shop, started_by_kind="command", create_label=True)
    OrderShipment.objects.filter(pk=shipment.pk).update(batch=batch, chunk_number=1)
    deliver(integration, status_body("30000001", 80, "Unable to deliver", T0))
    url = f"/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch.pk}"
    (row,) = client_for.get(url).json()["orders"]["results"]
    (parcel,) = row["parcels"]
    assert (parcel["status"], parcel["status_kind"], parcel["delivered_at"]) == (
        "Unable to deliver",
        "exception",
        None,
    )
