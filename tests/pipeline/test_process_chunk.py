"""The chunk task's work (``processing.process_chunk``) against Sendcloud answers mocked with ``responses``."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
import responses

from sendcloud_integration.models import (
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    Phase,
    PushBatch,
    PushChunk,
    SendcloudApiCall,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches, dispatch, release
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.pipeline.outcome import backoff_seconds
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud.payloads import sendcloud_order_id
from tests.factories import OrderFactory
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

ORDERS_URL = "https://sendcloud.test/api/v3/orders"


def queue(shop: Shop, orders: list[Order]) -> PushBatch:
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=False, actor=services.Actor.command("test")
    )
    assert result.batch_id is not None
    return PushBatch.objects.get(pk=result.batch_id)


def accept_all(request: Any) -> tuple[int, dict[str, str], str]:
    sent = json.loads(request.body)
    data = [{"id": 5000 + i, "order_id": o["order_id"], "order_number": o["order_number"]} for i, o in enumerate(sent)]
    return 201, {}, json.dumps({"data": data})


def states(batch: PushBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in OrderShipment.objects.filter(batch=batch).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


@responses.activate
def test_success_pushes_every_order_and_logs_the_call(shop: Shop, integration: SendcloudIntegration) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    batch = queue(shop, orders)
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert outcome == processing.ChunkOutcome(pushed=3)
    assert states(batch) == {ShipmentState.PUSHED: 3}
    shipment = OrderShipment.objects.get(order=orders[0])
    assert shipment.sendcloud_order_id == "5000"
    assert shipment.attempts == 1
    assert shipment.pushed_at is not None
    sent = json.loads(responses.calls[0].request.body)
    assert [o["order_number"] for o in sent] == [o.order_number for o in orders]
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    call = SendcloudApiCall.objects.get()
    assert (call.method, call.path, call.status_code, call.batch_id) == ("POST", "/v3/orders", 201, batch.pk)
    assert set(call.orders.values_list("pk", flat=True)) == {o.pk for o in orders}
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.DONE
    finished = batches.finish_batch(batch_id=batch.pk)
    assert (finished.status, finished.pushed_count, finished.failed_count) == (BatchStatus.COMPLETED, 3, 0)
    assert finished.finished_at is not None


@responses.activate
def test_one_invalid_order_among_a_hundred_fails_alone(shop: Shop, integration: SendcloudIntegration) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(100)]
    batch = queue(shop, orders)
    bad_index = 37
    rejection = {
        "errors": [
            {
                "status": "400",
                "code": "invalid",
                "detail": "This field may not be blank.",
                "source": {"pointer": f"/data/attributes/[{bad_index}]/shipping_address/city"},
            }
        ]
    }
    responses.add(responses.POST, ORDERS_URL, json=rejection, status=400)
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.pushed, outcome.failed, outcome.retry_in) == (99, 1, None)
    bad = OrderShipment.objects.get(order=orders[bad_index])
    assert bad.state == ShipmentState.FAILED
    assert bad.failed_phase == Phase.PUSH
    assert "This field may not be blank." in bad.last_error
    assert "city" in bad.last_error
    resubmitted = json.loads(responses.calls[1].request.body)
    assert len(resubmitted) == 99
    assert sendcloud_order_id(orders[bad_index]) not in {o["order_id"] for o in resubmitted}
    assert states(batch) == {ShipmentState.PUSHED: 99, ShipmentState.FAILED: 1}
    assert batches.finish_batch(batch_id=batch.pk).status == BatchStatus.COMPLETED_WITH_ERRORS


@responses.activate
def test_429_hands_the_chunk_back_then_succeeds(shop: Shop, integration: SendcloudIntegration) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders)
    responses.add(responses.POST, ORDERS_URL, status=429, headers={"Retry-After": "7"})
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert first.retry_in is not None
    assert first.retry_in >= 7  # Sendcloud's Retry-After is honoured
    assert states(batch) == {ShipmentState.QUEUED: 2}
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 1)

    second = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert (second.pushed, second.retry_in) == (2, None)
    assert states(batch) == {ShipmentState.PUSHED: 2}
    assert OrderShipment.objects.get(order=orders[0]).attempts == 2


@pytest.mark.parametrize("body", ["<html><body>502 Bad Gateway</body></html>", ""])
@responses.activate
def test_5xx_until_retries_run_out_then_failed_and_retryable(
    shop: Shop, integration: SendcloudIntegration, settings: Any, body: str
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 3
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders)
    responses.add(responses.POST, ORDERS_URL, body=body, status=502, content_type="text/html")

    outcomes = []
    for _ in range(5):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
        outcomes.append(outcome)
        if outcome.retry_in is None:
            break
    assert [o.retry_in is not None for o in outcomes] == [True, True, False]
    assert len(responses.calls) == 3
    assert states(batch) == {ShipmentState.FAILED: 2}
    failed = OrderShipment.objects.get(order=orders[0])
    assert "Gave up after 3 attempts" in failed.last_error
    assert "502" in failed.last_error
    assert failed.failed_phase == Phase.PUSH
    assert batches.finish_batch(batch_id=batch.pk).status == BatchStatus.FAILED

    again = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=False, actor=services.Actor.command()
    )
    assert again.retry == [o.order_number for o in orders]


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_refused_credentials_fail_at_once_and_disconnect(
    shop: Shop, integration: SendcloudIntegration, status: int
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders)
    responses.add(
        responses.POST,
        ORDERS_URL,
        status=status,
        json={
            "errors": [{"status": str(status), "code": "authentication_failed", "detail": "Invalid username/password."}]
        },
    )

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.failed, outcome.retry_in) == (2, None)
    assert len(responses.calls) == 1
    assert states(batch) == {ShipmentState.FAILED: 2}
    integration.refresh_from_db()
    assert integration.is_connected is False
    assert str(status) in integration.connection_error
    assert "sandbox-secret" not in OrderShipment.objects.get(order=orders[0]).last_error


@responses.activate
def test_running_a_chunk_twice_changes_nothing_the_second_time(shop: Shop, integration: SendcloudIntegration) -> None:
    batch = queue(shop, [OrderFactory(shop=shop)])
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert processing.process_chunk(batch_id=batch.pk, chunk_number=1) == processing.ChunkOutcome()
    assert len(responses.calls) == 1


@responses.activate
def test_order_sendcloud_would_refuse_fails_locally(shop: Shop, integration: SendcloudIntegration) -> None:
    good = OrderFactory(shop=shop)
    bad = OrderFactory(shop=shop, address={"postal_code": ""})
    batch = queue(shop, [good, bad])
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.pushed, outcome.failed) == (1, 1)
    assert len(json.loads(responses.calls[0].request.body)) == 1
    shipment = OrderShipment.objects.get(order=bad)
    assert shipment.state == ShipmentState.FAILED
    assert "postal code" in shipment.last_error.lower()


@responses.activate
def test_deactivated_integration_fails_the_chunk_without_calls(shop: Shop, integration: SendcloudIntegration) -> None:
    batch = queue(shop, [OrderFactory(shop=shop)])
    SendcloudIntegration.objects.update(is_active=False)
    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert outcome.failed == 1
    assert len(responses.calls) == 0
    assert "deactivated" in OrderShipment.objects.get().last_error


@responses.activate
def test_still_processing_conflict_is_retried(shop: Shop, integration: SendcloudIntegration) -> None:
    batch = queue(shop, [OrderFactory(shop=shop)])
    conflict = {
        "errors": [
            {
                "status": "400",
                "code": "invalid",
                "detail": "We are still processing a previous request. Please try again in a moment.",
                "source": {"pointer": "/data"},
            }
        ]
    }
    responses.add(responses.POST, ORDERS_URL, json=conflict, status=400)
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)
    assert processing.process_chunk(batch_id=batch.pk, chunk_number=1).retry_in is not None
    assert processing.process_chunk(batch_id=batch.pk, chunk_number=1).pushed == 1


def test_backoff_grows_and_is_capped(settings: Any) -> None:
    settings.SENDCLOUD_RETRY_BASE_SECONDS = 2
    settings.SENDCLOUD_RETRY_MAX_SECONDS = 60
    assert 1 <= backoff_seconds(1) <= 2
    assert 8 <= backoff_seconds(4) <= 16
    assert 30 <= backoff_seconds(20) <= 60
    assert backoff_seconds(1, retry_after=30) == 30


@responses.activate
def test_spent_budget_hands_the_chunk_back_without_an_attempt(
    shop: Shop, integration: SendcloudIntegration, django_assert_max_num_queries: Any
) -> None:
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(3)])
    # Cheap while waiting: no orders loaded, no payloads built (the hand-back's transaction is a savepoint here).
    with (
        mock.patch("sendcloud_integration.sendcloud.budget.peek", return_value=5.0) as peek,
        mock.patch("sendcloud_integration.sendcloud.budget.take") as take,
        django_assert_max_num_queries(10),
    ):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    peek.assert_called_once()
    take.assert_not_called()
    assert outcome.retry_in is not None
    assert 5.0 <= outcome.retry_in <= 6.0
    assert outcome.counts_attempt is False
    assert len(responses.calls) == 0
    assert states(batch) == {ShipmentState.QUEUED: 3}
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 0)
    assert OrderShipment.objects.filter(batch=batch, attempts=0).count() == 3


@responses.activate
def test_slot_lost_between_look_and_take_hands_back_without_counting(
    shop: Shop, integration: SendcloudIntegration, settings: Any
) -> None:
    settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS = 0  # no sleeping through the wait in this test
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(2)])
    with (
        mock.patch("sendcloud_integration.sendcloud.budget.peek", return_value=0.0),
        mock.patch("sendcloud_integration.sendcloud.budget.take", return_value=0.7),
    ):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert (outcome.counts_attempt, len(responses.calls)) == (False, 0)
    assert states(batch) == {ShipmentState.QUEUED: 2}
    assert OrderShipment.objects.filter(batch=batch, attempts=0).count() == 2


def test_finish_callback_for_a_deleted_batch_is_harmless(shop: Shop, integration: SendcloudIntegration) -> None:
    from sendcloud_integration import tasks

    batch = queue(shop, [OrderFactory(shop=shop)])
    batch_id = str(batch.pk)
    batch.delete()
    assert tasks.finish_batch.run(batch_id) == {"status": "deleted"}


def test_label_batch_with_pushed_rows_is_not_finished(shop: Shop, integration: SendcloudIntegration) -> None:
    # A worker died between push and label: every row PUSHED, no label yet.
    result = services.push_orders(
        shop=shop, order_ids=[OrderFactory(shop=shop).pk], create_label=True, actor=services.Actor.command("test")
    )
    OrderShipment.objects.update(state=ShipmentState.PUSHED)
    batch = batches.finish_batch(batch_id=result.batch_id)  # type: ignore[arg-type]
    assert not batch.is_finished
    assert batches.counts_of(batch).waiting == 1


def test_pushed_rows_are_an_outcome_when_no_label_is_asked(shop: Shop, integration: SendcloudIntegration) -> None:
    batch = queue(shop, [OrderFactory(shop=shop)])
    OrderShipment.objects.update(state=ShipmentState.PUSHED)
    assert batches.finish_batch(batch_id=batch.pk).status == BatchStatus.COMPLETED


@responses.activate
def test_unexpected_error_is_retried_then_fails_the_orders(
    shop: Shop, integration: SendcloudIntegration, settings: Any, caplog: Any
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 2
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(2)])
    boom = ValueError("cannot encode 12345678901234567 exactly")
    with mock.patch("sendcloud_integration.sendcloud.payloads.build_order", side_effect=boom):
        first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
        assert first.retry_in is not None
        assert first.counts_attempt is True
        assert states(batch) == {ShipmentState.QUEUED: 2}  # handed back, nothing half-done
        second = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert (second.retry_in, second.failed) == (None, 2)
    assert states(batch) == {ShipmentState.FAILED: 2}
    error = OrderShipment.objects.filter(batch=batch).first().last_error  # type: ignore[union-attr]
    assert "Gave up after 2 attempts" in error
    assert "ValueError" in error
    assert "12345678901234567" not in error  # the details stay in the log
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.DONE
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)
    assert batches.finish_batch(batch_id=batch.pk).status == BatchStatus.FAILED


def test_batch_api_hides_the_previous_error_of_a_requeued_order(shop: Shop, integration: SendcloudIntegration) -> None:
    from sendcloud_integration.api.serializers import batch_order_response

    batch = queue(shop, [OrderFactory(shop=shop)])
    OrderShipment.objects.update(failed_phase="push", last_error="old failure")
    shipment = OrderShipment.objects.select_related("order").get()
    assert batch_order_response(shipment, label_url_base="x")["error"] is None
    shipment.state = ShipmentState.FAILED
    answer = batch_order_response(shipment, label_url_base="x")
    assert (answer["error"], answer["failed_phase"]) == ("old failure", "push")
    assert batch.pk


def test_the_pipeline_sends_tasks_by_the_names_they_are_registered_under() -> None:
    """Lower layers start tasks by name (they may not import ``tasks``): a renamed task must fail here."""
    from celery import current_app

    from sendcloud_integration import tasks

    registered = {tasks.start_batch.name, tasks.process_chunk.name, tasks.finish_batch.name}
    assert {dispatch.START_BATCH, dispatch.PROCESS_CHUNK, dispatch.FINISH_BATCH} == registered
    assert registered <= set(current_app.tasks)


@responses.activate
def test_a_done_chunk_passes_its_place_on_and_the_last_one_finishes_the_batch(
    shop: Shop, integration: SendcloudIntegration, settings: Any
) -> None:
    """The release window (``pipeline.release``) is driven by the chunk task: finishing a chunk releases
    the account's next one, and finishing the batch's last chunk sends ``finish_batch``."""
    settings.SENDCLOUD_ACCOUNT_WINDOW = 1
    settings.SENDCLOUD_CHUNK_SIZE = 2
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)
    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(4)])
    with (
        mock.patch.object(dispatch, "dispatch_batch") as sent,
        mock.patch.object(dispatch, "finish_batch") as finish,
    ):
        release.start_batch(batch.pk)
        sent.assert_called_once_with(batch.pk, [1])

        processing.process_chunk(batch_id=batch.pk, chunk_number=1)
        assert sent.call_args_list[-1] == mock.call(batch.pk, [2])
        finish.assert_not_called()

        processing.process_chunk(batch_id=batch.pk, chunk_number=2)
        finish.assert_called_once_with(batch.pk)
        assert sent.call_count == 2, "nothing left to release"


def _queries_to_push(shop: Shop, orders: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    batch = queue(shop, [OrderFactory(shop=shop) for _ in range(orders)])
    with CaptureQueriesContext(connection) as captured:
        assert processing.process_chunk(batch_id=batch.pk, chunk_number=1).pushed == orders
    return len(captured.captured_queries)


@responses.activate
def test_a_chunks_queries_do_not_grow_with_its_orders(shop: Shop, integration: SendcloudIntegration) -> None:
    """The worker's CPU per order depends on it: lines, parcels and addresses are read for the whole chunk."""
    responses.add_callback(responses.POST, ORDERS_URL, callback=accept_all)
    assert _queries_to_push(shop, 100) == _queries_to_push(shop, 3) <= 22
