"""The label phase of ``processing.process_chunk`` against a fake Sendcloud (``tests/pipeline/labels/fake.py``).

The duplicate-label detector is ``fake.created_for(order_id)``: the shipments Sendcloud made for an
order, i.e. the labels the shop pays for.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.utils import timezone

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
from sendcloud_integration.pipeline import batches
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.payloads import sendcloud_order_id
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import LABELS_URL, ORDERS_URL, SHIPMENTS_URL, FakeSendcloud, calls_to
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db


def queue(shop: Shop, orders: list[Order], *, create_label: bool = True) -> PushBatch:
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=create_label, actor=services.Actor.command("test")
    )
    assert result.batch_id is not None
    return PushBatch.objects.get(pk=result.batch_id)


def run_chunk(batch: PushBatch, *, limit: int = 20) -> list[processing.ChunkOutcome]:
    """Run the chunk task's work until it stops handing the chunk back, as Celery retries would."""
    outcomes = []
    for _ in range(limit):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
        outcomes.append(outcome)
        if outcome.retry_in is None:
            return outcomes
    raise AssertionError(f"chunk still handed back after {limit} runs: {outcomes[-3:]}")


def states(batch: PushBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in OrderShipment.objects.filter(batch=batch).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def row(order: Order) -> OrderShipment:
    return OrderShipment.objects.get(order=order)


def oid(order: Order) -> str:
    return sendcloud_order_id(order)


def test_all_labelled_stores_files_and_tracking_and_completes_the_batch(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    batch = queue(shop, orders)

    outcomes = run_chunk(batch)

    assert outcomes[-1].retry_in is None
    assert sum(o.labelled for o in outcomes) == 3
    assert outcomes[0].pushed == 3
    assert states(batch) == {ShipmentState.LABELLED: 3}
    for order in orders:
        shipment = row(order)
        parcel = fake.shipment_of(oid(order))
        assert shipment.sendcloud_shipment_id == parcel.id
        assert shipment.sendcloud_parcel_id == str(parcel.parcel_id)
        assert shipment.label_file.name == f"labels/acme/{order.order_number}-{parcel.parcel_id}.pdf"
        with shipment.label_file.open("rb") as handle:
            assert handle.read().startswith(b"%PDF")
        assert shipment.tracking_number == f"3STEST{parcel.parcel_id}"
        assert shipment.tracking_url == f"https://tracking.example/{parcel.parcel_id}"
        assert shipment.carrier == "postnl"
        assert shipment.labelled_at is not None
        assert shipment.label_requested_at is not None
        assert (shipment.failed_phase, shipment.last_error) == ("", "")
        assert fake.created_for(oid(order)) == 1
    [body] = fake.label_bodies
    assert body == {
        "integration_id": 1001,
        "orders": [{"order_id": oid(o)} for o in orders],
        "ship_with": {"type": "shipping_option_code", "properties": {"shipping_option_code": "postnl:standard"}},
    }
    label_call = SendcloudApiCall.objects.get(path="/v3/orders/create-labels-async")
    assert (label_call.method, label_call.status_code, label_call.batch_id) == ("POST", 202, batch.pk)
    assert set(label_call.orders.values_list("pk", flat=True)) == {o.pk for o in orders}
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.DONE, 0)

    finished = batches.finish_batch(batch_id=batch.pk)
    assert finished.status == BatchStatus.COMPLETED
    assert (finished.pushed_count, finished.labelled_count, finished.failed_count) == (3, 3, 0)


def test_mixed_successes_and_errors_in_one_202(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    good1, bad, good2 = (OrderFactory(shop=shop) for _ in range(3))
    batch = queue(shop, [good1, bad, good2])
    fake.script(oid(bad), "reject:The order has no valid shipping address.")

    outcomes = run_chunk(batch)

    assert sum(o.labelled for o in outcomes) == 2
    assert sum(o.failed for o in outcomes) == 1
    assert row(good1).state == row(good2).state == ShipmentState.LABELLED
    failed = row(bad)
    assert failed.state == ShipmentState.FAILED
    assert failed.failed_phase == Phase.LABEL
    assert "no valid shipping address" in failed.last_error
    assert failed.label_requested_at is None  # Sendcloud said no: nothing to look up later
    assert len(calls_to(LABELS_URL)) == 1
    finished = batches.finish_batch(batch_id=batch.pk)
    assert finished.status == BatchStatus.COMPLETED_WITH_ERRORS
    assert (finished.labelled_count, finished.failed_count) == (2, 1)


def test_carrier_refusal_fails_the_order_with_the_carriers_message(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "carrier:Postal code 1012AB does not match the house number")

    run_chunk(batch)

    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert shipment.failed_phase == Phase.LABEL
    assert "Postal code 1012AB does not match the house number" in shipment.last_error
    assert shipment.sendcloud_shipment_id == fake.shipment_of(oid(order)).id  # kept for staff and re-push
    assert not shipment.label_file
    assert not [c for c in responses.calls if "/documents/label" in (c.request.url or "")]
    assert batches.finish_batch(batch_id=batch.pk).status == BatchStatus.FAILED


def test_order_not_yet_visible_is_asked_again_later(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "not_visible")

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert first.retry_in is not None
    assert first.counts_attempt is True
    shipment = row(order)
    assert shipment.state == ShipmentState.LABEL_QUEUED
    assert shipment.label_requested_at is None
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 1)
    assert "could not be found" in chunk.last_error

    run_chunk(batch)

    assert row(order).state == ShipmentState.LABELLED
    assert fake.label_requests[oid(order)] == 2
    assert fake.created_for(oid(order)) == 1
    assert len(calls_to(ORDERS_URL)) == 1  # the order is not pushed again


def test_not_visible_for_too_long_fails_after_the_attempts(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, settings: Any
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 3
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), *["not_visible"] * 5)

    outcomes = run_chunk(batch)

    assert len(outcomes) == 3
    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert "Gave up after 3 attempts" in shipment.last_error
    assert fake.label_requests[oid(order)] == 3


