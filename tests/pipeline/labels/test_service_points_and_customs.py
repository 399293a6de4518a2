"""The label phase's service-point check and customs declarations, against the sandbox (real HTTP, in-process).

A point is checked right before its order's label is requested: closed or unknown fails the order and no
label is bought; a check Sendcloud could not answer is retried, and only then is the label asked for. A
parcel leaving the EU has its customs declaration stored with its label, in the same step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from pypdf import PdfReader

from sendcloud_integration.models import OrderShipment, Phase, PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud import budget
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import run_chunk_until_done
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

CHECK = "POST /service-points/{id}/check-availability"
LABELS = "POST /orders/create-labels-async"
PICKUP = "postnl:standard/service_point"
SWISS = {"street": "Bahnhofstrasse", "postal_code": "8001", "city": "Zürich", "country": "CH"}


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    config = SandboxConfig(label_delay_seconds=0.05, rate_limits_enabled=False, record_bodies=True)
    server = SandboxServer(port=0, config=config).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


def label(shop: Shop, *orders: Order) -> PushBatch:
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)
    run_chunk_until_done(batch, deadline_seconds=30, pause=0.05)
    return batch


def row(order: Order) -> OrderShipment:
    return OrderShipment.objects.get(order=order)


def routes(sandbox: SandboxServer, route: str) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.request_log() if entry["route"] == route]


def labelled_orders(sandbox: SandboxServer) -> set[str]:
    return {order["order_id"] for entry in routes(sandbox, LABELS) for order in entry["body"]["orders"]}


def test_an_open_point_is_checked_then_labelled(shop: Shop, integration: Any, sandbox: SandboxServer) -> None:
    order = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000001")
    label(shop, order)
    assert row(order).state == ShipmentState.LABELLED
    assert [entry["path"] for entry in routes(sandbox, CHECK)] == ["/api/v3/service-points/1000001/check-availability"]
    assert labelled_orders(sandbox) == {str(order.pk)}


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ("1000005", "The service point 1000005 is not available any more"),
        ("1000103", "The service point 1000103 is not available any more"),
        ("999", "The service point 999 is unknown to Sendcloud; no label was bought."),
    ],
)
def test_a_closed_or_unknown_point_fails_the_order_and_buys_no_label(
    shop: Shop, integration: Any, sandbox: SandboxServer, point: str, message: str
) -> None:
    bad = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id=point)
    good = OrderFactory(shop=shop)
    label(shop, bad, good)
    failed = row(bad)
    assert (failed.state, failed.failed_phase) == (ShipmentState.FAILED, Phase.LABEL)
    assert message in failed.last_error
    assert failed.label_requested_at is None  # certainly no label: a re-push may ask again
    assert row(good).state == ShipmentState.LABELLED
    assert labelled_orders(sandbox) == {str(good.pk)}


def test_a_check_sendcloud_could_not_answer_is_retried_before_any_label(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    sandbox.set_faults({CHECK: [{"kind": "server_error", "times": 1}]})
    order = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000002")
    label(shop, order)
    assert row(order).state == ShipmentState.LABELLED
    log = [entry["route"] for entry in sandbox.request_log() if entry["route"] in (CHECK, LABELS)]
    assert log == [CHECK, CHECK, LABELS]  # the failed check, the retried one, then the label


def test_a_spent_write_budget_holds_the_check_and_the_label(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    from sendcloud_integration.pipeline import process

    order = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000002")
    result = services.push_orders(
        shop=shop, order_ids=[order.pk], create_label=True, actor=services.Actor.command("test")
    )
    spent = mock.Mock(Kind=budget.Kind, acquire=mock.Mock(return_value=30.0))
    with mock.patch("sendcloud_integration.pipeline.labels.service_points.budget", spent):  # no slot for the check
        outcome = process.process_chunk(batch_id=result.batch_id, chunk_number=1)
    assert outcome.retry_in is not None
    assert spent.acquire.call_args.kwargs["kind"] == budget.Kind.UNSAFE
    assert row(order).state == ShipmentState.LABEL_QUEUED
    assert routes(sandbox, CHECK) == []
    assert routes(sandbox, LABELS) == []


@pytest.fixture
def write_budget_of_20(settings: Any, tmp_path: Any) -> Iterator[Any]:
    """The real request budget at 20 writes a minute (no per-second cap in the way), in a store of its own.

    ``a_minute_later()`` swaps in an empty store: the window has slid past every write made so far.
    """
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.SENDCLOUD_UNSAFE_PER_MINUTE = 20
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 1000
    minutes = iter(range(1000))

    def a_minute_later() -> None:
        budget._store = budget.FileStore(tmp_path / f"minute-{next(minutes)}")

    a_minute_later()
    try:
        yield a_minute_later
    finally:
        budget.reset_store()


def test_at_20_writes_a_minute_a_group_of_20_pickup_orders_gets_its_labels(
    shop: Shop, integration: Any, sandbox: SandboxServer, write_budget_of_20: Any
) -> None:
    from sendcloud_integration.pipeline import process

    orders = [OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000001") for _ in range(20)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )

    process.process_chunk(batch_id=result.batch_id, chunk_number=1)  # 1 push + 18 checks + 1 label request

    assert len(routes(sandbox, CHECK)) == 18  # the 19th check would have taken the label request's slot
    assert len(labelled_orders(sandbox)) == 18  # the checked rows are asked for in the same minute
    write_budget_of_20()
    run_chunk_until_done(PushBatch.objects.get(pk=result.batch_id), deadline_seconds=30, pause=0.05)

    assert {row(o).state for o in orders} == {ShipmentState.LABELLED}
    assert len(routes(sandbox, CHECK)) == 20  # every point checked once: none checked again
    assert len(routes(sandbox, LABELS)) == 2


def test_a_point_found_open_minutes_ago_is_not_checked_again_but_another_point_is(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    from django.utils import timezone

    fresh = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000001")
    moved = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000002")
    stale = OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000003")
    result = services.push_orders(
        shop=shop, order_ids=[fresh.pk, moved.pk, stale.pk], create_label=True, actor=services.Actor.command("test")
    )
    now = timezone.now()
    for order, point, when in ((fresh, "1000001", 4.5), (moved, "1000001", 1), (stale, "1000003", 5.5)):
        OrderShipment.objects.filter(order=order).update(
            service_point_checked_at=now - timedelta(minutes=when), service_point_checked_id=point
        )
    run_chunk_until_done(PushBatch.objects.get(pk=result.batch_id), deadline_seconds=30, pause=0.05)

    checked = sorted(entry["path"].split("/")[-2] for entry in routes(sandbox, CHECK))
    assert checked == ["1000002", "1000003"]  # a point other than the one checked, and a check too old
    assert {row(o).state for o in (fresh, moved, stale)} == {ShipmentState.LABELLED}
    assert row(moved).service_point_checked_id == "1000002"


def test_checks_whose_label_request_found_no_slot_are_not_repeated_by_the_next_run(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    from sendcloud_integration.pipeline import process

    orders = [OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000001") for _ in range(3)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    taken = mock.Mock(Kind=budget.Kind, acquire=mock.Mock(return_value=30.0))  # another chunk took the slot
    with mock.patch("sendcloud_integration.pipeline.labels.request.budget", taken):
        process.process_chunk(batch_id=result.batch_id, chunk_number=1)
    assert (len(routes(sandbox, CHECK)), routes(sandbox, LABELS)) == (3, [])

    run_chunk_until_done(PushBatch.objects.get(pk=result.batch_id), deadline_seconds=30, pause=0.05)

    assert len(routes(sandbox, CHECK)) == 3  # the next run used the recorded checks
    assert {row(o).state for o in orders} == {ShipmentState.LABELLED}


def test_a_check_is_fresh_for_exactly_check_fresh() -> None:
    from django.utils import timezone

    from sendcloud_integration.pipeline.labels.service_points import CHECK_FRESH, checked_recently

    now = timezone.now()
    edge = OrderShipment(service_point_checked_at=now - CHECK_FRESH, service_point_checked_id="1000001")
    assert checked_recently(edge, "1000001", now)
    assert not checked_recently(edge, "1000001", now + timedelta(microseconds=1))
    assert not checked_recently(edge, "1000002", now)
    assert not checked_recently(OrderShipment(service_point_checked_id="1000001"), "1000001", now)


def test_a_point_named_only_by_the_carriers_id_is_not_checked(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop, service_point_carrier_id="NL-219873")  # home option: Sendcloud decides
    label(shop, order)
    assert routes(sandbox, CHECK) == []
    assert row(order).state == ShipmentState.LABELLED


def test_a_non_eu_label_is_stored_with_its_customs_declaration(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    integration.sender_eori_number = "NL123456789000"
    integration.save()
    order = OrderFactory(
        shop=shop,
        order_number="CH-7",
        shipping_option_code="dhl_express:express",
        address=SWISS,
        customs_invoice_number="INV-7",
        lines=[{"hs_code": "610910", "origin_country": "PT"}],
    )
    home = OrderFactory(shop=shop)
    label(shop, order, home)

    stored = row(order)
    assert stored.state == ShipmentState.LABELLED
    assert stored.customs_declaration.name.startswith("customs/acme/CH-7-")
    with stored.customs_declaration.open("rb") as handle:
        text = PdfReader(handle).pages[0].extract_text() or ""
    assert "CN23" in text
    assert "CH-7" in text
    assert not row(home).customs_declaration
    fetched = [e["path"] for e in sandbox.request_log() if e["route"] == "GET /parcel-documents/{type}"]
    assert sum("customs-declaration" in str(path) for path in fetched) == 1  # one GET for the order's papers


def test_a_declaration_not_served_yet_is_waited_for_and_the_label_kept_back(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    integration.sender_eori_number = "NL123456789000"
    integration.save()
    sandbox.set_faults({"GET /parcel-documents/{type}": [{"kind": "server_error", "times": 2}]})
    order = OrderFactory(
        shop=shop,
        shipping_option_code="dhl_express:express",
        address=SWISS,
        customs_invoice_number="INV-8",
        lines=[{"hs_code": "610910", "origin_country": "PT"}],
    )
    label(shop, order)
    stored = row(order)
    assert stored.state == ShipmentState.LABELLED
    assert stored.customs_declaration
    assert stored.label_file
    assert sandbox.snapshot()["duplicate_labels"] == 0


def test_checks_never_spend_the_budget_of_the_labels_they_clear(
    shop: Shop, integration: Any, sandbox: SandboxServer, settings: Any, tmp_path: Any
) -> None:
    """25 pickup orders and a write budget of 23 a minute: the push (1), then the first 20 checks and their
    label request (21). The last slot is not taken by a check, since no label request would be left for it.
    Checking all 25 first would have spent the budget on checks alone, and the next minute the same again:
    no label ever."""
    from sendcloud_integration.pipeline import process

    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.SENDCLOUD_UNSAFE_PER_MINUTE = 23
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 100
    budget.reset_store()
    try:
        orders = [OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id="1000001") for _ in range(25)]
        result = services.push_orders(
            shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
        )
        outcome = process.process_chunk(batch_id=result.batch_id, chunk_number=1)
    finally:
        budget.reset_store()

    assert outcome.retry_in is not None  # comes back for the other five
    assert len(routes(sandbox, CHECK)) == 20
    assert len(labelled_orders(sandbox)) == 20
    assert OrderShipment.objects.filter(state=ShipmentState.LABEL_QUEUED).count() == 5


# --- one run at a time: what each answer of the check does to this run's label request -----------------


def one_run(shop: Shop, *orders: Order) -> Any:
    """Push the orders and run their chunk once (the push and the label phase): the run's outcome."""
    from sendcloud_integration.pipeline import process

    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    return process.process_chunk(batch_id=result.batch_id, chunk_number=1)


