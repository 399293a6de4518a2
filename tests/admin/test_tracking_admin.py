"""Staff pages: the parcel-status filter, the cancel action's confirmation page, the webhook actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from sendcloud_integration.models import OrderShipment, SendcloudIntegration, ShipmentState, WebhookDelivery
from sendcloud_integration.tracking import webhooks
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.admin.conftest import login
from tests.tracking.helpers import labelled_shipment, status_body
from webshop.models import Shop

pytestmark = pytest.mark.django_db

ORDERS = "/admin/webshop/order/"
INTEGRATIONS = "/admin/sendcloud_integration/sendcloudintegration/"
T0 = 1_700_000_000_000


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False)).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    settings.SENDCLOUD_PUBLIC_URL = "https://shop.example"
    try:
        yield server
    finally:
        server.stop()


def deliver(integration: SendcloudIntegration, body: bytes) -> None:
    webhooks.process_delivery(WebhookDelivery.objects.create(integration=integration, body=body).pk)


def test_the_exception_and_delivered_filters(superuser: User, shop: Shop, integration: SendcloudIntegration) -> None:
    delivered = labelled_shipment(integration, parcel_ids=("30000001",), shipment_id="20000001")
    stuck = labelled_shipment(integration, parcel_ids=("30000002",), shipment_id="20000002")
    labelled_shipment(integration, parcel_ids=("30000003",), shipment_id="20000003")
    deliver(integration, status_body("30000001", 11, "Delivered", T0))
    deliver(integration, status_body("30000002", 80, "Unable to deliver", T0))
    client = login(superuser)

    def listed(value: str) -> set[int]:
        response = client.get(ORDERS, {"parcel": value})
        assert response.status_code == 200
        return {order.pk for order in response.context["cl"].result_list}

    assert listed("delivered") == {delivered.order_id}
    assert listed("exception") == {stuck.order_id}
    assert len(listed("on_its_way")) == 2  # the stuck one and the one not heard of yet


def test_an_orders_page_shows_its_parcels_status_and_history(
    superuser: User, shop: Shop, integration: SendcloudIntegration, settings: Any
) -> None:
    settings.SENDCLOUD_BUDGET_ENABLED = False
    shipment = labelled_shipment(integration)
    OrderShipment.objects.filter(pk=shipment.pk).update(return_portal_checked_at="2999-01-01T00:00:00Z")
    deliver(integration, status_body("30000001", 80, "Unable to deliver", T0))
    page = login(superuser).get(f"/admin/webshop/order/{shipment.order_id}/change/").content.decode()
    assert "Unable to deliver" in page
    assert "Webhook" in page


class TestCancelAction:
    def test_the_confirmation_page_asks_first_and_sends_nothing(
        self, superuser: User, shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
    ) -> None:
        shipment = labelled_shipment(integration)
        response = login(superuser).post(ORDERS, {"action": "cancel_labels", "_selected_action": [shipment.order_id]})
        assert response.status_code == 200
        assert "Yes, cancel the labels" in response.content.decode()
        assert response.context["askable"] == 1
        assert not sandbox.request_log()
        assert OrderShipment.objects.get(pk=shipment.pk).state == ShipmentState.LABELLED

    def test_confirming_asks_sendcloud_and_shows_its_words(
        self, superuser: User, shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
    ) -> None:
        shipment = labelled_shipment(integration)
        response = login(superuser).post(
            ORDERS, {"action": "cancel_labels", "_selected_action": [shipment.order_id], "post": "yes"}, follow=True
        )
        texts = [str(m) for m in response.context["messages"]]
        # The sandbox knows no such shipment: its answer is shown, nothing changes.
        assert texts == [f"{shipment.order.order_number}: not cancelled: Sendcloud has no such shipment"]
        assert OrderShipment.objects.get(pk=shipment.pk).state == ShipmentState.LABELLED

    def test_staff_without_the_permission_are_not_offered_it(
        self, shop: Shop, integration: SendcloudIntegration
    ) -> None:
        staff = User.objects.create_user("viewer", password="pw", is_staff=True)
        from django.contrib.auth.models import Permission

        staff.user_permissions.add(Permission.objects.get(codename="view_order"))
        response = login(staff).get(ORDERS)
        assert "cancel_labels" not in response.content.decode()


class TestWebhookActions:
    def test_turning_it_on_sets_our_url_in_sendcloud(
        self, superuser: User, integration: SendcloudIntegration, sandbox: SandboxServer
    ) -> None:
        response = login(superuser).post(
            INTEGRATIONS, {"action": "turn_webhook_on", "_selected_action": [integration.pk]}, follow=True
        )
        url = f"https://shop.example/webhooks/sendcloud/{integration.webhook_token}"
        assert [str(m) for m in response.context["messages"]] == [f"{integration.shop}: the webhook is on at {url}."]
        assert sandbox.app.state.webhook(1001) == (True, url)
        integration.refresh_from_db()
        assert (integration.webhook_active, integration.webhook_url) == (True, url)
        assert integration.webhook_configured_at is not None

    def test_turning_it_off(self, superuser: User, integration: SendcloudIntegration, sandbox: SandboxServer) -> None:
        client = login(superuser)
        client.post(INTEGRATIONS, {"action": "turn_webhook_on", "_selected_action": [integration.pk]})
        client.post(INTEGRATIONS, {"action": "turn_webhook_off", "_selected_action": [integration.pk]})
        assert sandbox.app.state.webhook(1001)[0] is False
        integration.refresh_from_db()
        assert integration.webhook_active is False

    def test_a_url_set_elsewhere_is_reported(
        self, superuser: User, integration: SendcloudIntegration, sandbox: SandboxServer
    ) -> None:
        sandbox.app.state.set_webhook(1001, active=True, url="https://elsewhere.example/hook")
        response = login(superuser).post(
            INTEGRATIONS, {"action": "read_webhook", "_selected_action": [integration.pk]}, follow=True
        )
        (text,) = [str(m) for m in response.context["messages"]]
        assert text.endswith("at https://elsewhere.example/hook — not this service's receiver URL.")

    def test_without_a_public_url_it_says_what_to_set(
        self, superuser: User, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
    ) -> None:
        settings.SENDCLOUD_PUBLIC_URL = ""
        response = login(superuser).post(
            INTEGRATIONS, {"action": "turn_webhook_on", "_selected_action": [integration.pk]}, follow=True
        )
        (text,) = [str(m) for m in response.context["messages"]]
        assert text.startswith("Set SENDCLOUD_PUBLIC_URL")
        assert sandbox.app.state.webhook(1001) == (False, None)
