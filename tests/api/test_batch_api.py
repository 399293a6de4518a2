"""The batch-progress endpoint: ``GET …/orders/sendcloud/shipments/batches/{id}``.

Batches are made by the real push service; progress is simulated by writing shipment rows directly,
as the workers would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from sendcloud_integration.models import (
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    Phase,
    PushBatch,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.push import services
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

BATCHES_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/"


def batch_url(batch_id: object) -> str:
    return f"{BATCHES_URL}{batch_id}"


def make_orders(shop: Shop, numbers: Sequence[str]) -> list[Order]:
    return [OrderFactory(shop=shop, order_number=number) for number in numbers]


def start_batch(shop: Shop, orders: Sequence[Order], *, create_label: bool = False) -> PushBatch:
    result = services.push_orders(
        shop=shop,
        order_ids=[order.pk for order in orders],
        create_label=create_label,
        actor=services.Actor.command("test"),
    )
    assert result.batch_id is not None
    return PushBatch.objects.get(pk=result.batch_id)


def set_state(order: Order, state: str, **fields: Any) -> None:
    OrderShipment.objects.filter(order=order).update(state=state, **fields)


def finish_chunks(batch: PushBatch, *numbers: int) -> None:
    PushChunk.objects.filter(batch=batch, number__in=numbers).update(status=ChunkStatus.DONE)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_error(response: Any, status: int, message: str | None = None) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] is True
    if message is not None:
        assert body["message"] == message
    assert response["X-RateLimit-Limit"] == "60"
    assert int(response["X-RateLimit-Remaining"]) >= 0


def assert_422(response: Any, field: str, message: str) -> None:
    assert response.status_code == 422, response.content
    assert response.json() == {"message": message, "errors": {field: [message]}}
    assert "X-RateLimit-Limit" in response


@pytest.fixture(autouse=True)
def _integration(integration: object) -> None:
    """Every test pushes through the real service, which needs the shop's integration."""


# --- auth, scope, not found ----------------------------------------------------------------------------


def test_missing_token_is_401(api_client: APIClient, shop: Shop) -> None:
    batch = start_batch(shop, make_orders(shop, ["A-1"]))
    response = api_client.get(batch_url(batch.pk))
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_without_scope_is_403(shop: Shop) -> None:
    batch = start_batch(shop, make_orders(shop, ["A-1"]))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[])}")
    response = client.get(batch_url(batch.pk))
    assert_error(response, 403)
    assert "shipments:push" in response.json()["message"]


def test_another_shops_batch_is_404_like_an_unknown_one(client_for: APIClient) -> None:
    other = ShopFactory(slug="other")
    SendcloudIntegrationFactory(shop=other)
    foreign = start_batch(other, make_orders(other, ["B-1"]))
    foreign_response = client_for.get(batch_url(foreign.pk))
    unknown_response = client_for.get(batch_url(uuid.uuid4()))
    assert_error(foreign_response, 404, "No such batch.")
    assert_error(unknown_response, 404, "No such batch.")
    assert foreign_response.json() == unknown_response.json()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "6f1c", f"{uuid.uuid4()}x", "%20"])
def test_ill_formed_id_is_the_same_404(client_for: APIClient, bad_id: str) -> None:
    assert_error(client_for.get(batch_url(bad_id)), 404, "No such batch.")


def test_404_comes_before_query_validation(client_for: APIClient) -> None:
    assert_error(client_for.get(batch_url(uuid.uuid4()), {"page": "0"}), 404, "No such batch.")


def test_rate_limit_applies_and_429_has_retry_after(client_for: APIClient, shop: Shop, settings: Any) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    batch = start_batch(shop, make_orders(shop, ["A-1"]))
    # The window is fixed to the clock: stop the clock so that the requests cannot straddle two windows.
    with mock.patch("django_ratelimit.core.time.time", return_value=float(int(time.time()))):
        remaining = [client_for.get(batch_url(batch.pk))["X-RateLimit-Remaining"] for _ in range(2)]
        response = client_for.get(batch_url(batch.pk))
    assert remaining == ["1", "0"]
    assert response.status_code == 429
    assert response.json()["error"] is True
    assert int(response["Retry-After"]) >= 1


