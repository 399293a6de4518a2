"""Shared reads in the label phase: statuses listed a hundred at a time, labels fetched twenty at a time.

GETs are what limits labels per minute (1000 a minute per account), so these tests count them: a chunk's
poll must cost one ``GET /v3/shipments`` per 100 shipments, its labels one
``GET /v3/parcel-documents/label`` per 20 parcels — and a bulk document that does not match its parcels
page by page must never put a label on the wrong order.
"""

from __future__ import annotations

import io
import math
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone
from pypdf import PdfReader, PdfWriter

from sendcloud_integration.models import OrderShipment, PushBatch, PushChunk, SendcloudIntegration, ShipmentState
from sendcloud_integration.pipeline import labels
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.sendcloud.types import ParcelInfo
from tests.factories import OrderFactory
from tests.pipeline.labels.fake import (
    LABEL_PDF_URL,
    LABELS_PDF_URL,
    SHIPMENT_URL,
    SHIPMENTS_URL,
    FakeSendcloud,
    Shipment,
    calls_to,
)
from tests.pipeline.labels.test_label_phase import oid, queue, row, run_chunk, states
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db


def single_reads() -> int:
    """``GET /v3/shipments/{id}`` calls."""
    return sum(1 for c in responses.calls if SHIPMENT_URL.match((c.request.url or "").split("?")[0]))


def single_downloads() -> int:
    """``GET /v3/parcels/{id}/documents/label`` calls."""
    return sum(1 for c in responses.calls if LABEL_PDF_URL.match((c.request.url or "").split("?")[0]))


def list_calls() -> list[responses.Call]:
    return calls_to(SHIPMENTS_URL, "GET")


def assert_own_label(order: Order, fake: FakeSendcloud) -> None:
    """The order's stored file is one page: its own label (order and tracking number on it)."""
    shipment = row(order)
    assert shipment.state == ShipmentState.LABELLED
    with shipment.label_file.open("rb") as handle:
        reader = PdfReader(handle)
        assert len(reader.pages) == 1
        text = reader.pages[0].extract_text()
    assert f"Order: {order.order_number}" in text
    assert f"Tracking: {fake.shipment_of(oid(order)).tracking_number}" in text
    assert shipment.tracking_number == fake.shipment_of(oid(order)).tracking_number


def test_polling_a_chunk_costs_one_list_get_per_round_not_one_get_per_order(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(45)]
    for order in orders:
        fake.script(oid(order), "pending:1")  # one poll sees ANNOUNCING, the next READY_TO_SEND
    batch = queue(shop, orders)

    run_chunk(batch)

    assert states(batch) == {ShipmentState.LABELLED: 45}
    polls = list_calls()
    assert len(polls) == 2  # two rounds of ⌈45/100⌉ list GETs
    assert single_reads() == 0
    for call in polls:
        assert call.request.params["page_size"] == "100"
        assert set(call.request.params["shipment_uuids"].split(",")) == {fake.shipment_of(oid(o)).id for o in orders}
    # ⌈45/20⌉ documents, no single downloads, and each order holds exactly its own label.
    downloads = calls_to(LABELS_PDF_URL, "GET")
    assert [len(c.request.url.split("parcels=")) - 1 for c in downloads] == [20, 20, 5]  # type: ignore[union-attr]
    assert single_downloads() == 0
    for order in orders:
        assert_own_label(order, fake)
    gets = sum(1 for c in responses.calls if c.request.method == "GET")
    assert gets / 45 <= 0.2
    assert all(fake.created_for(oid(o)) == 1 for o in orders)


