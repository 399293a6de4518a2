"""Hostile or broken input gets the documented error answer, never a 500 (issue: hardening).

Each case was a 500 before: a body nested thousands of levels deep (``RecursionError``), a body of
tens of MiB (``RequestDataTooBig``), and an admin URL whose object id is not a number.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentState
from tests.admin.conftest import login
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

BATCH_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/00000000-0000-0000-0000-000000000000"


def assert_documented_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] is True
    assert isinstance(body["message"], str)
    assert body["message"]
    assert response["X-RateLimit-Limit"]
    assert response["X-RateLimit-Remaining"]
    assert response["X-Request-ID"]
    return body


@pytest.mark.usefixtures("integration")
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_a_deeply_nested_body_is_a_400(client_for: APIClient, depth: int) -> None:
    body = '{"order_ids": ' + "[" * depth + "]" * depth + ', "create_label": false}'
    response = client_for.post(PUSH_URL, data=body, content_type="application/json")
    message = assert_documented_error(response, 400)["message"]
    assert "nested" in message
    assert not PushBatch.objects.exists()


@pytest.mark.usefixtures("integration")
def test_a_body_over_the_size_limit_is_a_413(client_for: APIClient, settings: Any) -> None:
    body = '{"create_label": false, "order_ids": [' + ",".join(["1"] * 15_000_000) + "]}"
    response = client_for.post(PUSH_URL, data=body, content_type="application/json")
    message = assert_documented_error(response, 413)["message"]
    assert f"larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024):g} MiB" in message
    assert not PushBatch.objects.exists()


@pytest.mark.usefixtures("integration")
def test_a_body_over_the_limit_without_a_content_length_is_a_413_too(client_for: APIClient) -> None:
    response = client_for.generic(
        "POST", PUSH_URL, data=b"[" + b"1," * 2_000_000 + b"1]", content_type="application/json", HTTP_CONTENT_LENGTH=""
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"] is True


def test_a_non_numeric_admin_object_id_is_a_404(integration: SendcloudIntegration) -> None:
    client: Client = login(User.objects.create_superuser("hostile", "hostile@example.com", "a-long-password-1"))
    verify = "/admin/sendcloud_integration/sendcloudintegration/abc/verify/"
    assert client.post(verify).status_code == 404
    assert (
        client.post(f"/admin/sendcloud_integration/sendcloudintegration/{integration.pk + 999}/verify/").status_code
        == 404
    )
    # The labels route only matches a uuid; anything else is the admin's own "no such page" handling.
    assert client.get("/admin/sendcloud_integration/pushbatch/not-a-uuid/labels/").status_code < 500


def test_a_tracking_url_that_is_not_a_web_link_is_never_an_admin_link(integration: SendcloudIntegration) -> None:
    order = OrderFactory(shop=integration.shop)
    OrderShipment.objects.create(
        order=order,
        shop=order.shop,
        state=ShipmentState.LABELLED,
        tracking_number="TRK-1",
        tracking_url="javascript:alert(document.cookie)",
    )
    client: Client = login(User.objects.create_superuser("hostile2", "h2@example.com", "a-long-password-1"))
    page = client.get("/admin/webshop/order/").content.decode()
    assert "TRK-1" in page
    assert "javascript:" not in page
