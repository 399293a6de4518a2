"""What a client sees when Redis is down or hung (issue #10, item 3), and the readiness check (item 4).

The rate-limit counters live in Redis. When they cannot be reached, every ``/api`` request is refused
with the documented 503 (docs/api.md, "Errors"): the error body, ``Retry-After``, the rate-limit headers
with nothing remaining, and nothing written. ``/readyz`` names the component that is down.

Each test points the service at a Redis of its own (``tests/redis_server.py``), never at the shared one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, PushChunk, SendcloudIntegration
from sendcloud_integration.push import services
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory
from tests.redis_server import RedisServer
from webshop.models import Shop

pytestmark = pytest.mark.django_db

BATCHES_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/"
UNAVAILABLE_BODY = {
    "error": True,
    "message": "The service cannot check its rate limit right now. Please try again in 5 seconds.",
}


def redis_cache(url: str) -> dict[str, Any]:
    """The production cache settings (wemasy/settings.py) pointed at ``url``."""
    from django.conf import settings

    timeout = settings.REDIS_REQUEST_TIMEOUT
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": settings.CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
        }
    }


@pytest.fixture(params=["killed", "hung"])
def redis_down(request: pytest.FixtureRequest, own_redis: RedisServer) -> RedisServer:
    """Our own Redis, killed (connections refused) or hung (connections accepted, never answered)."""
    if request.param == "killed":
        own_redis.kill()
    else:
        own_redis.hang()
    return own_redis


@pytest.fixture
def cache_down(settings: Any, redis_down: RedisServer) -> None:
    settings.CACHES = redis_cache(redis_down.url(0))


def assert_refused_for_want_of_a_rate_limit(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response.json() == UNAVAILABLE_BODY
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response["X-RateLimit-Limit"] == "60"
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["X-Request-ID"]


def existing_batch(shop: Shop) -> PushBatch:
    result = services.push_orders(
        shop=shop, order_ids=[OrderFactory(shop=shop).pk], create_label=False, actor=services.Actor.command("test")
    )
    return PushBatch.objects.get(pk=result.batch_id)


def test_a_push_is_refused_with_503_and_writes_nothing(
    cache_down: None, client_for: APIClient, shop: Shop, integration: SendcloudIntegration
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]

    response = client_for.post(PUSH_URL, {"create_label": False, "order_ids": [o.pk for o in orders]}, format="json")

    assert_refused_for_want_of_a_rate_limit(response)
    assert PushBatch.objects.count() == 0
    assert PushChunk.objects.count() == 0
    assert OrderShipment.objects.count() == 0


Request = Callable[[APIClient, Shop], Any]

ENDPOINTS: dict[str, tuple[bool, Request]] = {
    # name: (send the shop's token, the request)
    "push": (True, lambda c, s: c.post(PUSH_URL, {"create_label": False, "order_ids": [1]}, format="json")),
    "push without a token": (False, lambda c, s: c.post(PUSH_URL, {"order_ids": [1]}, format="json")),
    "push with an unknown token": (
        False,
        lambda c, s: c.post(PUSH_URL, {"order_ids": [1]}, format="json", HTTP_AUTHORIZATION="Bearer wms_dead_beef"),
    ),
    "push with a bad body": (True, lambda c, s: c.post(PUSH_URL, "not json", content_type="application/json")),
    "batch status": (True, lambda c, s: c.get(f"{BATCHES_URL}{existing_batch(s).pk}")),
    "an unknown batch": (True, lambda c, s: c.get(f"{BATCHES_URL}{uuid.uuid4()}")),
    "batch labels": (True, lambda c, s: c.get(f"{BATCHES_URL}{existing_batch(s).pk}/labels")),
    "schema": (False, lambda c, s: c.get("/api/schema/")),
    "docs": (False, lambda c, s: c.get("/api/docs/")),
    "an unknown URL under /api": (False, lambda c, s: c.get("/api/nothing/here")),
    "the wrong method": (True, lambda c, s: c.get(PUSH_URL)),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_api_endpoint_answers_the_documented_503(
    cache_down: None, token: str, shop: Shop, integration: SendcloudIntegration, endpoint: str
) -> None:
    with_token, send = ENDPOINTS[endpoint]
    client = APIClient()
    if with_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_refused_for_want_of_a_rate_limit(send(client, shop))


def test_pages_outside_the_api_do_not_depend_on_the_rate_limit(cache_down: None, api_client: APIClient) -> None:
    assert api_client.get("/healthz").status_code == 200
    assert api_client.get("/admin/login/").status_code == 200


def test_the_api_answers_again_once_the_cache_is_back(
    settings: Any, own_redis: RedisServer, client_for: APIClient, shop: Shop, integration: SendcloudIntegration
) -> None:
    settings.CACHES = redis_cache(own_redis.url(0))
    own_redis.kill()
    assert client_for.get(f"{BATCHES_URL}{uuid.uuid4()}").status_code == 503

    own_redis.restart()  # empty: the windows start again

    response = client_for.get(f"{BATCHES_URL}{uuid.uuid4()}")
    assert response.status_code == 404
    assert response["X-RateLimit-Remaining"] == "59"
    assert "Retry-After" not in response


# --- /readyz -----------------------------------------------------------------------------------------


def test_readyz_is_200_when_the_database_and_redis_answer(
    settings: Any, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, api_client: APIClient
) -> None:
    settings.CACHES = redis_cache(own_redis.url(0))
    monkeypatch.setenv("CELERY_BROKER_URL", own_redis.url(1))

    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "components": {"database": "ok", "cache": "ok", "broker": "ok"},
    }
    assert "X-RateLimit-Limit" not in response  # not under /api: no rate limit


def test_readyz_is_503_and_names_redis_when_it_is_down_and_the_database_is_up(
    settings: Any, redis_down: RedisServer, monkeypatch: pytest.MonkeyPatch, api_client: APIClient
) -> None:
    settings.CACHES = redis_cache(redis_down.url(0))
    monkeypatch.setenv("CELERY_BROKER_URL", redis_down.url(1))

    response = api_client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "components": {"database": "ok", "cache": "unavailable", "broker": "unavailable"},
    }
    assert api_client.get("/healthz").status_code == 200  # liveness: the process is fine, leave it running


def test_readyz_tells_the_cache_from_the_broker(
    settings: Any, redis_down: RedisServer, monkeypatch: pytest.MonkeyPatch, api_client: APIClient
) -> None:
    """Two Redis instances: the cache's answers, the broker's does not."""
    cache_server = RedisServer(redis_down.directory.parent / "cache-redis").start()
    try:
        settings.CACHES = redis_cache(cache_server.url(0))
        monkeypatch.setenv("CELERY_BROKER_URL", redis_down.url(1))

        response = api_client.get("/readyz")
    finally:
        cache_server.kill()

    assert response.status_code == 503
    assert response.json()["components"] == {"database": "ok", "cache": "ok", "broker": "unavailable"}


def test_the_schema_documents_the_503_and_its_retry_after(api_client: APIClient) -> None:
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    operations = [operation for path in paths.values() for operation in path.values()]
    assert len(operations) == 11  # every operation of the API, the sibling endpoints included
    for operation in operations:
        answer = operation["responses"]["503"]
        assert "Retry-After" in answer["headers"]
        assert "X-RateLimit-Remaining" in answer["headers"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
