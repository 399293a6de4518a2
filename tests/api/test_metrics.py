"""``GET /metrics``: who may read it, and that its numbers move when the service works.

Every scrape is parsed as Prometheus' text exposition format (prometheus-client's own parser), so a
malformed answer fails here the way it would fail Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import responses
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from sendcloud_integration.pipeline import batches
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud.types import CallRecord
from tests.conftest import PUSH_URL, requires_redis
from tests.factories import OrderFactory
from webshop.models import Shop
from wemasy import metrics

pytestmark = pytest.mark.django_db

TOKEN = "scrape-" + "x" * 24
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The scraper's view (a client of its own: an API client's token would replace the metrics token)."""
    response = APIClient().get("/metrics", **BEARER)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(autouse=True)
def _metrics_token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


def test_without_the_token_it_is_401_with_a_bearer_challenge(api_client: APIClient) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}):
        response = api_client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"wemasy_" not in response.content


def test_an_unset_token_refuses_in_production_and_says_what_to_set(api_client: APIClient, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    response = api_client.get("/metrics", **BEARER)
    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content
    settings.DEBUG = True
    assert api_client.get("/metrics").status_code == 200  # make run: no token needed


def test_a_push_moves_the_push_counters_and_the_shipment_gauge(
    client_for: APIClient, shop: Shop, integration: object
) -> None:
    orders = OrderFactory.create_batch(3, shop=shop)
    before = scrape()
    response = client_for.post(
        PUSH_URL, {"create_label": False, "order_ids": [o.pk for o in orders] + [orders[0].pk + 10**6]}, format="json"
    )
    assert response.status_code == 200
    after = scrape()

    pushes = value(after, "wemasy_pushes_total", door="api_token", outcome="queued")
    assert pushes - value(before, "wemasy_pushes_total", door="api_token", outcome="queued") == 1
    for category, moved in (("new", 3), ("skipped", 1), ("retry", 0)):
        name = "wemasy_push_orders_total"
        assert value(after, name, category=category) - value(before, name, category=category) == moved
    assert value(after, "wemasy_shipments", state="queued") == 3
    assert value(after, "wemasy_shipments", state="failed") == 0
    assert value(after, "wemasy_scrape_errors", source="database") == 0

    # The same push again queues nothing: a push of its own outcome.
    client_for.post(PUSH_URL, {"create_label": False, "order_ids": [orders[0].pk]}, format="json")
    again = scrape()
    name = "wemasy_pushes_total"
    assert (
        value(again, name, door="api_token", outcome="nothing_queued")
        - value(after, name, door="api_token", outcome="nothing_queued")
        == 1
    )


def test_a_refused_push_is_counted_as_refused(client_for: APIClient, shop: Shop) -> None:
    before = scrape()
    response = client_for.post(PUSH_URL, {"create_label": False, "order_ids": [1]}, format="json")
    assert response.status_code == 400  # no Sendcloud integration
    after = scrape()
    name = "wemasy_pushes_total"
    assert (
        value(after, name, door="api_token", outcome="refused")
        - value(before, name, door="api_token", outcome="refused")
        == 1
    )


def test_sendcloud_calls_are_counted_by_path_template_never_by_id(api_client: APIClient) -> None:
    forwarded: list[CallRecord] = []
    on_call = metrics.observe_sendcloud_calls(forwarded.append)
    before = scrape()
    on_call(CallRecord("GET", "/v3/shipments/9876543", 200, 120))
    on_call(CallRecord("POST", "/v3/orders", 429, 15, "rate limited"))
    on_call(CallRecord("GET", "/v3/parcels/55/documents/label", None, 30_000, "timeout"))
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert len(forwarded) == 3  # the call log still gets every record
    assert moved("wemasy_sendcloud_calls_total", method="GET", endpoint="/v3/shipments/{id}", status="200") == 1
    assert moved("wemasy_sendcloud_calls_total", method="POST", endpoint="/v3/orders", status="429") == 1
    assert moved("wemasy_sendcloud_rate_limited_total", method="POST", endpoint="/v3/orders") == 1
    label = {"method": "GET", "endpoint": "/v3/parcels/{id}/documents/label"}
    assert moved("wemasy_sendcloud_calls_total", **label, status="no_answer") == 1
    assert moved("wemasy_sendcloud_call_duration_seconds_count", **label) == 1
    assert moved("wemasy_sendcloud_call_duration_seconds_bucket", **label, le="30.0") == 1
    assert moved("wemasy_sendcloud_call_duration_seconds_bucket", **label, le="10.0") == 0
    assert not any("9876543" in str(key) or "55" in dict(key[1]).get("endpoint", "") for key in after)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v3/orders", "/v3/orders"),
        ("/v3/orders/create-labels-async", "/v3/orders/create-labels-async"),
        ("/v3/shipments/abc123", "/v3/shipments/{id}"),
        ("/v3/parcels/1/documents/label?paper_size=a6", "/v3/parcels/{id}/documents/label"),
    ],
)
def test_endpoint_template(path: str, template: str) -> None:
    assert metrics.endpoint_template(path) == template


