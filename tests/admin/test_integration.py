"""The Sendcloud integration in admin: the secret is write-only everywhere, and the connection check."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import responses
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from sendcloud_integration.models import SendcloudApiCall, SendcloudIntegration
from tests.admin.conftest import SECRET, grant, login, make_batch, ship
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory, issue_token
from webshop.models import Shop

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/sendcloud_integration/sendcloudintegration/"
INTEGRATIONS_URL = f"{settings.SENDCLOUD_API_BASE_URL}/v3/integrations"


def change_url(integration: SendcloudIntegration) -> str:
    return reverse("admin:sendcloud_integration_sendcloudintegration_change", args=[integration.pk])


def verify_url(integration: SendcloudIntegration) -> str:
    return reverse("admin:sendcloud_integration_sendcloudintegration_verify", args=[integration.pk])


def form_data(integration: SendcloudIntegration, **overrides: Any) -> dict[str, Any]:
    data = {
        "public_key": integration.public_key,
        "secret_key": "",
        "integration_id": str(integration.integration_id),
        "sender_address_id": "",
        "shipping_option_code": integration.shipping_option_code,
        "is_active": "on",
        "customs_shipment_type": integration.customs_shipment_type,
        "customs_export_type": integration.customs_export_type,
        "sender_eori_number": integration.sender_eori_number,
        "sender_vat_number": integration.sender_vat_number,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_secret(text: str) -> None:
    assert SECRET not in text
    assert SECRET[:12] not in text  # not even a recognisable part of it


def assert_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert_no_secret(record.getMessage())
        assert_no_secret(repr(record.args))
        if record.exc_text:
            assert_no_secret(record.exc_text)


# --- the secret is never shown ---------------------------------------------------------------------------


def test_secret_never_in_admin_pages_or_logs(
    superuser: User,
    secret_integration: SendcloudIntegration,
    mocked: responses.RequestsMock,
    everything_logged: pytest.LogCaptureFixture,
) -> None:
    client = login(superuser)
    mocked.get(INTEGRATIONS_URL, json={"data": [{"id": 1001, "shop_name": "Acme NL"}]})
    order = OrderFactory(shop=secret_integration.shop)
    ship(order, "failed", batch=make_batch(secret_integration.shop))
    pages = [
        CHANGELIST,
        change_url(secret_integration),
        change_url(secret_integration).replace("/change/", "/history/"),
        CHANGELIST + "add/",
        "/admin/",
        reverse("admin:sendcloud_integration_dashboard"),
        "/admin/webshop/order/",
        f"/admin/webshop/order/{order.pk}/change/",
        "/admin/sendcloud_integration/pushbatch/",
        "/admin/sendcloud_integration/sendcloudapicall/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode())

    verified = client.post(verify_url(secret_integration), follow=True)
    assert verified.status_code == 200
    assert "Sendcloud accepted the credentials" in verified.content.decode()
    assert_no_secret(verified.content.decode())

    saved = client.post(change_url(secret_integration), form_data(secret_integration), follow=True)
    assert saved.status_code == 200
    assert_no_secret(saved.content.decode())
    assert_no_secret_in_logs(everything_logged)


@pytest.mark.parametrize("permissions", [("view",), ("view", "change")])
def test_staff_who_may_only_look_never_see_the_secret(
    secret_integration: SendcloudIntegration, permissions: tuple[str, ...]
) -> None:
    """Django renders a view-only page's fields as their values; the secret must not be one of them."""
    user = User.objects.create_user("looker", "looker@example.com", "a-long-password-1", is_staff=True)
    grant(user, [f"sendcloud_integration.{p}_sendcloudintegration" for p in permissions])
    client = login(user)
    for url in (
        CHANGELIST,
        change_url(secret_integration),
        change_url(secret_integration).replace("/change/", "/history/"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode())
    page = client.get(change_url(secret_integration)).content.decode()
    if permissions == ("view",):
        assert "••••••••" in page  # the mask stands in for the field
        assert 'name="secret_key"' not in page
    else:
        assert 'name="secret_key"' in page  # the write-only input, empty


def test_changelist_shows_the_secret_masked(superuser: User, secret_integration: SendcloudIntegration) -> None:
    html = login(superuser).get(CHANGELIST).content.decode()
    assert "••••••••" in html
    assert "pk-admin-test" in html  # the public key is not a secret


def test_blank_secret_keeps_the_stored_one(superuser: User, secret_integration: SendcloudIntegration) -> None:
    response = login(superuser).post(
        change_url(secret_integration), form_data(secret_integration, shipping_option_code="dhl:standard")
    )
    assert response.status_code == 302
    secret_integration.refresh_from_db()
    assert secret_integration.secret_key == SECRET
    assert secret_integration.shipping_option_code == "dhl:standard"


def test_new_secret_replaces_it_and_clears_a_refusal(superuser: User, secret_integration: SendcloudIntegration) -> None:
    SendcloudIntegration.objects.filter(pk=secret_integration.pk).update(
        is_connected=False, connection_error="401 Unauthorized"
    )
    response = login(superuser).post(
        change_url(secret_integration), form_data(secret_integration, secret_key="sk-brand-new-0001")
    )
    assert response.status_code == 302
    secret_integration.refresh_from_db()
    assert secret_integration.secret_key == "sk-brand-new-0001"
    assert secret_integration.is_connected is True
    assert secret_integration.connection_error == ""


def test_form_errors_do_not_echo_a_typed_secret(superuser: User, secret_integration: SendcloudIntegration) -> None:
    typed = "sk-typed-but-invalid-form-777"
    response = login(superuser).post(
        change_url(secret_integration), form_data(secret_integration, secret_key=typed, integration_id="0")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "errornote" in html
    assert typed not in html
    assert_no_secret(html)
    secret_integration.refresh_from_db()
    assert secret_integration.secret_key == SECRET


def test_add_needs_a_secret_and_stores_it(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    data = {
        "shop": str(shop.pk),
        "public_key": "pk-new",
        "secret_key": "",
        "integration_id": "77",
        "shipping_option_code": "",
        "is_active": "on",
        "customs_shipment_type": "commercial_goods",  # the form offers the shop's customs defaults prefilled
        "customs_export_type": "commercial_b2c",
    }
    assert client.post(CHANGELIST + "add/", data).status_code == 200  # the secret is required on add
    data["secret_key"] = SECRET
    response = client.post(CHANGELIST + "add/", data, follow=True)
    assert response.status_code == 200
    assert_no_secret(response.content.decode())
    integration = SendcloudIntegration.objects.get(shop=shop)
    assert (integration.public_key, integration.secret_key, integration.integration_id) == ("pk-new", SECRET, 77)


def test_secret_never_in_api_responses(secret_integration: SendcloudIntegration) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(secret_integration.shop)}")
    order = OrderFactory(shop=secret_integration.shop)
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch"):
        pushed = client.post(PUSH_URL, {"create_label": False, "order_ids": [order.pk, 999999]}, format="json")
    assert pushed.status_code == 200
    assert_no_secret(pushed.content.decode())
    status = client.get(pushed.json()["batch"]["status_url"])
    assert status.status_code == 200
    assert_no_secret(status.content.decode())
    SendcloudIntegration.objects.filter(pk=secret_integration.pk).update(is_active=False)
    refused = client.post(PUSH_URL, {"create_label": False, "order_ids": [order.pk]}, format="json")
    assert refused.status_code == 400
    assert_no_secret(refused.content.decode())


# --- verify connection ---------------------------------------------------------------------------------------


def verify(client: Client, integration: SendcloudIntegration) -> tuple[Any, list[tuple[str, str]]]:
    response = client.post(verify_url(integration))
    messages = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    return response, messages


def test_verify_success_marks_connected(
    superuser: User, secret_integration: SendcloudIntegration, mocked: responses.RequestsMock
) -> None:
    SendcloudIntegration.objects.filter(pk=secret_integration.pk).update(is_connected=False, connection_error="old")
    mocked.get(INTEGRATIONS_URL, json={"data": [{"id": 1001, "shop_name": "Acme NL"}]})
    response, messages = verify(login(superuser), secret_integration)
    assert response.status_code == 302
    assert response["Location"] == change_url(secret_integration)
    assert messages == [
        ("success", "Sendcloud accepted the credentials. Integrations on this account: 1001 (Acme NL).")
    ]
    secret_integration.refresh_from_db()
    assert secret_integration.is_connected is True
    assert secret_integration.connection_error == ""
    assert secret_integration.connection_checked_at is not None
    call = SendcloudApiCall.objects.get()
    assert (call.method, call.path, call.status_code) == ("GET", "/v3/integrations", 200)
    assert mocked.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_verify_warns_when_the_integration_id_is_not_on_the_account(
    superuser: User, secret_integration: SendcloudIntegration, mocked: responses.RequestsMock
) -> None:
    mocked.get(INTEGRATIONS_URL, json={"data": [{"id": 5, "shop_name": "Other"}]})
    _, messages = verify(login(superuser), secret_integration)
    [(level, text)] = messages
    assert level == "warning"
    assert "integration 1001 is not one of this account's integrations: 5 (Other)" in text


def test_verify_refused_marks_not_connected(
    superuser: User,
    secret_integration: SendcloudIntegration,
    mocked: responses.RequestsMock,
    everything_logged: pytest.LogCaptureFixture,
) -> None:
    mocked.get(
        INTEGRATIONS_URL,
        status=401,
        json={"errors": [{"status": "401", "code": "authentication_failed", "detail": "Invalid username/password."}]},
    )
    _, messages = verify(login(superuser), secret_integration)
    [(level, text)] = messages
    assert level == "error"
    assert text.startswith("Sendcloud refused the credentials:")
    assert "Invalid username/password." in text
    secret_integration.refresh_from_db()
    assert secret_integration.is_connected is False
    assert "Invalid username/password." in secret_integration.connection_error
    assert_no_secret(text)
    assert_no_secret_in_logs(everything_logged)


def test_verify_inconclusive_keeps_the_state(
    superuser: User, secret_integration: SendcloudIntegration, mocked: responses.RequestsMock
) -> None:
    mocked.get(INTEGRATIONS_URL, status=503, body="down for maintenance")
    _, messages = verify(login(superuser), secret_integration)
    [(level, text)] = messages
    assert level == "warning"
    assert text.startswith("Could not verify the connection (the stored state is unchanged):")
    secret_integration.refresh_from_db()
    assert secret_integration.is_connected is True
    assert secret_integration.connection_checked_at is None


def test_verify_needs_post_and_change_permission(
    viewer: User, superuser: User, secret_integration: SendcloudIntegration, mocked: responses.RequestsMock
) -> None:
    assert login(superuser).get(verify_url(secret_integration)).status_code == 405
    assert login(viewer).post(verify_url(secret_integration)).status_code == 403
    assert not mocked.calls


def test_verify_button_is_on_the_change_page(superuser: User, secret_integration: SendcloudIntegration) -> None:
    html = login(superuser).get(change_url(secret_integration)).content.decode()
    assert f'action="{verify_url(secret_integration)}"' in html
    assert "Verify connection" in html
