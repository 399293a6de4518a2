"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from sendcloud_integration.models import SendcloudIntegration
from tests.documents import dispatched  # noqa: F401 - a fixture for every test module
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.redis_server import own_redis  # noqa: F401 - a fixture for every test module
from webshop.models import Shop

PUSH_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/push"


def postgres_available() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


requires_postgres = pytest.mark.skipif(
    not postgres_available(), reason="needs PostgreSQL: set DATABASE_URL=postgres://… (make test does in CI)"
)
requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://… (make test does in CI)"
)


def clear_cache() -> None:
    """Forget this run's rate-limit counters and request budget, and nothing else.

    ``cache.clear()`` on Django's Redis cache is a ``FLUSHDB``: on a shared Redis it would wipe other
    runs' and other services' keys. With Redis, only the keys under this run's prefix are deleted.
    """
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        cache.clear()  # the file cache of this run's own var/
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Rate-limit counters and the request budget live in the cache: start every test with none."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def shop(db: None) -> Shop:
    return ShopFactory(slug="acme", name="Acme")


@pytest.fixture
def integration(shop: Shop) -> SendcloudIntegration:
    return SendcloudIntegrationFactory(shop=shop)


@pytest.fixture
def token(shop: Shop) -> str:
    return issue_token(shop)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
