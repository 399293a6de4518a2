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
from django.db import OperationalError, connection
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


Scraped = dict[tuple[str, frozenset[tuple[str, str]]], float]

#: What prometheus-client 0.26 sends (text format 1.0.0); docs/api.md names it, so a change must show here.
CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"


def scrape() -> Scraped:
    """The scraper's view (a client of its own: an API client's token would replace the metrics token)."""
    response = APIClient().get("/metrics", **BEARER)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == CONTENT_TYPE
    return samples(response.content.decode())


def value(scraped: Scraped, name: str, **labels: str) -> float:
    """One sample's value. A sample that is not there fails: a gauge left out is not a gauge at 0."""
    key = (name, frozenset(labels.items()))
    if key not in scraped:
        raise AssertionError(f"no sample {name}{labels} in the scrape")
    return scraped[key]


def moved(before: Scraped, after: Scraped, name: str, **labels: str) -> float:
    """How far a counter moved between two scrapes.

    A labelled counter's sample appears at its first increment, so one missing from ``before`` started at
    0, and one missing from both never moved. The metric itself must be in ``after`` (a misspelt or lost
    metric fails rather than reading 0), and a sample in ``before`` must still be in ``after``.
    """
    if not any(sample_name == name for sample_name, _ in after):
        raise AssertionError(f"no metric {name} in the scrape")
    key = (name, frozenset(labels.items()))
    if key not in before and key not in after:
        return 0.0
    return value(after, name, **labels) - before.get(key, 0.0)


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


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "head", "options"])
def test_anything_but_get_is_405_naming_get(method: str) -> None:
    response = getattr(APIClient(), method)("/metrics", **BEARER)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert b"wemasy_" not in response.content


def test_a_failing_database_leaves_the_shipment_gauge_out_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object) -> None:
        raise OperationalError("connection to server at 127.0.0.1 failed")

    with connection.execute_wrapper(refuse):  # every query of the scrape fails, as in an outage
        scraped = scrape()
    assert value(scraped, "wemasy_scrape_errors", source="database") == 1
    assert not any(name == "wemasy_shipments" for name, _ in scraped)
    assert ("wemasy_scrape_errors", frozenset({("source", "broker")})) in scraped  # the rest is still read
    assert "metrics: reading shipment states failed" in caplog.text
    assert value(scrape(), "wemasy_scrape_errors", source="database") == 0  # back once the database answers


def test_a_sample_left_out_is_not_read_as_zero() -> None:
    scraped = samples('# TYPE wemasy_shipments gauge\nwemasy_shipments{state="queued"} 0\n')
    assert value(scraped, "wemasy_shipments", state="queued") == 0
    with pytest.raises(AssertionError, match="no sample"):
        value(scraped, "wemasy_shipments", state="failed")
    with pytest.raises(AssertionError, match="no metric"):
        moved(scraped, scraped, "wemasy_shipment", state="queued")


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

    assert moved(before, after, "wemasy_pushes_total", door="api_token", outcome="queued") == 1
    for category, by in (("new", 3), ("skipped", 1), ("retry", 0)):
        assert moved(before, after, "wemasy_push_orders_total", category=category) == by
    assert value(after, "wemasy_shipments", state="queued") == 3
    assert value(after, "wemasy_shipments", state="failed") == 0
    assert value(after, "wemasy_scrape_errors", source="database") == 0

    # The same push again queues nothing: a push of its own outcome.
    client_for.post(PUSH_URL, {"create_label": False, "order_ids": [orders[0].pk]}, format="json")
    again = scrape()
    assert moved(after, again, "wemasy_pushes_total", door="api_token", outcome="nothing_queued") == 1


def test_a_refused_push_is_counted_as_refused(client_for: APIClient, shop: Shop) -> None:
    before = scrape()
    response = client_for.post(PUSH_URL, {"create_label": False, "order_ids": [1]}, format="json")
    assert response.status_code == 400  # no Sendcloud integration
    after = scrape()
    assert moved(before, after, "wemasy_pushes_total", door="api_token", outcome="refused") == 1


def test_sendcloud_calls_are_counted_by_path_template_never_by_id(api_client: APIClient) -> None:
    forwarded: list[CallRecord] = []
    on_call = metrics.observe_sendcloud_calls(forwarded.append)
    before = scrape()
    on_call(CallRecord("GET", "/v3/shipments/9876543", 200, 120))
    on_call(CallRecord("POST", "/v3/orders", 429, 15, "rate limited"))
    on_call(CallRecord("GET", "/v3/parcels/55/documents/label", None, 30_000, "timeout"))
    after = scrape()

    def since(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert len(forwarded) == 3  # the call log still gets every record
    assert since("wemasy_sendcloud_calls_total", method="GET", endpoint="/v3/shipments/{id}", status="200") == 1
    assert since("wemasy_sendcloud_calls_total", method="POST", endpoint="/v3/orders", status="429") == 1
    assert since("wemasy_sendcloud_rate_limited_total", method="POST", endpoint="/v3/orders") == 1
    label = {"method": "GET", "endpoint": "/v3/parcels/{id}/documents/label"}
    assert since("wemasy_sendcloud_calls_total", **label, status="no_answer") == 1
    assert since("wemasy_sendcloud_call_duration_seconds_count", **label) == 1
    assert since("wemasy_sendcloud_call_duration_seconds_bucket", **label, le="30.0") == 1
    assert since("wemasy_sendcloud_call_duration_seconds_bucket", **label, le="10.0") == 0
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

    def since(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert since("wemasy_pipeline_orders_total", outcome="pushed") == 2
    assert since("wemasy_chunks_total", outcome="done") == 1
    assert since("wemasy_chunks_total", outcome="skipped") == 1
    assert since("wemasy_sendcloud_calls_total", method="POST", endpoint="/v3/orders", status="201") == 1
    assert since("wemasy_batch_duration_seconds_count", status="completed") == 1
    assert value(after, "wemasy_shipments", state="queued") == 0