def requested(order: Order) -> bool:
    return row(order).label_requested_at is not None


def test_orders_after_a_home_delivery_are_checked_and_requested_in_the_same_run(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    home = OrderFactory(shop=shop, order_number="A-1")
    pickup = OrderFactory(shop=shop, order_number="A-2", shipping_option_code=PICKUP, service_point_id="1000001")
    # Same method, so the same label request: one known only by the carrier's id (not checked), then one checked.
    by_carrier = OrderFactory(
        shop=shop, order_number="A-3", shipping_option_code=PICKUP, service_point_carrier_id="NL-219874"
    )
    checked = OrderFactory(shop=shop, order_number="A-4", shipping_option_code=PICKUP, service_point_id="1000002")
    one_run(shop, home, pickup, by_carrier, checked)
    assert all(requested(order) for order in (home, pickup, by_carrier, checked))


@pytest.mark.parametrize("first_point", ["999", "1000005"])
def test_an_order_after_a_refused_point_is_still_requested_in_the_same_run(
    shop: Shop, integration: Any, sandbox: SandboxServer, first_point: str
) -> None:
    refused = OrderFactory(shop=shop, order_number="B-1", shipping_option_code=PICKUP, service_point_id=first_point)
    good = OrderFactory(shop=shop, order_number="B-2", shipping_option_code=PICKUP, service_point_id="1000001")
    one_run(shop, refused, good)
    assert row(refused).state == ShipmentState.FAILED
    assert requested(good)


def test_a_check_sendcloud_could_not_answer_counts_an_attempt_and_holds_only_its_order(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    sandbox.set_faults({CHECK: [{"kind": "server_error", "times": 1}]})
    held = OrderFactory(shop=shop, order_number="C-1", shipping_option_code=PICKUP, service_point_id="1000001")
    good = OrderFactory(shop=shop, order_number="C-2", shipping_option_code=PICKUP, service_point_id="1000002")
    outcome = one_run(shop, held, good)
    assert outcome.counts_attempt is True
    assert outcome.retry_in is not None
    assert row(held).state == ShipmentState.LABEL_QUEUED
    assert not requested(held)
    assert requested(good)
    chunk = PushBatch.objects.get(pk=row(held).batch_id).chunks.get()
    assert "503" in chunk.last_error


def test_a_refused_or_impossible_check_fails_only_its_order(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    from sendcloud_integration.sendcloud.client import SendcloudV3Client
    from sendcloud_integration.sendcloud.errors import SendcloudError

    odd = OrderFactory(shop=shop, order_number="D-1", shipping_option_code=PICKUP, service_point_id="12a")
    refused = OrderFactory(shop=shop, order_number="D-2", shipping_option_code=PICKUP, service_point_id="1000002")
    good = OrderFactory(shop=shop, order_number="D-3", shipping_option_code=PICKUP, service_point_id="1000001")
    real = SendcloudV3Client.check_service_point

    def check(self: SendcloudV3Client, point_id: str) -> bool:
        if point_id == "1000002":
            raise SendcloudError("Sendcloud refused the check.")
        return real(self, point_id)

    with mock.patch.object(SendcloudV3Client, "check_service_point", check):
        one_run(shop, odd, refused, good)
    assert row(odd).state == ShipmentState.FAILED
    assert "The service point 12a could not be checked" in row(odd).last_error
    assert row(refused).state == ShipmentState.FAILED
    assert "could not be checked: Sendcloud refused the check." in row(refused).last_error
    assert requested(good)


def test_once_the_budget_is_spent_no_further_check_asks_for_a_slot(
    shop: Shop, integration: Any, sandbox: SandboxServer
) -> None:
    orders = [
        OrderFactory(shop=shop, shipping_option_code=PICKUP, service_point_id=point)
        for point in ("1000001", "1000002", "1000004")
    ]
    spent = mock.Mock(Kind=budget.Kind, acquire=mock.Mock(return_value=30.0))
    with mock.patch("sendcloud_integration.pipeline.labels.service_points.budget", spent):
        one_run(shop, *orders)
    assert spent.acquire.call_count == 1
    assert routes(sandbox, CHECK) == []
