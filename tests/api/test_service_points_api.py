"""``GET …/integrations/sendcloud/service-points`` (docs/api.md): every status, header and field.

Against the in-process sandbox playing Sendcloud. A search costs at most one GET of the account's read
budget, never a write, and an identical search within the cache time costs Sendcloud nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud import budget
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.factories import issue_token
from webshop.models import Scope, Shop

pytestmark = pytest.mark.django_db

URL = "/api/services/webshop/v1/integrations/sendcloud/service-points"


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False)).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reader(shop: Shop) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[Scope.INTEGRATIONS_READ])}")
    return client


def sendcloud_calls(sandbox: SandboxServer) -> list[str]:
    return [str(entry["route"]) for entry in sandbox.request_log()]


def test_points_near_a_postal_code(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    response = reader.get(URL, {"country": "nl", "postal_code": "1012 AB", "carrier": "postnl", "limit": 3})

    assert response.status_code == 200, response.content
    assert response["X-Request-ID"]
    assert response["X-RateLimit-Limit"] == "60"
    body = response.json()
    assert (body["error"], body["message"], body["cached"]) == (False, "3 service points.", False)
    first = body["service_points"][0]
    assert first == {
        "id": "1000001",
        "name": "Primera Stationsplein",
        "carrier": {"code": "postnl", "name": "PostNL"},
        "carrier_service_point_id": "NL-219873",
        "type": "servicepoint",
        "address": {
            "street": "Stationsplein",
            "house_number": "12",
            "postal_code": "1012 AB",
            "city": "Amsterdam",
            "country": "NL",
        },
        "latitude": 52.3786,
        "longitude": 4.9003,
        "distance": first["distance"],
        "is_open_tomorrow": True,
        "opening_times": first["opening_times"],
    }
    assert isinstance(first["distance"], int)
    assert first["opening_times"]["monday"] == [{"start": "09:00", "end": "18:00"}]
    assert first["opening_times"]["sunday"] is None
    assert [p["carrier"]["code"] for p in body["service_points"]] == ["postnl"] * 3
    log = sandbox.request_log()
    assert [entry["route"] for entry in log] == ["GET /service-points"]
    assert "carrier_code=postnl" in str(log[0]["path"])
    assert "use_integration_carriers" not in str(log[0]["path"])  # the spec: exactly one carrier scope


def test_coordinates_radius_and_the_integrations_carriers(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    response = reader.get(URL, {"country": "NL", "latitude": "52.3786", "longitude": "4.9003", "radius": 800})
    points = response.json()["service_points"]
    assert points
    assert all(point["distance"] <= 800 for point in points)
    assert {point["carrier"]["code"] for point in points} <= {"postnl", "dhl", "dpd"}
    assert "use_integration_carriers=true" in str(sandbox.request_log()[0]["path"])


def test_a_search_costs_one_get_and_never_a_write_and_repeats_come_from_the_cache(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    query = {"country": "DE", "postal_code": "10178", "carrier": "dhl"}
    with mock.patch.object(budget, "acquire", wraps=budget.acquire) as acquire:
        first = reader.get(URL, query).json()
        second = reader.get(URL, query).json()
        other = reader.get(URL, {**query, "postal_code": "10119"}).json()

    assert [call.kwargs["kind"] for call in acquire.call_args_list] == [budget.Kind.SAFE, budget.Kind.SAFE]
    assert (first["cached"], second["cached"], other["cached"]) == (False, True, False)
    assert second["service_points"] == first["service_points"]
    assert sendcloud_calls(sandbox) == ["GET /service-points", "GET /service-points"]


def test_the_cache_lasts_only_briefly(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, settings: Any
) -> None:
    settings.SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS = 0  # nothing kept
    query = {"country": "BE", "postal_code": "2000", "carrier": "postnl"}
    assert reader.get(URL, query).json()["cached"] is False
    assert reader.get(URL, query).json()["cached"] is False
    assert sendcloud_calls(sandbox) == ["GET /service-points", "GET /service-points"]


def test_503_when_the_read_budget_is_spent(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    with mock.patch.object(budget, "take", return_value=12.5) as take:
        response = reader.get(URL, {"country": "NL", "postal_code": "1012", "carrier": "postnl"})
    assert response.status_code == 503
    assert "try again in 13 s" in response.json()["message"]
    assert take.call_args.kwargs == {"public_key": "sandbox-public", "kind": budget.Kind.SAFE, "headroom": 0}
    assert sendcloud_calls(sandbox) == []


def test_503_when_sendcloud_does_not_answer(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    sandbox.set_faults({"GET /service-points": [{"kind": "server_error", "times": 1}]})
    response = reader.get(URL, {"country": "NL", "postal_code": "1012", "carrier": "postnl"})
    assert response.status_code == 503
    assert "did not answer the service point search" in response.json()["message"]


def test_400_without_an_integration(reader: APIClient) -> None:
    response = reader.get(URL, {"country": "NL", "postal_code": "1012"})
    assert response.status_code == 400
    assert "no SendCloud integration" in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"postal_code": "1012"}, "country", "The country field is required."),
        ({"country": "NLD", "postal_code": "1012"}, "country", "The country field must be 2 letters."),
        ({"country": "NL"}, "postal_code", "Give a postal code, or latitude and longitude."),
        ({"country": "NL", "latitude": "52.3"}, "longitude", "Give latitude and longitude together."),
        (
            {"country": "NL", "latitude": "52.3", "longitude": "4.9", "postal_code": "1012"},
            "postal_code",
            "Give coordinates or a postal code, not both.",
        ),
        ({"country": "NL", "latitude": "91", "longitude": "4.9"}, "latitude", None),
        ({"country": "NL", "postal_code": "1012", "radius": "50"}, "radius", None),
        ({"country": "NL", "postal_code": "1012", "limit": "201"}, "limit", None),
        ({"country": "NL", "postal_code": "1012", "carrier": "Post NL"}, "carrier", None),
    ],
)
def test_422_names_the_field(
    reader: APIClient, integration: SendcloudIntegration, sandbox: SandboxServer, query: dict, field: str, message: Any
) -> None:
    response = reader.get(URL, query)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert field in errors
    if message is not None:
        assert errors[field] == [message]
    assert sendcloud_calls(sandbox) == []


def test_401_without_a_token_and_403_without_the_scope(shop: Shop, integration: SendcloudIntegration) -> None:
    assert APIClient().get(URL, {"country": "NL", "postal_code": "1012"}).status_code == 401
    pusher = APIClient()
    pusher.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[Scope.SHIPMENTS_PUSH])}")
    assert pusher.get(URL, {"country": "NL", "postal_code": "1012"}).status_code == 403


def test_update_order_refuses_a_pickup_method_for_an_order_without_a_point(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    from sendcloud_integration.models import ShippingOption
    from sendcloud_integration.shipping.catalogue import sync_catalogue
    from tests.factories import OrderFactory

    sync_catalogue(integration)
    pickup = ShippingOption.objects.get(integration=integration, code="postnl:standard/service_point")
    order = OrderFactory(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[Scope.SHIPMENTS_PUSH])}")
    body = {"order_id": order.pk, "shipping_method_id": pickup.pk, "weight": 1, "no_parcels": 1}

    refused = client.post("/api/services/webshop/v1/orders/update-order", body, format="json")
    assert refused.status_code == 422
    assert refused.json()["errors"] == {
        "service_point": [
            "Shipping method 'PostNL Pick-up Point' (postnl:standard/service_point) delivers to a service point, "
            "but the order has none chosen."
        ]
    }
    order.service_point_id = "1000001"
    order.save()
    assert client.post("/api/services/webshop/v1/orders/update-order", body, format="json").status_code == 200
