"""The wemasy siblings of push (docs/api.md): create-label, update-order, verify, status, shipping-methods.

Every documented status code, header and field, against the in-process sandbox playing Sendcloud. The
secret key never appears in an answer, whatever the endpoint and the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from sendcloud_integration.models import (
    OrderShipment,
    PushBatch,
    SendcloudIntegration,
    ShipmentState,
    ShippingOption,
)
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.shipping.catalogue import sync_catalogue
from sendcloud_sandbox import SandboxConfig, SandboxServer
from sendcloud_sandbox.config import Account
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from webshop.models import Order, OrderParcel, Scope, Shop

pytestmark = pytest.mark.django_db

BASE = "/api/services/webshop/v1"
CREATE_LABEL = f"{BASE}/orders/sendcloud/shipments/create-label"
UPDATE_ORDER = f"{BASE}/orders/update-order"
VERIFY = f"{BASE}/integrations/sendcloud/verify"
STATUS = f"{BASE}/integrations/sendcloud/status"
METHODS = f"{BASE}/integrations/sendcloud/shipping-methods"
SECRET = "sandbox-secret"


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False, record_bodies=True)).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


def client_with(shop: Shop, *scopes: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=list(scopes))}")
    return client


@pytest.fixture
def pusher(shop: Shop) -> APIClient:
    return client_with(shop, Scope.SHIPMENTS_PUSH)


@pytest.fixture
def manager(shop: Shop) -> APIClient:
    return client_with(shop, Scope.INTEGRATIONS_MANAGE)


@pytest.fixture
def reader(shop: Shop) -> APIClient:
    return client_with(shop, Scope.INTEGRATIONS_READ)


def post(client: APIClient, url: str, body: Any = None) -> Any:
    return client.post(url, body, format="json") if body is not None else client.post(url)


def assert_headers(response: Any) -> None:
    assert response["X-RateLimit-Limit"] == "60"
    assert int(response["X-RateLimit-Remaining"]) >= 0
    assert response["X-Request-ID"]
    assert SECRET not in response.content.decode()


def assert_error(response: Any, status: int, text: str = "") -> None:
    assert response.status_code == status, response.content
    assert_headers(response)
    body = response.json()
    assert body["error"] is True
    assert text in body["message"]


def assert_422(response: Any, field: str, message: str) -> None:
    assert response.status_code == 422, response.content
    assert_headers(response)
    assert response.json()["errors"][field] == [message]
    assert "error" not in response.json()


# --- the conventions, for every new endpoint --------------------------------------------------------------

ENDPOINTS = [("post", CREATE_LABEL), ("post", UPDATE_ORDER), ("post", VERIFY), ("get", STATUS), ("post", METHODS)]
SCOPE_OF = {
    CREATE_LABEL: Scope.SHIPMENTS_PUSH,
    UPDATE_ORDER: Scope.SHIPMENTS_PUSH,
    VERIFY: Scope.INTEGRATIONS_MANAGE,
    STATUS: Scope.INTEGRATIONS_READ,
    METHODS: Scope.INTEGRATIONS_READ,
}


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_401_without_token(api_client: APIClient, method: str, url: str, db: None) -> None:
    response = getattr(api_client, method)(url, {}, format="json")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_403_without_the_scope(shop: Shop, integration: SendcloudIntegration, method: str, url: str) -> None:
    other = next(s for s in (Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_READ) if s != SCOPE_OF[url])
    response = getattr(client_with(shop, other), method)(url, {}, format="json")
    assert_error(response, 403, f"lacks the {SCOPE_OF[url]} scope")


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_429_over_the_rate_limit(
    shop: Shop, integration: SendcloudIntegration, settings: Any, method: str, url: str
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    client = client_with(shop, Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_MANAGE)
    getattr(client, method)(url, {}, format="json")
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response["X-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_500_names_the_request_id(shop: Shop, integration: SendcloudIntegration, method: str, url: str) -> None:
    client = client_with(shop, Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_MANAGE)
    target = {
        CREATE_LABEL: "sendcloud_integration.api.orders.push_orders",
        UPDATE_ORDER: "sendcloud_integration.api.orders.update_order_shipping",
        VERIFY: "sendcloud_integration.api.integration.verify_credentials",
        STATUS: "sendcloud_integration.api.integration.integration_of",
        METHODS: "sendcloud_integration.api.integration.shipping_methods",
    }[url]
    body = {
        CREATE_LABEL: {"order_ids": [1]},
        UPDATE_ORDER: {"order_id": 1, "shipping_method_id": 1, "weight": 1, "no_parcels": 1},
        VERIFY: {"public_key": "p", "secret_key": "s"},
    }.get(url, {})
    with mock.patch(target, side_effect=RuntimeError(SECRET)):
        response = getattr(client, method)(url, body, format="json")
    assert_error(response, 500, "quote request id")
    assert response["X-Request-ID"] in response.json()["message"]


@pytest.mark.parametrize("url", [CREATE_LABEL, UPDATE_ORDER, VERIFY, METHODS])
def test_400_for_a_body_that_is_not_a_json_object(shop: Shop, integration: SendcloudIntegration, url: str) -> None:
    client = client_with(shop, Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_MANAGE)
    assert_error(client.post(url, "[1]", content_type="application/json"), 400, "must be a JSON object")
    assert not PushBatch.objects.exists()
    assert_error(client.post(url, "{", content_type="application/json"), 400, "not valid JSON")


# --- create-label ---------------------------------------------------------------------------------------------


def test_create_label_answers_the_flat_body_and_queues_with_labels(
    pusher: APIClient, shop: Shop, integration: SendcloudIntegration
) -> None:
    new = OrderFactory(shop=shop, order_number="N-1")
    failed = OrderFactory(shop=shop, order_number="N-2")
    OrderShipment.objects.create(order=failed, shop=shop, state=ShipmentState.FAILED, failed_phase="push")
    quote = OrderFactory(shop=shop, order_number="N-3", type=Order.Type.QUOTE)

    response = post(pusher, CREATE_LABEL, {"order_ids": [new.pk, failed.pk, quote.pk, 999999]})

    assert response.status_code == 200
    assert_headers(response)
    body = response.json()
    batch = PushBatch.objects.get()
    assert batch.create_label is True
    assert body == {
        "error": False,
        "message": "2 orders queued for SendCloud in 1 chunk.",
        "batch_name": f"sendcloud-labels-acme-{batch.pk}",
        "total_orders": 4,
        "new_orders": 1,
        "retried_orders": 1,
        "skipped_orders": 2,
        "total_chunks": 1,
        "estimated_completion_minutes": 0.03,  # (1 upsert + 1 label request) / 100 writes a minute: 2 s
        "status_check_url": f"http://testserver{BASE}/orders/sendcloud/shipments/batches/{batch.pk}",
    }
    assert set(OrderShipment.objects.values_list("state", "create_label")) == {(ShipmentState.QUEUED, True)}


def test_create_label_with_nothing_to_queue(pusher: APIClient, shop: Shop, integration: SendcloudIntegration) -> None:
    order = OrderFactory(shop=shop, type=Order.Type.QUOTE)
    body = post(pusher, CREATE_LABEL, {"order_ids": [order.pk]}).json()
    assert (body["batch_name"], body["status_check_url"], body["total_chunks"]) == (None, None, 0)
    assert body["estimated_completion_minutes"] == 0
    assert body["message"] == "No orders queued for SendCloud: the order was skipped."


def test_create_label_404_422_and_400(pusher: APIClient, shop: Shop) -> None:
    assert_error(post(pusher, CREATE_LABEL, {"order_ids": [1]}), 400, "no SendCloud integration")
    SendcloudIntegrationFactory(shop=shop)
    other = OrderFactory(shop=ShopFactory(slug="other"))
    assert_error(post(pusher, CREATE_LABEL, {"order_ids": [other.pk]}), 404, "None of the requested orders")
    assert_422(post(pusher, CREATE_LABEL, {}), "order_ids", "The order_ids field is required.")
    assert_422(
        post(pusher, CREATE_LABEL, {"order_ids": ["x"]}), "order_ids.0", "The order_ids.0 field must be an integer."
    )
    assert not PushBatch.objects.exists()


# --- shipping-methods -----------------------------------------------------------------------------------------


def test_shipping_methods_are_synced_once_and_filtered(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL", "US"]
    first = post(reader, METHODS)
    again = post(reader, METHODS, {"country": "us"})
    heavy = post(reader, METHODS, {"country": "NL", "weight": "30"})

    assert first.status_code == 200
    assert_headers(first)
    body = first.json()
    assert body["error"] is False
    assert body["stale"] is False
    assert body["synced_at"]
    assert body["message"] == f"{len(body['shipping_methods'])} shipping methods."
    methods = {m["code"]: m for m in body["shipping_methods"]}
    standard = methods["postnl:standard"]
    assert standard == {
        "id": ShippingOption.objects.get(code="postnl:standard").pk,
        "code": "postnl:standard",
        "name": "PostNL Standard",
        "carrier": {"code": "postnl", "name": "PostNL"},
        "min_weight": "0.001",
        "max_weight": "23.000",
        "countries": ["NL"],
        "multicollo": True,
        "service_point": False,
        "is_default": True,
    }
    assert methods["postnl:standard/service_point"]["service_point"] is True  # delivers to a pickup point
    assert methods["dhl_express:express"]["countries"] == ["NL", "US"]
    assert [m["code"] for m in again.json()["shipping_methods"]] == ["dhl_express:express"]
    assert "postnl:standard" not in {m["code"] for m in heavy.json()["shipping_methods"]}
    posts = [r for r in sandbox.request_log() if r["route"] == "POST /shipping-options"]
    assert len(posts) == 2  # one per country, once: the second and third answers came from the catalogue


def test_ids_stay_stable_and_vanished_options_become_unavailable(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL"]
    ids = {m["code"]: m["id"] for m in post(reader, METHODS).json()["shipping_methods"]}
    gone = ShippingOption.objects.create(integration=integration, code="old:gone", name="Old")

    refreshed = {m["code"]: m["id"] for m in post(reader, METHODS, {"refresh": True}).json()["shipping_methods"]}

    assert refreshed == ids
    gone.refresh_from_db()
    assert gone.is_available is False


def test_shipping_methods_stale_catalogue_and_503(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL"]
    sandbox.set_faults({"POST /shipping-options": [{"kind": "server_error"}]})
    assert_error(post(reader, METHODS), 503, "did not answer")

    sandbox.set_faults({})
    post(reader, METHODS)
    sandbox.set_faults({"POST /shipping-options": [{"kind": "server_error"}]})
    stale = post(reader, METHODS, {"refresh": 1})
    assert stale.status_code == 200
    assert stale.json()["stale"] is True
    assert "may be outdated" in stale.json()["message"]
    assert stale.json()["shipping_methods"]


def test_shipping_methods_take_the_write_budget_first(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL", "BE"]
    with mock.patch.object(budget, "acquire", return_value=0.0) as acquire:
        post(reader, METHODS)
    assert [c.kwargs["kind"] for c in acquire.call_args_list] == [budget.Kind.UNSAFE, budget.Kind.UNSAFE]
    with mock.patch.object(budget, "acquire", return_value=42.0):
        response = post(reader, METHODS, {"refresh": True})
    assert response.json()["stale"] is True
    assert "try again in 42 s" in response.json()["message"]


def test_shipping_methods_400_and_422(reader: APIClient, shop: Shop) -> None:
    assert_error(post(reader, METHODS), 400, "no SendCloud integration")
    SendcloudIntegrationFactory(shop=shop)
    assert_422(post(reader, METHODS, {"country": "NLD"}), "country", "The country field must be 2 letters.")
    assert_422(post(reader, METHODS, {"weight": "-1"}), "weight", "The weight field must be a number.")
    assert_422(post(reader, METHODS, {"refresh": "yes"}), "refresh", "The refresh field must be true or false.")


# --- update-order ---------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any) -> dict[str, ShippingOption]:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL", "BE", "DE", "GB", "US"]
    sync_catalogue(integration)
    return {option.code: option for option in ShippingOption.objects.filter(integration=integration)}


def update(client: APIClient, order: Order, option: ShippingOption, weight: Any = "2.5", parcels: Any = 2) -> Any:
    return post(
        client,
        UPDATE_ORDER,
        {"order_id": order.pk, "shipping_method_id": option.pk, "weight": weight, "no_parcels": parcels},
    )


def test_update_order_before_any_push_changes_only_the_order(
    pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption], sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop)
    express = catalogue["dhl_express:express"]
    before = len(sandbox.request_log())

    response = update(pusher, order, express)

    assert response.status_code == 200
    assert_headers(response)
    assert response.json() == {
        "error": False,
        "message": f"Order {order.order_number} updated; it is not in Sendcloud yet, the next push sends it.",
        "order_metadata": {
            "sendcloud_shipping_method_id": str(express.pk),
            "sendcloud_shipping_option_code": "dhl_express:express",
            "sendcloud_no_parcels": 2,
            "sendcloud_weight": "2.500",
            "sendcloud_labels_created": False,
            "sendcloud_shipment_created": False,
        },
        "shipment": None,
        "updated_fields": {"weight": "2.500", "quantity": "2", "shipping_method_id": str(express.pk)},
        "sendcloud_response": [],
    }
    order.refresh_from_db()
    assert (order.shipping_option_code, order.weight_kg, order.parcels.count()) == (
        "dhl_express:express",
        Decimal("2.500"),
        2,
    )
    assert len(sandbox.request_log()) == before


def test_update_order_of_a_pushed_order_upserts_it_in_sendcloud(
    pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption], sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop)
    from sendcloud_integration.pipeline import process as processing
    from sendcloud_integration.push import services

    result = services.push_orders(shop=shop, order_ids=[order.pk], create_label=False, actor=services.Actor.command())
    processing.process_chunk(batch_id=result.batch_id, chunk_number=1)
    shipment = OrderShipment.objects.get(order=order)
    assert shipment.state == ShipmentState.PUSHED
    dpd = catalogue["dpd:home"]

    with mock.patch.object(budget, "acquire", wraps=budget.acquire) as acquire:
        response = post(
            pusher,
            UPDATE_ORDER,
            {"order_id": str(order.pk), "shipping_option_code": "dpd:home", "weight": 3, "no_parcels": "1"},
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["order_metadata"]["sendcloud_shipment_created"] is True
    assert body["shipment"] == {
        "id": str(shipment.pk),
        "status": "pushed",
        "external_shipment_id": None,
        "service_name": "DPD Home",
        "tracking_number": None,
    }
    stored = sandbox.snapshot()["orders"]["items"][0]
    assert body["sendcloud_response"] == [
        {"id": str(stored["id"]), "order_id": str(order.pk), "order_number": order.order_number}
    ]
    assert acquire.call_args.kwargs["kind"] == budget.Kind.UNSAFE
    sent = [r["body"] for r in sandbox.request_log() if r["route"] == "POST /orders"][-1][0]
    assert sent["shipping_details"]["ship_with"]["properties"]["shipping_option_code"] == dpd.code
    assert sent["shipping_details"]["measurement"]["weight"] == {"value": 3.0, "unit": "kg"}
    assert sandbox.snapshot()["orders"]["upserts"] == 2


def test_update_order_of_a_labelled_order_is_refused_and_changes_nothing(
    pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption], sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.LABELLED, pushed_at="2026-01-01T00:00Z")
    before = len(sandbox.request_log())

    response = update(pusher, order, catalogue["dpd:home"])

    assert_error(response, 409, "already has a label")
    assert "cancel the label first (then push it again with labels)" in response.json()["message"]
    order.refresh_from_db()
    assert (order.shipping_option_code, order.weight_kg) == ("", None)
    assert not OrderParcel.objects.exists()
    assert len(sandbox.request_log()) == before


def test_update_order_while_queued_is_409(pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption]) -> None:
    order = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.QUEUED)
    assert_error(update(pusher, order, catalogue["dpd:home"]), 409, "is being sent to Sendcloud")


def test_update_order_refusals(pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption]) -> None:
    order = OrderFactory(shop=shop, address={"country": "US", "postal_code": "10001", "city": "New York"})
    other = OrderFactory(shop=ShopFactory(slug="other"))
    assert_error(update(pusher, other, catalogue["dpd:home"]), 404, "No such order in this shop.")
    assert_422(
        update(pusher, order, catalogue["dpd:home"]),
        "shipping_method_id",
        "Shipping method 'DPD Home' (dpd:home) does not ship to US.",
    )
    assert_422(
        update(pusher, order, catalogue["dhl_express:express"], weight="80", parcels=1),
        "weight",
        "The order weighs 80.000 kg, but Shipping method 'DHL Express Worldwide' (dhl_express:express) takes "
        "0.001 kg to 70.000 kg per parcel.",
    )
    nl = OrderFactory(shop=shop)
    assert_422(
        update(pusher, nl, catalogue["postnl:mailbox"], weight="1", parcels=2),
        "no_parcels",
        "Shipping method 'PostNL Mailbox Parcel' (postnl:mailbox) cannot ship an order in several parcels "
        "(this one has 2).",
    )
    order.refresh_from_db()
    assert order.shipping_option_code == ""


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "order_id", "The order_id field is required."),
        ({"order_id": None}, "order_id", "The order_id field is required."),
        ({"order_id": 1.5}, "order_id", "The order_id field must be an integer."),
        ({"order_id": 1}, "weight", "The weight field is required."),
        ({"order_id": 1}, "no_parcels", "The no_parcels field is required."),
        (
            {"order_id": 1, "weight": 1, "no_parcels": 1},
            "shipping_method_id",
            "The shipping_method_id field is required when shipping_option_code is not present.",
        ),
        ({"shipping_method_id": 0}, "shipping_method_id", "The shipping_method_id field must be at least 1."),
        ({"weight": "abc"}, "weight", "The weight field must be a number."),
        ({"weight": True}, "weight", "The weight field must be a number."),
        ({"weight": 0}, "weight", "The weight field must be at least 0.001."),
        ({"weight": "1.0001"}, "weight", "The weight field must have at most 3 decimal places."),
        ({"no_parcels": 0}, "no_parcels", "The no_parcels field must be at least 1."),
        ({"no_parcels": 51}, "no_parcels", "The no_parcels field must not be greater than 50."),
        ({"no_parcels": 1.0}, "no_parcels", "The no_parcels field must be an integer."),
        ({"shipping_option_code": ""}, "shipping_option_code", "The shipping_option_code field must not be empty."),
    ],
)
def test_update_order_validation(
    pusher: APIClient, integration: SendcloudIntegration, body: dict, field: str, message: str
) -> None:
    response = post(pusher, UPDATE_ORDER, body)
    assert response.status_code == 422
    assert response.json()["errors"][field] == [message]


def test_update_order_unknown_method_and_400s(
    pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption], sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop)
    body = {"order_id": order.pk, "weight": 1, "no_parcels": 1}
    assert_422(
        post(pusher, UPDATE_ORDER, {**body, "shipping_method_id": 999999}),
        "shipping_method_id",
        "The selected shipping_method_id is invalid.",
    )
    assert_422(
        post(pusher, UPDATE_ORDER, {**body, "shipping_option_code": "no:such"}),
        "shipping_option_code",
        "The selected shipping_option_code is invalid.",
    )
    # Sendcloud refuses the updated order (a pushed order): 400 with its reason, nothing changed.
    OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.PUSHED, pushed_at="2026-01-01T00:00Z")
    sandbox.set_faults({"POST /orders": [{"kind": "server_error"}]})
    assert_error(post(pusher, UPDATE_ORDER, {**body, "shipping_option_code": "dpd:home"}), 503, "did not confirm")
    order.refresh_from_db()
    assert order.shipping_option_code == ""
    SendcloudIntegration.objects.update(is_active=False)
    assert_error(post(pusher, UPDATE_ORDER, {**body, "shipping_option_code": "dpd:home"}), 400, "inactive")


# --- verify ---------------------------------------------------------------------------------------------------


def test_verify_stores_the_keys_and_marks_connected(manager: APIClient, shop: Shop, sandbox: SandboxServer) -> None:
    response = post(manager, VERIFY, {"public_key": "sandbox-public", "secret_key": SECRET})

    assert response.status_code == 200, response.content
    assert_headers(response)
    integration = SendcloudIntegration.objects.get(shop=shop)
    body = response.json()
    assert body["error"] is False
    assert body["message"] == "Sendcloud accepted the credentials; they are stored and the integration is connected."
    assert set(body["integration"]) == {
        "id",
        "is_active",
        "is_connected",
        "created_at",
        "updated_at",
        "sendcloud_integration_id",
    }
    assert (body["integration"]["id"], body["integration"]["is_active"], body["integration"]["is_connected"]) == (
        integration.pk,
        1,
        1,
    )
    assert body["integration"]["sendcloud_integration_id"] == 1001
    assert body["integration"]["created_at"].endswith("Z")
    assert (integration.public_key, integration.secret_key, integration.is_connected) == (
        "sandbox-public",
        SECRET,
        True,
    )
    assert [r["route"] for r in sandbox.request_log()] == ["GET /integrations"]


def test_verify_refused_keys_are_400_with_sendclouds_reason_and_not_stored(
    manager: APIClient, shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    response = post(manager, VERIFY, {"public_key": "sandbox-public", "secret_key": "wrong-secret"})
    assert_error(response, 400, "Sendcloud refused the credentials")
    assert "Invalid username/password." in response.json()["message"]
    assert "wrong-secret" not in response.content.decode()
    integration.refresh_from_db()
    assert integration.secret_key == SECRET


def test_verify_needs_integration_id_when_the_account_has_several(
    manager: APIClient, shop: Shop, sandbox: SandboxServer
) -> None:
    sandbox.add_account(Account(public_key="multi", secret_key=SECRET, integration_ids=[7, 8]))
    assert_error(post(manager, VERIFY, {"public_key": "multi", "secret_key": SECRET}), 400, "send integration_id")
    assert_error(
        post(manager, VERIFY, {"public_key": "multi", "secret_key": SECRET, "integration_id": 9}), 400, "not one of"
    )
    assert post(manager, VERIFY, {"public_key": "multi", "secret_key": SECRET, "integration_id": 8}).status_code == 200
    assert SendcloudIntegration.objects.get(shop=shop).integration_id == 8


def test_verify_503_when_sendcloud_does_not_answer_or_the_budget_is_spent(
    manager: APIClient, sandbox: SandboxServer
) -> None:
    sandbox.set_faults({"GET /integrations": [{"kind": "server_error", "times": 1}]})
    assert_error(post(manager, VERIFY, {"public_key": "sandbox-public", "secret_key": SECRET}), 503, "Could not reach")
    with mock.patch.object(budget, "take", return_value=3.2) as take:
        assert_error(
            post(manager, VERIFY, {"public_key": "sandbox-public", "secret_key": SECRET}), 503, "try again in 4 s"
        )
    assert take.call_args.kwargs == {"public_key": "sandbox-public", "kind": budget.Kind.SAFE}
    assert not SendcloudIntegration.objects.exists()


def test_verify_422(manager: APIClient, db: None) -> None:
    assert_422(post(manager, VERIFY, {"secret_key": "s"}), "public_key", "The public_key field is required.")
    assert_422(
        post(manager, VERIFY, {"public_key": "p", "secret_key": ""}), "secret_key", "The secret_key field is required."
    )
    assert_422(
        post(manager, VERIFY, {"public_key": "p", "secret_key": 5}),
        "secret_key",
        "The secret_key field must be a string.",
    )


# --- status ---------------------------------------------------------------------------------------------------


def test_status_shows_the_public_key_and_a_masked_secret(reader: APIClient, integration: SendcloudIntegration) -> None:
    response = reader.get(STATUS)
    assert response.status_code == 200
    assert_headers(response)
    body = response.json()
    assert set(body) == {"error", "integration"}
    assert body["error"] is False
    assert body["integration"] == {
        "credentials": {"public_key": "sandbox-public", "secret_key": "••••••••"},
        "id": str(integration.pk),
        "is_active": "1",
        "is_connected": "1",
        "created_at": body["integration"]["created_at"],
        "updated_at": body["integration"]["updated_at"],
        "sendcloud_integration_id": "1001",
        "connection_error": None,
        "connection_checked_at": None,
    }
    assert body["integration"]["created_at"].endswith("Z")


def test_status_of_a_disconnected_and_of_a_missing_integration(
    reader: APIClient, shop: Shop, integration: SendcloudIntegration, manager: APIClient
) -> None:
    integration.mark_disconnected("Invalid username/password.")
    SendcloudIntegration.objects.update(is_active=False)
    body = reader.get(STATUS).json()["integration"]
    assert (body["is_active"], body["is_connected"], body["connection_error"]) == (
        "0",
        "0",
        "Invalid username/password.",
    )
    assert body["connection_checked_at"]
    assert manager.get(STATUS).status_code == 200  # managing includes reading
    SendcloudIntegration.objects.all().delete()
    assert reader.get(STATUS).json() == {"error": False, "integration": None}


def test_the_secret_never_appears_in_any_answer(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SHIPPING_COUNTRIES = ["NL"]
    client = client_with(shop, Scope.SHIPMENTS_PUSH, Scope.INTEGRATIONS_MANAGE)
    order = OrderFactory(shop=shop)
    answers = [
        client.get(STATUS),
        post(client, METHODS),
        post(client, VERIFY, {"public_key": "sandbox-public", "secret_key": SECRET}),
        post(client, VERIFY, {"public_key": "sandbox-public", "secret_key": SECRET + "x"}),
        post(
            client,
            UPDATE_ORDER,
            {"order_id": order.pk, "shipping_option_code": "postnl:standard", "weight": 1, "no_parcels": 1},
        ),
        post(client, CREATE_LABEL, {"order_ids": [order.pk]}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 200, 200]
    for answer in answers:
        assert SECRET not in answer.content.decode()


def test_update_order_that_sendcloud_refuses_is_400_with_its_reason_and_changes_nothing(
    pusher: APIClient, shop: Shop, catalogue: dict[str, ShippingOption], sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop, address={"postal_code": "1012"})  # Sendcloud refuses the Dutch postal code
    OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.PUSHED, pushed_at="2026-01-01T00:00Z")

    response = update(pusher, order, catalogue["dpd:home"], parcels=1)

    assert_error(response, 400, "Sendcloud refused the updated order: shipping_address.postal_code: Enter a valid")
    assert "Nothing was changed." in response.json()["message"]
    order.refresh_from_db()
    assert (order.shipping_option_code, order.weight_kg) == ("", None)


def test_shipping_methods_with_refused_keys_and_no_catalogue_is_400(
    reader: APIClient, shop: Shop, sandbox: SandboxServer
) -> None:
    integration = SendcloudIntegrationFactory(shop=shop, secret_key="not-the-secret")
    response = post(reader, METHODS)
    assert_error(response, 400, "Sendcloud refused the credentials")
    assert "not-the-secret" not in response.content.decode()
    integration.refresh_from_db()
    assert integration.is_connected is False
