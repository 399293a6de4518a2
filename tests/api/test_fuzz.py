"""Every ``/api`` endpoint against generated input (Schemathesis, from the project's own OpenAPI schema).

Whatever the body, query and path — valid, invalid, absurd — the answer is never a 5xx, and every error is
in the documented shape (``{"error": true, "message": …}``, or the 422 validation shape) with the
rate-limit headers. Requests carry a valid token of a shop with an integration and orders, so the
generated input reaches validation and the services, not only authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token

pytestmark = pytest.mark.django_db

EXAMPLES = 60


#: The schema as the service serves it (read once, through the WSGI app; no database involved).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Like Django's test client, requests keep the test's database connection: Django would close it at
    the end of each request, and with it the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(db: None, settings: Any) -> str:
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000  # the limit itself has its own tests
    shop = ShopFactory(slug="fuzz")
    SendcloudIntegrationFactory(shop=shop)
    OrderFactory.create_batch(3, shop=shop)
    return issue_token(shop)


def header(response: Any, name: str) -> str:
    values = response.headers.get(name.lower()) or []
    return str(values[0]) if values else ""


def assert_documented(response: Any) -> None:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:300]}"
    assert header(response, "X-RateLimit-Limit"), "rate-limit headers on every answer"
    assert header(response, "X-RateLimit-Remaining")
    assert header(response, "X-Request-ID")
    if status < 400:
        return
    body = response.json()
    if status == 422:
        assert set(body) == {"message", "errors"}
        assert isinstance(body["message"], str)
        assert isinstance(body["errors"], dict)
        assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body["errors"].values())
    else:
        assert body.get("error") is True, body
        assert isinstance(body.get("message"), str)
        assert body["message"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_5xx_or_an_undocumented_error(case: Any, fuzz_token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {fuzz_token}"})
    assert_documented(response)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_without_a_token_every_endpoint_answers_401_in_the_documented_shape(case: Any, fuzz_token: str) -> None:
    response = case.call(headers={"Authorization": "Bearer not-a-token"})
    assert_documented(response)
    if case.path.startswith("/api/services/"):
        assert response.status_code == 401