def test_409_adopts_the_existing_shipment_without_a_second_request(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    fake.know(oid(order), order.order_number)
    existing = fake.create_shipment(oid(order))
    batch = queue(shop, [order])
    responses.replace(
        responses.POST, LABELS_URL, status=409, json={"data": existing.as_json()}
    )  # Sendcloud: "it exists already", with the shipment

    run_chunk(batch)

    shipment = row(order)
    assert shipment.state == ShipmentState.LABELLED
    assert shipment.sendcloud_shipment_id == existing.id
    assert len(calls_to(LABELS_URL)) == 1
    assert fake.created_for(oid(order)) == 1


def test_409_without_a_shipment_looks_the_orders_up(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    has_one, clean = OrderFactory(shop=shop), OrderFactory(shop=shop)
    fake.know(oid(has_one), has_one.order_number)
    existing = fake.create_shipment(oid(has_one))
    batch = queue(shop, [has_one, clean])
    conflict = {"errors": [{"status": "409", "code": "invalid", "detail": "A shipment already exists."}]}
    responses.replace(responses.POST, LABELS_URL, status=409, json=conflict)

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert first.retry_in is not None
    assert row(has_one).state == ShipmentState.LABELLED
    assert row(has_one).sendcloud_shipment_id == existing.id
    assert row(clean).state == ShipmentState.LABEL_QUEUED  # refused (4xx): nothing was made, ask again
    assert row(clean).label_requested_at is None

    fake.restore_labels()
    run_chunk(batch)

    assert row(clean).state == ShipmentState.LABELLED
    assert fake.created_for(oid(has_one)) == 1
    assert [json.loads(c.request.body or b"")["orders"] for c in calls_to(LABELS_URL)] == [
        [{"order_id": oid(has_one)}, {"order_id": oid(clean)}],
        [{"order_id": oid(clean)}],
    ]


def test_timeout_after_sendcloud_made_the_labels_adopts_them_never_asking_twice(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(2)]
    batch = queue(shop, orders)
    fake.timeout_after_commit = {1}

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert first.retry_in is not None
    assert first.counts_attempt is True
    for order in orders:
        shipment = row(order)
        assert shipment.state == ShipmentState.LABELLING
        assert shipment.label_requested_at is not None
        assert shipment.sendcloud_shipment_id == ""
    calls_before = len(responses.calls)

    run_chunk(batch)

    assert states(batch) == {ShipmentState.LABELLED: 2}
    assert len(calls_to(LABELS_URL)) == 1
    for order in orders:
        assert fake.label_requests[oid(order)] == 1
        assert fake.created_for(oid(order)) == 1
        assert row(order).sendcloud_shipment_id == fake.shipment_of(oid(order)).id
    # The next run started with a look-up, and both orders were looked up.
    next_calls = [(c.request.method, (c.request.url or "").split("?")[0]) for c in responses.calls[calls_before:]]
    assert next_calls[0] == ("GET", SHIPMENTS_URL)
    assert next_calls.count(("GET", SHIPMENTS_URL)) == 2


def test_timeout_before_sendcloud_acted_asks_again_after_an_empty_look_up(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.timeout_before_commit = {1}

    run_chunk(batch)

    assert row(order).state == ShipmentState.LABELLED
    assert len(calls_to(LABELS_URL)) == 2
    assert len(calls_to(SHIPMENTS_URL, "GET")) == 1  # looked up first, found nothing
    assert fake.created_for(oid(order)) == 1


def test_uncertain_outcome_waits_for_the_grace_period_before_looking_up(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, settings: Any
) -> None:
    settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS = 60
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.timeout_before_commit = {1}

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert first.retry_in is not None
    assert first.retry_in >= 60
    calls = len(responses.calls)

    early = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert early.retry_in is not None
    assert 0 < early.retry_in <= 60
    assert early.counts_attempt is False  # waiting is not a failure
    assert len(responses.calls) == calls  # neither a look-up nor a request yet
    assert row(order).state == ShipmentState.LABELLING

    OrderShipment.objects.filter(order=order).update(label_requested_at=timezone.now() - timedelta(seconds=61))
    run_chunk(batch)

    assert row(order).state == ShipmentState.LABELLED
    assert len(calls_to(SHIPMENTS_URL, "GET")) == 1
    assert len(calls_to(LABELS_URL)) == 2


def test_killed_worker_row_is_looked_up_before_anything_else(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    # A worker sent the label request and died before it could store the answer.
    fake.know(oid(order), order.order_number)
    made = fake.create_shipment(oid(order))
    OrderShipment.objects.filter(order=order).update(
        state=ShipmentState.LABELLING,
        pushed_at=timezone.now() - timedelta(minutes=5),
        label_requested_at=timezone.now() - timedelta(minutes=5),
    )

    run_chunk(batch)

    first = responses.calls[0].request
    assert (first.method, (first.url or "").split("?")[0]) == ("GET", SHIPMENTS_URL)
    assert f"order_number={order.order_number}" in (first.url or "")
    assert calls_to(LABELS_URL) == []
    assert calls_to(ORDERS_URL) == []
    shipment = row(order)
    assert shipment.state == ShipmentState.LABELLED
    assert shipment.sendcloud_shipment_id == made.id
    assert fake.created_for(oid(order)) == 1


def test_already_pushed_order_goes_straight_to_labels(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    run_chunk(queue(shop, [order], create_label=False))
    assert row(order).state == ShipmentState.PUSHED
    pushes = len(calls_to(ORDERS_URL))

    batch = queue(shop, [order])
    run_chunk(batch)

    assert len(calls_to(ORDERS_URL)) == pushes  # no second POST /v3/orders
    assert row(order).state == ShipmentState.LABELLED
    assert fake.created_for(oid(order)) == 1
    finished = batches.finish_batch(batch_id=batch.pk)
    assert (finished.status, finished.labelled_count) == (BatchStatus.COMPLETED, 1)


def test_more_than_twenty_orders_are_split_into_requests_of_at_most_twenty(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(45)]
    batch = queue(shop, orders)

    run_chunk(batch)

    assert [len(body["orders"]) for body in fake.label_bodies] == [20, 20, 5]
    assert states(batch) == {ShipmentState.LABELLED: 45}
    assert all(fake.created_for(oid(o)) == 1 for o in orders)


def test_spent_budget_hands_back_without_counting_an_attempt(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    unsafe_answers = [0.0, 7.5]  # the push gets its slot, the label request does not

    def take(*, public_key: str, kind: budget.Kind, headroom: int = 0) -> float:
        if kind is budget.Kind.UNSAFE and unsafe_answers:
            return unsafe_answers.pop(0)
        return 0.0

    monkeypatch.setattr(budget, "take", take)

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (first.retry_in, first.counts_attempt) == (7.5, False)
    assert calls_to(LABELS_URL) == []
    shipment = row(order)
    assert shipment.state == ShipmentState.LABEL_QUEUED
    assert shipment.label_requested_at is None
    chunk = PushChunk.objects.get(batch=batch)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 0)

    run_chunk(batch)
    assert row(order).state == ShipmentState.LABELLED
    assert PushChunk.objects.get(batch=batch).attempts == 0


def test_label_polling_hands_back_without_counting_then_times_out(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "pending:1000")
    PushChunk.objects.filter(batch=batch).update(claimed_at=timezone.now() - timedelta(hours=1))

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert first.retry_in is not None
    assert first.counts_attempt is False
    chunk = PushChunk.objects.get(batch=batch)
    assert chunk.attempts == 0
    assert chunk.claimed_at is not None
    assert timezone.now() - chunk.claimed_at < timedelta(minutes=1)  # heartbeat while polling
    assert row(order).state == ShipmentState.LABELLING

    second = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert second.retry_in is not None
    assert row(order).state == ShipmentState.LABELLING

    OrderShipment.objects.filter(order=order).update(label_requested_at=timezone.now() - timedelta(seconds=901))
    last = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert last.retry_in is None
    assert last.failed == 1
    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert shipment.failed_phase == Phase.LABEL
    assert shipment.last_error == "Sendcloud did not produce the label within 15 minutes."
    assert shipment.sendcloud_shipment_id  # kept: a re-push checks this shipment before asking again
    assert PushChunk.objects.get(batch=batch).status == ChunkStatus.DONE


def test_repush_after_carrier_refusal_is_a_retry_and_gets_a_new_label(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    fake.script(oid(order), "carrier:Unknown street")
    run_chunk(queue(shop, [order]))
    assert row(order).state == ShipmentState.FAILED
    refused = row(order).sendcloud_shipment_id

    again = services.push_orders(
        shop=shop, order_ids=[order.pk], create_label=True, actor=services.Actor.command("test")
    )
    assert again.retry == [order.order_number]
    batch = PushBatch.objects.get(pk=again.batch_id)
    run_chunk(batch)

    shipment = row(order)
    assert shipment.state == ShipmentState.LABELLED
    assert shipment.sendcloud_shipment_id != refused
    assert (shipment.failed_phase, shipment.last_error) == ("", "")
    assert fake.label_requests[oid(order)] == 2
    # The order is sent again before its new label: the shop may have fixed what the carrier refused.
    assert len(calls_to(ORDERS_URL)) == 2
    finished = batches.finish_batch(batch_id=batch.pk)
    assert (finished.status, finished.labelled_count, finished.retry_orders) == (BatchStatus.COMPLETED, 1, 1)


def test_repush_after_a_label_timeout_adopts_the_late_label(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    fake.script(oid(order), "pending:2")
    batch = queue(shop, [order])
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    OrderShipment.objects.filter(order=order).update(label_requested_at=timezone.now() - timedelta(hours=1))
    run_chunk(batch)
    assert row(order).state == ShipmentState.FAILED
    # Meanwhile the carrier did announce it.

    again = services.push_orders(
        shop=shop, order_ids=[order.pk], create_label=True, actor=services.Actor.command("test")
    )
    assert again.retry == [order.order_number]
    run_chunk(PushBatch.objects.get(pk=again.batch_id))

    assert row(order).state == ShipmentState.LABELLED
    assert fake.label_requests[oid(order)] == 1  # the late label was adopted, not bought again
    assert fake.created_for(oid(order)) == 1


def test_429_on_the_label_request_retries_then_gives_up(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, settings: Any
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 2
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    responses.replace(responses.POST, LABELS_URL, status=429)

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (first.retry_in is not None, first.counts_attempt) == (True, True)
    shipment = row(order)
    assert shipment.state == ShipmentState.LABEL_QUEUED
    assert shipment.label_requested_at is None  # 429: Sendcloud did nothing

    last = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert last.retry_in is None
    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert shipment.failed_phase == Phase.LABEL
    assert "Gave up after 2 attempts" in shipment.last_error
    assert "429" in shipment.last_error


def test_uncertain_outcome_on_the_last_attempt_still_looks_up_before_failing(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, settings: Any
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 1
    made, missing = OrderFactory(shop=shop), OrderFactory(shop=shop)
    batch = queue(shop, [made, missing])
    fake.script(oid(missing), "reject:ignored")  # consumed by the first (timed-out) request: nothing made
    fake.timeout_after_commit = {1}

    run_chunk(batch)

    assert row(made).state == ShipmentState.LABELLED  # found by the look-up
    failed = row(missing)
    assert failed.state == ShipmentState.FAILED
    assert "Sendcloud has no label for this order" in failed.last_error
    assert failed.label_requested_at is None
    assert len(calls_to(LABELS_URL)) == 1  # attempts spent: nothing asked again


def test_refused_credentials_fail_the_labels_and_disconnect(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    refusal = {"errors": [{"status": "401", "code": "authentication_failed", "detail": "Invalid username/password."}]}
    responses.replace(responses.POST, LABELS_URL, status=401, json=refusal)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.failed, outcome.retry_in) == (1, None)
    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert shipment.failed_phase == Phase.LABEL
    assert shipment.label_requested_at is None
    assert "sandbox-secret" not in shipment.last_error
    integration.refresh_from_db()
    assert integration.is_connected is False
    assert len(calls_to(LABELS_URL)) == 1


def test_deactivated_integration_fails_label_work_left_in_flight(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "pending:1000")
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert row(order).state == ShipmentState.LABELLING
    SendcloudIntegration.objects.update(is_active=False)

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.failed, outcome.retry_in) == (1, None)
    shipment = row(order)
    assert shipment.state == ShipmentState.FAILED
    assert "deactivated" in shipment.last_error
    assert shipment.sendcloud_shipment_id  # evidence kept for a later re-push


def test_transient_read_errors_while_polling_count_attempts(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.script(oid(order), "pending:1")
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    fake.failing_reads = 1

    outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (outcome.retry_in is not None, outcome.counts_attempt) == (True, True)
    assert row(order).state == ShipmentState.LABELLING
    run_chunk(batch)
    assert row(order).state == ShipmentState.LABELLED


def test_label_pdf_not_served_yet_is_waited_for_without_counting(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.failing_downloads = 2

    outcomes = run_chunk(batch)

    assert [o.counts_attempt for o in outcomes if o.retry_in is not None] == [False, False]
    assert row(order).state == ShipmentState.LABELLED
    assert PushChunk.objects.get(batch=batch).attempts == 0
    assert fake.created_for(oid(order)) == 1


def test_running_a_done_chunk_again_asks_for_nothing(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    batch = queue(shop, [OrderFactory(shop=shop)])
    run_chunk(batch)
    calls = len(responses.calls)

    assert processing.process_chunk(batch_id=batch.pk, chunk_number=1) == processing.ChunkOutcome()
    assert len(responses.calls) == calls


def test_label_requests_take_a_bounded_number_of_queries(
    shop: Shop,
    integration: SendcloudIntegration,
    fake: FakeSendcloud,
    django_assert_max_num_queries: Any,
    settings: Any,
) -> None:
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 60  # request only; polling comes later
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 60
    orders = [OrderFactory(shop=shop) for _ in range(40)]
    batch = queue(shop, orders)
    PushBatch.objects.filter(pk=batch.pk).update(create_label=False)
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)  # push only
    PushBatch.objects.filter(pk=batch.pk).update(create_label=True)
    PushChunk.objects.filter(batch=batch).update(status=ChunkStatus.PENDING)

    # Bulk reads (the orders' lines and parcels too, for the multicollo split), and a guard move and one
    # write of the answers per request of 20: not per order. (+2: the hand-back is one transaction, a
    # savepoint inside the test's own.)
    with django_assert_max_num_queries(24):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert outcome.retry_in is not None
    assert states(batch) == {ShipmentState.LABELLING: 40}


@pytest.mark.parametrize("error", [requests.exceptions.ConnectionError("connection reset by peer")])
def test_dropped_connection_is_uncertain_too(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, error: Exception
) -> None:
    order = OrderFactory(shop=shop)
    batch = queue(shop, [order])
    fake.know(oid(order), order.order_number)
    responses.replace(responses.POST, LABELS_URL, body=error)

    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert row(order).state == ShipmentState.LABELLING
    fake.create_shipment(oid(order))  # it had gone through after all
    fake.restore_labels()

    run_chunk(batch)

    assert row(order).state == ShipmentState.LABELLED
    assert fake.label_requests[oid(order)] == 0  # never asked through the working endpoint
    assert fake.created_for(oid(order)) == 1
