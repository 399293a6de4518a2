"""The push endpoint against its contract (docs/api.md): status codes, headers, bodies."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, PushChunk, ShipmentState
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from webshop.models import ApiToken, Order, Shop

pytestmark = pytest.mark.django_db


def push(client: APIClient, body: Any = None, **extra: Any) -> Any:
    return client.post(PUSH_URL, body if body is not None else {}, format="json", **extra)


def assert_rate_headers(response: Any) -> None:
    assert response["X-RateLimit-Limit"] == "60"
    assert int(response["X-RateLimit-Remaining"]) >= 0


def assert_error_body(response: Any, status: int) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] is True
    assert isinstance(body["message"], str)
    assert body["message"]
    assert_rate_headers(response)


def nothing_changed() -> None:
    assert PushBatch.objects.count() == 0
    assert OrderShipment.objects.count() == 0


# --- 401 / 403 -------------------------------------------------------------------------------------


def test_missing_token_is_401_with_bearer_challenge(api_client: APIClient, integration: object) -> None:
    response = push(api_client, {"create_label": False, "order_ids": [1]})
    assert_error_body(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    nothing_changed()


@pytest.mark.parametrize(
    "header",
    ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz", "Bearer wms_deadbeef_nope", "Bearer ünïcode"],
)
def test_malformed_or_unknown_token_is_401(api_client: APIClient, integration: object, header: str) -> None:
    response = push(api_client, {"create_label": False, "order_ids": [1]}, HTTP_AUTHORIZATION=header)
    assert_error_body(response, 401)


def test_revoked_token_is_401(client_for: APIClient, integration: object) -> None:
    ApiToken.objects.update(revoked_at="2026-01-01T00:00:00Z")
    response = push(client_for, {"create_label": False, "order_ids": [1]})
    assert_error_body(response, 401)
    assert "revoked" in response.json()["message"]


def test_token_of_right_prefix_but_wrong_secret_is_401(token: str, integration: object) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[:-4]}xxxx")
    assert_error_body(push(client, {"create_label": False, "order_ids": [1]}), 401)


def test_token_without_scope_is_403(shop: Shop, integration: object) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[])}")
    response = push(client, {"create_label": False, "order_ids": [1]})
    assert_error_body(response, 403)
    assert "shipments:push" in response.json()["message"]


def test_disabled_shop_is_403(client_for: APIClient, shop: Shop, integration: object) -> None:
    Shop.objects.filter(pk=shop.pk).update(is_active=False)
    response = push(client_for, {"create_label": False, "order_ids": [1]})
    assert_error_body(response, 403)
    assert "disabled" in response.json()["message"]


def test_401_comes_before_validation(api_client: APIClient) -> None:
    assert push(api_client, {"nonsense": True}).status_code == 401


def test_403_comes_before_validation(shop: Shop) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=['other'])}")
    assert push(client, {"nonsense": True}).status_code == 403


def test_last_used_is_recorded(client_for: APIClient, integration: object) -> None:
    push(client_for, {"create_label": False, "order_ids": [1]})
    assert ApiToken.objects.get().last_used_at is not None


# --- 429 and the headers -----------------------------------------------------------------------------


def test_limit_counts_down_then_429_with_retry_after(client_for: APIClient, settings: Any, integration: object) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    order = OrderFactory(shop=integration.shop)  # type: ignore[attr-defined]
    remaining = []
    for _ in range(3):
        response = push(client_for, {"create_label": False, "order_ids": [order.pk]})
        assert response["X-RateLimit-Limit"] == "3"
        remaining.append(response["X-RateLimit-Remaining"])
        assert "Retry-After" not in response
    assert remaining == ["2", "1", "0"]
    response = push(client_for, {"create_label": False, "order_ids": [order.pk]})
    assert response.status_code == 429
    assert response.json()["error"] is True
    assert response["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_429_comes_after_auth_and_changes_nothing(client_for: APIClient, settings: Any, shop: Shop) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    order = OrderFactory(shop=shop)
    SendcloudIntegrationFactory(shop=shop)
    push(client_for, {"create_label": False, "order_ids": [order.pk + 1000]})
    response = push(client_for, {"create_label": False, "order_ids": [order.pk]})
    assert response.status_code == 429
    nothing_changed()


def test_each_token_has_its_own_window(shop: Shop, settings: Any, integration: object) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop)}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop)}")
    assert push(first, {"create_label": False, "order_ids": [1]}).status_code == 404
    assert push(first, {"create_label": False, "order_ids": [1]}).status_code == 429
    assert push(second, {"create_label": False, "order_ids": [1]}).status_code == 404


def test_anonymous_and_bad_token_requests_are_limited_per_ip(api_client: APIClient, settings: Any, db: None) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    assert push(api_client).status_code == 401
    assert push(api_client, HTTP_AUTHORIZATION="Bearer wms_deadbeef_guess").status_code == 401
    response = push(api_client, HTTP_AUTHORIZATION="Bearer wms_deadbeef_guess2")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    other_ip = push(api_client, REMOTE_ADDR="10.9.8.7")
    assert other_ip.status_code == 401


def test_unknown_api_url_is_json_404_with_headers(api_client: APIClient, db: None) -> None:
    response = api_client.get("/api/services/webshop/v1/nothing-here")
    assert_error_body(response, 404)


def test_500_names_request_id_and_leaks_nothing(client_for: APIClient, integration: object, caplog: Any) -> None:
    boom = RuntimeError("SELECT secret_key FROM sendcloud_integration -- sandbox-secret")
    with mock.patch("sendcloud_integration.api.views.push_orders", side_effect=boom):
        response = push(client_for, {"create_label": False, "order_ids": [1]})
    assert_error_body(response, 500)
    text = response.content.decode()
    for leak in ("secret", "SELECT", "Traceback"):
        assert leak not in text
    request_id = response["X-Request-ID"]
    assert request_id in response.json()["message"]
    assert any("Unhandled error" in r.getMessage() for r in caplog.records)


def test_caller_request_id_is_echoed(client_for: APIClient, integration: object) -> None:
    response = push(client_for, {"create_label": False, "order_ids": [1]}, HTTP_X_REQUEST_ID="trace-12345678")
    assert response["X-Request-ID"] == "trace-12345678"


# --- 400 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"create_label": false, "order_ids": [1', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("", "application/json"),
        ("create_label=0&order_ids=1", "application/x-www-form-urlencoded"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(
    client_for: APIClient, integration: object, body: str, content_type: str
) -> None:
    response = client_for.generic("POST", PUSH_URL, body, content_type=content_type)
    assert_error_body(response, 400)
    nothing_changed()


def test_no_integration_is_400(client_for: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    response = push(client_for, {"create_label": False, "order_ids": [order.pk]})
    assert_error_body(response, 400)
    assert "integration" in response.json()["message"]
    nothing_changed()


@pytest.mark.parametrize(
    ("overrides", "word"), [({"is_active": False}, "inactive"), ({"secret_key": ""}, "credentials")]
)
def test_unusable_integration_is_400(client_for: APIClient, shop: Shop, overrides: dict, word: str) -> None:
    SendcloudIntegrationFactory(shop=shop, **overrides)
    order = OrderFactory(shop=shop)
    response = push(client_for, {"create_label": False, "order_ids": [order.pk]})
    assert_error_body(response, 400)
    assert word in response.json()["message"]
    nothing_changed()


def test_integration_check_comes_after_validation(client_for: APIClient, shop: Shop) -> None:
    assert push(client_for, {"create_label": "maybe", "order_ids": [1]}).status_code == 422


# --- 404 ---------------------------------------------------------------------------------------------


def test_no_order_of_this_shop_is_404(client_for: APIClient, integration: object) -> None:
    other_order = OrderFactory(shop=ShopFactory())
    response = push(client_for, {"create_label": False, "order_ids": [other_order.pk, 999_999]})
    assert_error_body(response, 404)
    nothing_changed()
    assert not OrderShipment.objects.filter(order=other_order).exists()


# --- 422 ---------------------------------------------------------------------------------------------


def test_missing_fields(client_for: APIClient, integration: object) -> None:
    response = push(client_for, {"unknown": 1})
    assert response.status_code == 422
    assert_rate_headers(response)
    body = response.json()
    assert body == {
        "message": "The create_label field is required. (and 1 more error)",
        "errors": {
            "create_label": ["The create_label field is required."],
            "order_ids": ["The order_ids field is required."],
        },
    }


@pytest.mark.parametrize("value", [True, False, 1, 0, "1", "0", "true", "false"])
def test_accepted_booleans(client_for: APIClient, integration: object, value: Any) -> None:
    order = OrderFactory(shop=integration.shop)  # type: ignore[attr-defined]
    response = push(client_for, {"create_label": value, "order_ids": [order.pk]})
    assert response.status_code == 200, response.content
    expected = "yes" if value in (True, 1, "1", "true") else "no"
    assert response.json()["labels_will_be_created"] == expected


@pytest.mark.parametrize("value", ["yes", "no", "True", 2, -1, 1.0, 0.5, None, [], {}, ""])
def test_rejected_booleans(client_for: APIClient, integration: object, value: Any) -> None:
    response = push(client_for, {"create_label": value, "order_ids": [1]})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert list(errors) == ["create_label"]
    nothing_changed()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (True, "The order_ids.1 field must be an integer."),
        (False, "The order_ids.1 field must be an integer."),
        (1.5, "The order_ids.1 field must be an integer."),
        (2.0, "The order_ids.1 field must be an integer."),
        (None, "The order_ids.1 field must be an integer."),
        ({"id": 3}, "The order_ids.1 field must be an integer."),
        ([3], "The order_ids.1 field must be an integer."),
        ("abc", "The order_ids.1 field must be an integer."),
        ("-3", "The order_ids.1 field must be an integer."),
        ("4.0", "The order_ids.1 field must be an integer."),
        (" 4", "The order_ids.1 field must be an integer."),
        ("٣", "The order_ids.1 field must be an integer."),
        (0, "The order_ids.1 field must be at least 1."),
        (-7, "The order_ids.1 field must be at least 1."),
        (2**63, "The order_ids.1 field must not be greater than 9223372036854775807."),
    ],
)
def test_rejected_order_id_items_are_keyed_by_index(
    client_for: APIClient, integration: object, bad: Any, message: str
) -> None:
    response = push(client_for, {"create_label": False, "order_ids": [1, bad]})
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"order_ids.1": [message]}}


def test_numeric_strings_are_ids(client_for: APIClient, integration: object) -> None:
    order = OrderFactory(shop=integration.shop)  # type: ignore[attr-defined]
    response = push(client_for, {"create_label": "0", "order_ids": [str(order.pk)]})
    assert response.status_code == 200
    assert response.json()["details"]["queued_orders"][0]["id"] == order.pk


@pytest.mark.parametrize(
    ("order_ids", "message"),
    [
        ([], "The order_ids field must have at least 1 item."),
        ("1,2,3", "The order_ids field must be an array."),
        (5, "The order_ids field must be an array."),
        ({"0": 1}, "The order_ids field must be an array."),
        (None, "The order_ids field is required."),
    ],
)
def test_order_ids_must_be_a_non_empty_array(
    client_for: APIClient, integration: object, order_ids: Any, message: str
) -> None:
    response = push(client_for, {"create_label": False, "order_ids": order_ids})
    assert response.status_code == 422
    assert response.json()["errors"] == {"order_ids": [message]}


def test_more_than_max_ids_is_422(client_for: APIClient, integration: object) -> None:
    response = push(client_for, {"create_label": False, "order_ids": list(range(1, 10_002))})
    assert response.status_code == 422
    assert response.json()["errors"] == {"order_ids": ["The order_ids field must not have more than 10000 items."]}


def test_exactly_max_ids_is_accepted(client_for: APIClient, integration: object, settings: Any) -> None:
    settings.PUSH_MAX_ORDER_IDS = 5
    order = OrderFactory(shop=integration.shop)  # type: ignore[attr-defined]
    ids = [order.pk, 10**9, 10**9 + 1, 10**9 + 2, 10**9 + 3]
    assert push(client_for, {"create_label": False, "order_ids": ids}).status_code == 200
    response = push(client_for, {"create_label": False, "order_ids": [*ids, 10**9 + 4]})
    assert response.status_code == 422
    assert "more than 5 items" in response.json()["message"]


def test_many_errors_are_summarised_laravel_style(client_for: APIClient, integration: object) -> None:
    response = push(client_for, {"create_label": "x", "order_ids": [1, "a", True]})
    body = response.json()
    assert response.status_code == 422
    assert body["message"] == "The create_label field must be true or false. (and 2 more errors)"
    assert set(body["errors"]) == {"create_label", "order_ids.1", "order_ids.2"}


# --- 200 ---------------------------------------------------------------------------------------------


def make_orders(shop: Shop, n: int, **kwargs: Any) -> list[Order]:
    return [OrderFactory(shop=shop, **kwargs) for _ in range(n)]


def test_summary_details_and_state(client_for: APIClient, integration: object, shop: Shop) -> None:
    new1, new2 = make_orders(shop, 2)
    retry = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=retry, shop=shop, state=ShipmentState.FAILED, last_error="boom")
    pushed = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=pushed, shop=shop, state=ShipmentState.PUSHED)
    response = push(client_for, {"create_label": False, "order_ids": [new1.pk, new2.pk, retry.pk, pushed.pk]})
    assert response.status_code == 200
    assert_rate_headers(response)
    body = response.json()
    batch = PushBatch.objects.get()
    assert body == {
        "error": False,
        "message": "3 orders queued for SendCloud in 1 chunk.",
        "summary": {"total_orders": 4, "new_orders": 2, "retry_orders": 1, "skipped_orders": 1, "queued_orders": 3},
        "details": {
            "new_orders": [new1.order_number, new2.order_number],
            "retry_orders": [retry.order_number],
            "skipped_orders": [f"{pushed.order_number}: already pushed to SendCloud"],
            "queued_orders": [
                {"id": new1.pk, "order_number": new1.order_number, "chunk": 1},
                {"id": new2.pk, "order_number": new2.order_number, "chunk": 1},
                {"id": retry.pk, "order_number": retry.order_number, "chunk": 1},
            ],
        },
        "total_chunks": 1,
        "labels_will_be_created": "no",
        "batch": {
            "id": str(batch.pk),
            "status_url": f"http://testserver/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch.pk}",
        },
    }
    states = dict(OrderShipment.objects.values_list("order_id", "state"))
    assert states == {
        new1.pk: ShipmentState.QUEUED,
        new2.pk: ShipmentState.QUEUED,
        retry.pk: ShipmentState.QUEUED,
        pushed.pk: ShipmentState.PUSHED,
    }
    assert (batch.queued_orders, batch.new_orders, batch.retry_orders, batch.skipped_orders) == (3, 2, 1, 1)
    assert batch.started_by_token is not None
    assert OrderShipment.objects.get(order=retry).last_error == "boom"  # history kept until the new outcome


def test_every_skip_reason(client_for: APIClient, integration: object, shop: Shop) -> None:
    quote = OrderFactory(shop=shop, type=Order.Type.QUOTE)
    cancelled = OrderFactory(shop=shop, status=Order.Status.CANCELLED)
    homeless = OrderFactory(shop=shop, address=False)
    in_flight = OrderFactory(shop=shop)
    labelled = OrderFactory(shop=shop)
    pushed = OrderFactory(shop=shop)
    foreign = OrderFactory(shop=ShopFactory())
    running = PushBatch.objects.create(shop=shop, started_by_kind="command")
    OrderShipment.objects.create(order=in_flight, shop=shop, state=ShipmentState.PUSHING, batch=running)
    OrderShipment.objects.create(order=labelled, shop=shop, state=ShipmentState.LABELLED)
    OrderShipment.objects.create(order=pushed, shop=shop, state=ShipmentState.PUSHED)
    ids = [quote.pk, cancelled.pk, homeless.pk, in_flight.pk, labelled.pk, pushed.pk, foreign.pk, 987654]
    body = push(client_for, {"create_label": False, "order_ids": ids}).json()
    assert body["details"]["skipped_orders"] == [
        f"{quote.order_number}: quote orders cannot be shipped",
        f"{cancelled.order_number}: order status is cancelled",
        f"{homeless.order_number}: no shipping address",
        f"{in_flight.order_number}: already queued in batch {running.pk}",
        f"{labelled.order_number}: label already created",
        f"{pushed.order_number}: already pushed to SendCloud",
        f"#{foreign.pk}: order not found",
        "#987654: order not found",
    ]
    assert body["summary"]["queued_orders"] == 0
    assert body["total_chunks"] == 0
    assert body["batch"] is None
    assert body["labels_will_be_created"] == "no"
    assert body["message"] == "No orders queued for SendCloud: all 8 orders were skipped."
    assert PushBatch.objects.count() == 1  # only the one made by this test


def test_pushed_order_without_label_is_new_when_labels_are_asked(
    client_for: APIClient, integration: object, shop: Shop
) -> None:
    pushed = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=pushed, shop=shop, state=ShipmentState.PUSHED)
    body = push(client_for, {"create_label": True, "order_ids": [pushed.pk]}).json()
    assert body["details"]["new_orders"] == [pushed.order_number]
    assert body["labels_will_be_created"] == "yes"


def test_label_failure_is_a_retry(client_for: APIClient, integration: object, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    OrderShipment.objects.create(order=order, shop=shop, state=ShipmentState.FAILED, failed_phase="label")
    body = push(client_for, {"create_label": True, "order_ids": [order.pk]}).json()
    assert body["details"]["retry_orders"] == [order.order_number]


@pytest.mark.parametrize("status", ["paid", "payment_received", "completed"])
def test_shippable_statuses(client_for: APIClient, integration: object, shop: Shop, status: str) -> None:
    order = OrderFactory(shop=shop, status=status)
    assert push(client_for, {"create_label": False, "order_ids": [order.pk]}).json()["summary"]["new_orders"] == 1


def test_duplicates_count_once(client_for: APIClient, integration: object, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    body = push(client_for, {"create_label": False, "order_ids": [order.pk, str(order.pk), order.pk]}).json()
    assert body["summary"] == {
        "total_orders": 1,
        "new_orders": 1,
        "retry_orders": 0,
        "skipped_orders": 0,
        "queued_orders": 1,
    }


def test_chunks(client_for: APIClient, integration: object, shop: Shop, settings: Any) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 2
    orders = make_orders(shop, 5)
    body = push(client_for, {"create_label": True, "order_ids": [o.pk for o in orders]}).json()
    assert body["total_chunks"] == 3
    assert [q["chunk"] for q in body["details"]["queued_orders"]] == [1, 1, 2, 2, 3]
    assert body["message"] == "5 orders queued for SendCloud in 3 chunks."
    assert list(PushChunk.objects.order_by("number").values_list("number", "size")) == [(1, 2), (2, 2), (3, 1)]
    assert set(OrderShipment.objects.values_list("create_label", flat=True)) == {True}


def test_second_push_sees_orders_already_queued(client_for: APIClient, integration: object, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    first = push(client_for, {"create_label": False, "order_ids": [order.pk]}).json()
    second = push(client_for, {"create_label": False, "order_ids": [order.pk]}).json()
    assert second["details"]["skipped_orders"] == [
        f"{order.order_number}: already queued in batch {first['batch']['id']}"
    ]


def test_work_is_dispatched_only_after_commit(
    client_for: APIClient, integration: object, shop: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    order = OrderFactory(shop=shop)
    with (
        mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as dispatch,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        body = push(client_for, {"create_label": False, "order_ids": [order.pk]}).json()
        dispatch.assert_not_called()
    assert len(callbacks) == 1
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as dispatch:
        callbacks[0]()
    dispatch.assert_called_once_with(PushBatch.objects.get().pk)
    assert body["batch"]["id"] == str(PushBatch.objects.get().pk)


def test_nothing_is_dispatched_when_nothing_is_queued(
    client_for: APIClient, integration: object, shop: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    quote = OrderFactory(shop=shop, type=Order.Type.QUOTE)
    with django_capture_on_commit_callbacks() as callbacks:
        push(client_for, {"create_label": False, "order_ids": [quote.pk]})
    assert callbacks == []


def count_queries(client: APIClient, ids: list[int]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = push(client, {"create_label": False, "order_ids": ids})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_ids(
    client_for: APIClient, integration: object, shop: Shop, settings: Any
) -> None:
    settings.SENDCLOUD_CHUNK_SIZE = 3
    small = make_orders(shop, 2)
    large = make_orders(shop, 40)
    skipped = make_orders(shop, 5, status=Order.Status.CANCELLED)
    push(client_for, {"create_label": False, "order_ids": [10**9]})  # the token's last-use write happens once
    assert count_queries(client_for, [o.pk for o in small]) == count_queries(
        client_for, [o.pk for o in large + skipped] + list(range(10**8, 10**8 + 200))
    )