def test_status_url_of_the_push_answer_leads_here(client_for: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    pushed = client_for.post(
        "/api/services/webshop/v1/orders/sendcloud/shipments/push",
        {"create_label": False, "order_ids": [order.pk]},
        format="json",
    ).json()
    response = client_for.get(pushed["batch"]["status_url"])
    assert response.status_code == 200
    assert response.json()["batch"]["id"] == pushed["batch"]["id"]


# --- the batch object ---------------------------------------------------------------------------------


def test_fresh_batch(client_for: APIClient, shop: Shop, settings: Any) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 2
    settings.SENDCLOUD_UNSAFE_PER_MINUTE = 2
    orders = make_orders(shop, ["A-3", "A-1", "A-2", "A-5", "A-4"])
    skipped = OrderFactory(shop=shop, order_number="Q-1", type=Order.Type.QUOTE)
    services.push_orders(
        shop=shop,
        order_ids=[o.pk for o in orders] + [skipped.pk, 10**9],
        create_label=True,
        actor=services.Actor.command("test"),
    )
    batch = PushBatch.objects.get()
    before = timezone.now()
    response = client_for.get(batch_url(batch.pk))
    after = timezone.now()
    assert response.status_code == 200, response.content
    assert response["X-RateLimit-Limit"] == "60"
    body = response.json()
    assert body["error"] is False
    data = body["batch"]
    estimate = parse_time(data.pop("estimated_completion_at"))
    assert parse_time(data.pop("created_at")) == batch.created_at
    assert data == {
        "id": str(batch.pk),
        "status": "queued",
        "create_label": True,
        "started_at": None,
        "finished_at": None,
        "started_by": {"kind": "command", "label": "command test"},
        "chunks": {"done": 0, "total": 3},
        "counts": {
            "requested": 7,
            "queued": 5,
            "new": 5,
            "retry": 0,
            "skipped": 2,
            "pushed": 0,
            "labelled": 0,
            "failed": 0,
            "in_flight": 5,
            "moved_to_later_batch": 0,
            "labels_available": 0,
            "by_state": {
                "queued": 5,
                "pushing": 0,
                "pushed": 0,
                "label_queued": 0,
                "labelling": 0,
                "labelled": 0,
                "failed": 0,
                "cancel_requested": 0,
                "cancelled": 0,
            },
        },
        "progress_percent": 0,
        "labels_url": None,
    }
    # 3 chunk upserts + ceil(5 / 20) = 1 label request = 4 POSTs, at 2 a minute: 2 minutes.
    assert before + timedelta(minutes=2) <= estimate <= after + timedelta(minutes=2, seconds=1)


def test_counts_per_state_and_chunks_while_running(client_for: APIClient, shop: Shop, settings: Any) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 3
    settings.SENDCLOUD_UNSAFE_PER_MINUTE = 1
    orders = make_orders(shop, [f"A-{n}" for n in range(1, 10)])  # 9 orders, 3 chunks
    batch = start_batch(shop, orders, create_label=True)
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, started_at=timezone.now())
    finish_chunks(batch, 1)
    set_state(orders[0], ShipmentState.LABELLED, label_file="labels/a1.pdf")
    set_state(orders[1], ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error="no service point")
    set_state(orders[2], ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="bad postcode")
    set_state(orders[3], ShipmentState.PUSHED)
    set_state(orders[4], ShipmentState.LABEL_QUEUED)
    set_state(orders[5], ShipmentState.LABELLING)
    set_state(orders[6], ShipmentState.PUSHING)
    # orders[7] and orders[8] stay queued

    before = timezone.now()
    data = client_for.get(batch_url(batch.pk)).json()["batch"]
    assert data["status"] == "running"
    assert data["started_at"] is not None
    assert data["chunks"] == {"done": 1, "total": 3}
    counts = data["counts"]
    assert counts["by_state"] == {
        "queued": 2,
        "pushing": 1,
        "pushed": 1,
        "label_queued": 1,
        "labelling": 1,
        "labelled": 1,
        "failed": 2,
        "cancel_requested": 0,
        "cancelled": 0,
    }
    assert (counts["pushed"], counts["labelled"], counts["failed"], counts["in_flight"]) == (4, 1, 2, 5)
    assert counts["labels_available"] == 1
    assert data["labels_url"] == f"http://testserver{batch_url(batch.pk)}/labels"
    # Labels are wanted, so only labelled and failed orders are done: 3 of 9.
    assert data["progress_percent"] == 33
    # 2 unfinished chunks + ceil(5 orders without a label request / 20) = 3 POSTs at 1 a minute.
    estimate = parse_time(data["estimated_completion_at"])
    assert before + timedelta(minutes=3) <= estimate <= timezone.now() + timedelta(minutes=3, seconds=1)


