"""The API rate limit is exact across several gunicorn processes (the counters live in Redis)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django_ratelimit.core import _get_window

from tests.conftest import PUSH_URL
from tests.factories import SendcloudIntegrationFactory, ShopFactory
from tests.integration.conftest import Stack, requires_stack
from webshop.models import ApiToken

pytestmark = [requires_stack, pytest.mark.integration]

LIMIT = 60
REQUESTS = 100


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {"API_RATE_LIMIT_PER_MINUTE": str(LIMIT), "WEB_CONCURRENCY": "4"}


def test_exactly_the_limit_succeeds_however_many_processes_serve_it(stack: Stack) -> None:
    shop = ShopFactory(slug="limits")
    SendcloudIntegrationFactory(shop=shop)
    issued = ApiToken.issue(shop=shop, name="burst")
    # Keep the burst inside one window: wait out a window that is about to end.
    seconds_left = _get_window(f"token:{issued.token.pk}", 60) - time.time()
    if seconds_left < 10:
        time.sleep(seconds_left + 1)

    def call(_: int) -> requests.Response:
        return requests.post(
            f"{stack.web_url}{PUSH_URL}",
            json={"create_label": False, "order_ids": [10**9]},  # no such order: a cheap 404
            headers={"Authorization": f"Bearer {issued.raw}"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(call, range(REQUESTS)))

    statuses = [r.status_code for r in responses]
    assert statuses.count(404) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in responses if r.status_code == 404)
    assert remaining == list(range(LIMIT)), "each allowed request saw its own, distinct count"
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
        if response.status_code == 429:
            assert response.headers["X-RateLimit-Remaining"] == "0"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["error"] is True