def test_a_paged_list_is_followed_by_its_cursor(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    fake.list_page_cap = 20  # a server that pages at 20 whatever page_size says
    orders = [OrderFactory(shop=shop) for _ in range(45)]
    batch = queue(shop, orders)

    run_chunk(batch)

    assert states(batch) == {ShipmentState.LABELLED: 45}
    polls = list_calls()
    assert len(polls) == math.ceil(45 / 20)
    assert "cursor" not in polls[0].request.params
    assert all("cursor" in c.request.params for c in polls[1:])
    assert single_reads() == 0


def test_more_than_a_page_of_rows_is_polled_in_pages_of_a_hundred(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(150)]
    batch = queue(shop, orders)
    asked = timezone.now() - timedelta(minutes=5)
    for order in orders:
        fake.know(oid(order), order.order_number)
        made = fake.create_shipment(oid(order))
        OrderShipment.objects.filter(order=order).update(
            state=ShipmentState.LABELLING,
            label_requested_at=asked,
            updated_at=asked,
            sendcloud_shipment_id=made.id,
            sendcloud_parcel_id=str(made.parcel_id),
        )
    PushBatch.objects.filter(pk=batch.pk).delete()  # orphans: the sweep settles them

    settled = labels.reconcile_orphans(shipment_ids=list(OrderShipment.objects.values_list("pk", flat=True)))

    assert settled == 150
    assert [len(c.request.params["shipment_uuids"].split(",")) for c in list_calls()] == [100, 50]
    assert len(calls_to(LABELS_PDF_URL, "GET")) == math.ceil(150 / 20)
    assert single_reads() == single_downloads() == 0
    for order in orders[::37]:
        assert_own_label(order, fake)


@pytest.mark.parametrize(
    "trouble",
    ["short_bulk_documents", "reversed_bulk_documents", "missing_bulk_documents", "truncated_downloads"],
)
def test_a_bulk_document_that_does_not_match_page_by_page_is_fetched_label_by_label(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, trouble: str
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    setattr(fake, trouble, 1)
    batch = queue(shop, orders)

    run_chunk(batch)

    assert len(calls_to(LABELS_PDF_URL, "GET")) == 1
    assert single_downloads() == 3
    for order in orders:
        assert_own_label(order, fake)
    assert PushChunk.objects.get(batch=batch).attempts == 0


def test_a_bulk_download_that_fails_transiently_is_waited_for_not_split_up(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    fake.unavailable_bulk_documents = 1
    batch = queue(shop, orders)

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (first.retry_in is not None, first.counts_attempt) == (True, False)
    assert states(batch) == {ShipmentState.LABELLING: 3}
    assert single_downloads() == 0

    run_chunk(batch)

    assert len(calls_to(LABELS_PDF_URL, "GET")) == 2
    assert single_downloads() == 0
    for order in orders:
        assert_own_label(order, fake)
    assert PushChunk.objects.get(batch=batch).attempts == 0


def test_a_list_that_ignores_its_filter_is_not_trusted_to_be_complete(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    strangers = [OrderFactory(shop=shop) for _ in range(2)]
    for stranger in strangers:
        fake.know(oid(stranger), stranger.order_number)
        fake.create_shipment(oid(stranger))
    missing, *listed = [OrderFactory(shop=shop) for _ in range(3)]
    fake.list_ignores_filters = True
    fake.unlisted = {oid(missing)}
    batch = queue(shop, [missing, *listed])

    run_chunk(batch)

    assert len(list_calls()) == 1
    # The answer held shipments nobody asked for, so a shipment absent from it proves nothing: the
    # missing one is read directly instead of being taken for "not saved yet".
    assert single_reads() == 1
    assert len(calls_to(LABELS_PDF_URL, "GET")) == 1
    for order in [missing, *listed]:
        assert_own_label(order, fake)
    for stranger in strangers:
        assert not OrderShipment.objects.filter(order=stranger).exists()


def test_a_shipment_missing_from_the_list_is_not_readable_yet(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    late, *others = [OrderFactory(shop=shop) for _ in range(3)]
    fake.unlisted = {oid(late)}
    batch = queue(shop, [late, *others])

    first = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert (first.retry_in is not None, first.counts_attempt) == (True, False)
    assert row(late).state == ShipmentState.LABELLING
    assert single_reads() == 0  # no GET per missing shipment: it is simply not there yet
    for order in others:
        assert_own_label(order, fake)

    fake.unlisted = set()
    run_chunk(batch)

    assert single_reads() == 1  # a lone row is read directly
    assert single_downloads() == 1
    assert_own_label(late, fake)


def test_an_unreadable_single_label_is_waited_for(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud
) -> None:
    order = OrderFactory(shop=shop)
    fake.truncated_downloads = 1
    batch = queue(shop, [order])

    outcomes = run_chunk(batch)

    assert [o.counts_attempt for o in outcomes if o.retry_in is not None] == [False]
    assert single_downloads() == 2
    assert_own_label(order, fake)


def test_list_read_failures_count_attempts_then_fail_keeping_the_evidence(
    shop: Shop, integration: SendcloudIntegration, fake: FakeSendcloud, settings: Any
) -> None:
    settings.SENDCLOUD_MAX_ATTEMPTS = 2
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    for order in orders:
        fake.script(oid(order), "pending:1000")
    batch = queue(shop, orders)
    processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    fake.failing_reads = 10

    second = processing.process_chunk(batch_id=batch.pk, chunk_number=1)
    assert (second.retry_in is not None, second.counts_attempt) == (True, True)
    last = processing.process_chunk(batch_id=batch.pk, chunk_number=1)

    assert last.retry_in is None
    assert states(batch) == {ShipmentState.FAILED: 3}
    for order in orders:
        failed = row(order)
        assert "Gave up after 2 attempts" in failed.last_error
        assert failed.sendcloud_shipment_id == fake.shipment_of(oid(order)).id  # evidence for a re-push


# -- splitting ---------------------------------------------------------------------------------------------------


def made(fake: FakeSendcloud, count: int) -> list[Shipment]:
    """Shipments of orders only the fake knows (no rows needed to test the split)."""
    for n in range(count):
        fake.know(f"split-{n}", f"SPLIT-{n}")
    return [fake.create_shipment(f"split-{n}") for n in range(count)]


def parcel(number: int) -> ParcelInfo:
    return ParcelInfo(
        parcel_id=str(number),
        status_code="READY_TO_SEND",
        status_message="",
        tracking_number=f"3STEST{number}",
        tracking_url="",
        carrier="postnl",
        label_url="",
        errors=[],
    )


def test_split_gives_each_parcel_its_own_page(fake: FakeSendcloud) -> None:
    shipments = made(fake, 3)
    document = fake.label_document(shipments)

    pages = labels.split_label_pages(document, [parcel(s.parcel_id) for s in shipments])

    assert pages is not None
    for shipment, page in zip(shipments, pages, strict=True):
        reader = PdfReader(io.BytesIO(page))
        assert len(reader.pages) == 1
        assert shipment.tracking_number in reader.pages[0].extract_text()


def test_split_refuses_a_wrong_page_count_a_wrong_order_and_a_damaged_file(fake: FakeSendcloud) -> None:
    shipments = made(fake, 3)
    parcels = [parcel(s.parcel_id) for s in shipments]

    assert labels.split_label_pages(fake.label_document(shipments[:2]), parcels) is None
    assert labels.split_label_pages(fake.label_document(shipments[::-1]), parcels) is None
    document = fake.label_document(shipments)
    assert labels.split_label_pages(document[: len(document) // 2], parcels) is None
    assert labels.split_label_pages(b"<html>no</html>", parcels) is None


def test_split_takes_pages_without_text_in_request_order() -> None:
    writer = PdfWriter()
    for _ in range(2):
        writer.add_blank_page(width=298, height=420)
    out = io.BytesIO()
    writer.write(out)

    pages = labels.split_label_pages(out.getvalue(), [parcel(1), parcel(2)])

    assert pages is not None
    assert len(pages) == 2