def test_finished_batch_has_no_estimate(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, ["A-1", "A-2", "A-3"])
    batch = start_batch(shop, orders)
    finish_chunks(batch, 1)
    set_state(orders[0], ShipmentState.PUSHED)
    set_state(orders[1], ShipmentState.PUSHED)
    set_state(orders[2], ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="bad")
    batches.finish_batch(batch_id=batch.pk)

    data = client_for.get(batch_url(batch.pk)).json()["batch"]
    assert data["status"] == "completed_with_errors"
    assert data["finished_at"] is not None
    assert data["estimated_completion_at"] is None
    assert data["progress_percent"] == 100
    assert data["chunks"] == {"done": 1, "total": 1}
    assert (data["counts"]["pushed"], data["counts"]["failed"], data["counts"]["in_flight"]) == (2, 1, 0)


def test_all_work_done_but_not_yet_finished_is_estimated_now(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, ["A-1"])
    batch = start_batch(shop, orders)
    finish_chunks(batch, 1)
    set_state(orders[0], ShipmentState.PUSHED)
    before = timezone.now()
    data = client_for.get(batch_url(batch.pk)).json()["batch"]
    assert before <= parse_time(data["estimated_completion_at"]) <= timezone.now()
    assert data["progress_percent"] == 99  # 100 only once the batch is marked finished


def test_orders_moved_to_a_later_batch_are_counted_as_such(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, ["A-1", "A-2"])
    first = start_batch(shop, orders)
    set_state(orders[0], ShipmentState.PUSHED)
    set_state(orders[1], ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="bad")
    start_batch(shop, [orders[1]])  # the retry re-queues the failed order in a new batch

    body = client_for.get(batch_url(first.pk)).json()
    assert body["batch"]["counts"]["moved_to_later_batch"] == 1
    assert body["batch"]["counts"]["failed"] == 0
    assert [o["order_number"] for o in body["orders"]["results"]] == ["A-1"]


# --- the orders -----------------------------------------------------------------------------------------


def test_order_results_by_order_number(client_for: APIClient, shop: Shop, settings: Any) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 2
    orders = make_orders(shop, ["B-2", "A-9", "B-1"])  # queued in this order: chunks 1, 1, 2
    batch = start_batch(shop, orders, create_label=True)
    set_state(
        orders[0],
        ShipmentState.LABELLED,
        attempts=1,
        tracking_number="3SABC123",
        tracking_url="https://track.example/3SABC123",
        label_file="labels/b2.pdf",
    )
    set_state(orders[1], ShipmentState.FAILED, attempts=2, failed_phase=Phase.PUSH, last_error="Invalid postcode.")

    body = client_for.get(batch_url(batch.pk)).json()["orders"]
    labels = f"http://testserver{batch_url(batch.pk)}/labels"
    assert body == {
        "count": 3,
        "page": 1,
        "page_size": 100,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": orders[1].pk,
                "order_number": "A-9",
                "state": "failed",
                "failed_phase": "push",
                "error": "Invalid postcode.",
                "attempts": 2,
                "tracking_number": None,
                "tracking_url": None,
                "label_url": None,
                "chunk": 1,
                "service_point": None,
                "customs": None,
                "documents": [],
                "parcels": [],
            },
            {
                "id": orders[2].pk,
                "order_number": "B-1",
                "state": "queued",
                "failed_phase": None,
                "error": None,
                "attempts": 0,
                "tracking_number": None,
                "tracking_url": None,
                "label_url": None,
                "chunk": 2,
                "service_point": None,
                "customs": None,
                "documents": [],
                "parcels": [],
            },
            {
                "id": orders[0].pk,
                "order_number": "B-2",
                "state": "labelled",
                "failed_phase": None,
                "error": None,
                "attempts": 1,
                "tracking_number": "3SABC123",
                "tracking_url": "https://track.example/3SABC123",
                "label_url": f"{labels}?order={orders[0].pk}",
                "chunk": 1,
                "service_point": None,
                "customs": None,
                "documents": ["label"],
                "parcels": [],
            },
        ],
    }