@requires_redis
def test_queue_length_is_read_from_the_broker(api_client: APIClient, settings: Any) -> None:
    import redis

    queue = f"wemasy-test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_BROKER_URL = os.environ["REDIS_URL"]
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        client.rpush(queue, "m1", "m2", "m3")
        assert value(scrape(), "wemasy_celery_queue_length", queue=queue) == 3
    finally:
        client.delete(queue)
    scraped = scrape()
    assert value(scraped, "wemasy_celery_queue_length", queue=queue) == 0
    assert value(scraped, "wemasy_scrape_errors", source="broker") == 0


def test_an_unreachable_broker_leaves_the_queue_gauge_out_and_says_so(api_client: APIClient, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    scraped = scrape()
    assert value(scraped, "wemasy_scrape_errors", source="broker") == 1
    assert not any(name == "wemasy_celery_queue_length" for name, _ in scraped)
    assert ("wemasy_shipments", frozenset({("state", "queued")})) in scraped


RECORD = """
import sys
from wemasy import metrics
metrics.record_push(door="command", outcome="queued", new=int(sys.argv[1]))
"""


def test_multi_process_mode_adds_up_every_process_and_clears_only_dead_ones(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for new in (2, 5):
        subprocess.run([sys.executable, "-c", RECORD, str(new)], env=env, check=True, cwd=Path(__file__).parents[2])
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    total = {(s.name, frozenset(s.labels.items())): s.value for m in registry.collect() for s in m.samples}
    assert total[("wemasy_push_orders_total", frozenset({("category", "new")}))] == 7
    assert total[("wemasy_pushes_total", frozenset({("door", "command"), ("outcome", "queued")}))] == 2

    alive = tmp_path / f"counter_{os.getpid()}.db"
    alive.write_bytes(b"")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    try:
        assert metrics.clear_dead_processes() == 2  # the two exited processes' counter files
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert [p.name for p in tmp_path.iterdir()] == [alive.name]


@responses.activate
def test_a_worker_run_moves_the_pipeline_and_sendcloud_counters(shop: Shop, integration: object) -> None:
    def accept_all(request: Any) -> tuple[int, dict[str, str], str]:
        sent = json.loads(request.body)
        return 201, {}, json.dumps({"data": [{"id": 7000 + i, "order_id": o["order_id"]} for i, o in enumerate(sent)]})

    responses.add_callback(responses.POST, "https://sendcloud.test/api/v3/orders", callback=accept_all)
    orders = OrderFactory.create_batch(2, shop=shop)
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=False, actor=services.Actor.command("test")
    )
    assert result.batch_id is not None
    before = scrape()
    processing.process_chunk(batch_id=result.batch_id, chunk_number=1)
    processing.process_chunk(batch_id=result.batch_id, chunk_number=1)  # a redelivery: nothing to do
    batches.finish_batch(batch_id=result.batch_id)
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("wemasy_pipeline_orders_total", outcome="pushed") == 2
    assert moved("wemasy_chunks_total", outcome="done") == 1
    assert moved("wemasy_chunks_total", outcome="skipped") == 1
    assert moved("wemasy_sendcloud_calls_total", method="POST", endpoint="/v3/orders", status="201") == 1
    assert moved("wemasy_batch_duration_seconds_count", status="completed") == 1
    assert value(after, "wemasy_shipments", state="queued") == 0