def test_each_order_shows_its_service_point_and_customs_data(client_for: APIClient, shop: Shop) -> None:
    SendcloudIntegration.objects.filter(shop=shop).update(customs_export_type="commercial_b2b")
    pickup = OrderFactory(shop=shop, order_number="D-1", service_point_id="1000003", service_point_post_number="77")
    swiss = OrderFactory(
        shop=shop,
        order_number="D-2",
        customs_invoice_number="INV-4",
        address={"country": "CH", "postal_code": "8001", "city": "Zürich"},
    )
    canary = OrderFactory(shop=shop, order_number="D-3", address={"country": "ES", "postal_code": "35001"})
    batch = start_batch(shop, [pickup, swiss, canary])

    results = {o["order_number"]: o for o in client_for.get(batch_url(batch.pk)).json()["orders"]["results"]}

    assert results["D-1"]["service_point"] == {"id": "1000003", "carrier_point_id": None, "post_number": "77"}
    assert results["D-1"]["customs"] is None
    assert results["D-2"]["service_point"] is None
    assert results["D-2"]["customs"] == {
        "destination": "CH",
        "invoice_number": "INV-4",
        "shipment_type": "commercial_goods",
        "export_type": "commercial_b2b",  # the shop's default
    }
    assert results["D-3"]["customs"]["destination"] == "the Canary Islands"
    assert results["D-3"]["customs"]["invoice_number"] is None


def test_customs_shows_the_shops_current_defaults_not_a_copy_of_what_was_sent(
    client_for: APIClient, shop: Shop
) -> None:
    swiss = OrderFactory(shop=shop, address={"country": "CH", "postal_code": "8001", "city": "Zürich"})
    batch = start_batch(shop, [swiss])
    set_state(swiss, ShipmentState.PUSHED)
    SendcloudIntegration.objects.filter(shop=shop).update(customs_export_type="commercial_b2b")  # after the push

    [result] = client_for.get(batch_url(batch.pk)).json()["orders"]["results"]

    assert result["customs"]["export_type"] == "commercial_b2b"  # as docs/api.md says: current data


def test_each_order_says_which_documents_it_has(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, ["C-1", "C-2", "C-3"])
    batch = start_batch(shop, orders, create_label=True)
    set_state(orders[0], ShipmentState.LABELLED, label_file="labels/c1.pdf", customs_declaration="customs/c1.pdf")
    set_state(orders[1], ShipmentState.LABELLED, label_file="labels/c2.pdf")

    results = client_for.get(batch_url(batch.pk)).json()["orders"]["results"]

    assert {o["order_number"]: o["documents"] for o in results} == {
        "C-1": ["label", "customs_declaration"],
        "C-2": ["label"],
        "C-3": [],
    }


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def page_of(url: str | None) -> str | None:
    if url is None:
        return None
    return parse_qs(urlsplit(url).query).get("page", ["1"])[0]


def test_pagination_with_links(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, [f"A-{n}" for n in range(1, 6)])
    batch = start_batch(shop, orders)
    url = batch_url(batch.pk)

    first = client_for.get(url, {"page_size": 2}).json()["orders"]
    assert [o["order_number"] for o in first["results"]] == ["A-1", "A-2"]
    assert (first["count"], first["page"], first["page_size"]) == (5, 1, 2)
    assert first["previous"] is None
    assert query_of(first["next"]) == {"page_size": ["2"], "page": ["2"]}
    assert first["next"].startswith(f"http://testserver{url}?")

    second = client_for.get(first["next"]).json()["orders"]
    assert [o["order_number"] for o in second["results"]] == ["A-3", "A-4"]
    assert page_of(second["next"]) == "3"
    assert second["previous"] == f"http://testserver{url}?page_size=2"  # page 1 needs no page

    last = client_for.get(second["next"]).json()["orders"]
    assert [o["order_number"] for o in last["results"]] == ["A-5"]
    assert last["next"] is None
    assert page_of(last["previous"]) == "2"

    beyond = client_for.get(url, {"page_size": 2, "page": 9}).json()["orders"]
    assert beyond["results"] == []
    assert beyond["next"] is None
    assert page_of(beyond["previous"]) == "3"  # the last page that has orders


def test_page_size_defaults_to_100_and_is_capped_at_1000(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, [f"A-{n:03d}" for n in range(101)])
    batch = start_batch(shop, orders)
    url = batch_url(batch.pk)
    default = client_for.get(url).json()["orders"]
    assert (len(default["results"]), default["page_size"], page_of(default["next"])) == (100, 100, "2")
    largest = client_for.get(url, {"page_size": 1000}).json()["orders"]
    assert (len(largest["results"]), largest["next"]) == (101, None)
    assert_422(
        client_for.get(url, {"page_size": 1001}), "page_size", "The page_size field must not be greater than 1000."
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"page": "0"}, "page", "The page field must be at least 1."),
        ({"page": "-2"}, "page", "The page field must be at least 1."),
        ({"page": "abc"}, "page", "The page field must be an integer."),
        ({"page": "1.5"}, "page", "The page field must be an integer."),
        ({"page": "2.0"}, "page", "The page field must be an integer."),
        ({"page": " 1"}, "page", "The page field must be an integer."),
        ({"page": "9" * 30}, "page", "The page field must be an integer."),
        ({"page_size": "0"}, "page_size", "The page_size field must be at least 1."),
        ({"page_size": "x"}, "page_size", "The page_size field must be an integer."),
        ({"state": "lost"}, "state", "The selected state is invalid."),
    ],
)
def test_invalid_query_is_422(client_for: APIClient, shop: Shop, params: dict, field: str, message: str) -> None:
    batch = start_batch(shop, make_orders(shop, ["A-1"]))
    assert_422(client_for.get(batch_url(batch.pk), params), field, message)


def test_several_invalid_parameters_are_summarised(client_for: APIClient, shop: Shop) -> None:
    batch = start_batch(shop, make_orders(shop, ["A-1"]))
    response = client_for.get(batch_url(batch.pk), {"page": "0", "page_size": "5000"})
    assert response.status_code == 422
    assert response.json()["message"] == "The page field must be at least 1. (and 1 more error)"
    assert set(response.json()["errors"]) == {"page", "page_size"}


def test_state_filter(client_for: APIClient, shop: Shop) -> None:
    orders = make_orders(shop, [f"A-{n}" for n in range(1, 6)])
    batch = start_batch(shop, orders)
    for order in (orders[4], orders[1], orders[3]):
        set_state(order, ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="bad")
    set_state(orders[0], ShipmentState.PUSHED)

    body = client_for.get(batch_url(batch.pk), {"state": "failed", "page_size": 2}).json()
    page = body["orders"]
    assert page["count"] == 3
    assert [o["order_number"] for o in page["results"]] == ["A-2", "A-4"]
    assert {o["state"] for o in page["results"]} == {"failed"}
    assert query_of(page["next"]) == {"state": ["failed"], "page_size": ["2"], "page": ["2"]}
    assert body["batch"]["counts"]["failed"] == 3  # the counts are always the whole batch's

    assert client_for.get(batch_url(batch.pk), {"state": "labelled"}).json()["orders"]["count"] == 0


def count_queries(client: APIClient, url: str, params: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_depend_on_page_size(client_for: APIClient, shop: Shop, settings: Any) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 5
    orders = make_orders(shop, [f"A-{n:02d}" for n in range(30)])
    batch = start_batch(shop, orders, create_label=True)
    for order in orders[:10]:
        set_state(order, ShipmentState.LABELLED, label_file=f"labels/{order.pk}.pdf", tracking_number="3S")
    for order in orders[10:15]:
        set_state(order, ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error="no label")
    url = batch_url(batch.pk)
    client_for.get(url)  # the token's last-use write happens once
    one = count_queries(client_for, url, {"page_size": 1})
    assert one == count_queries(client_for, url, {"page_size": 1000})
    assert one == count_queries(client_for, url, {"page_size": 7, "page": 2, "state": "labelled"})
    assert one <= 7  # token, batch, chunks done, counts per state, one page, its parcels, the customs defaults
