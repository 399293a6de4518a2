"""The batch labels endpoint serving stored documents: 202 while built, then 200/206/304/416, and 409 or 422.

Every status and header of the contract in docs/api.md ("Batch labels") has a test here. Documents are built
in-process (``tests.documents.build_wanted``); the broker is replaced by a list (``dispatched``).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from sendcloud_integration.models import BatchDocument, DocumentStatus, OrderShipment, PrinterProfile, ShipmentState
from sendcloud_integration.printing import documents
from sendcloud_integration.push import services
from tests.api.test_labels_pdf import label_pdf, store_label
from tests.documents import build_wanted, content_of, finish, labels_url
from tests.factories import OrderFactory
from webshop.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any, integration: object) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def batch(shop: Shop) -> Any:
    orders = [OrderFactory(shop=shop, order_number=f"A-{n}") for n in (2, 1, 3)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    from sendcloud_integration.models import PushBatch

    batch = PushBatch.objects.get(pk=result.batch_id)
    for order in orders:
        store_label(order)
    finish(batch)
    return batch


def ready(client: APIClient, batch: Any, params: dict[str, Any] | None = None) -> Any:
    first = client.get(labels_url(batch.pk), params or {})
    assert first.status_code == 202, first.content
    build_wanted()
    response = client.get(labels_url(batch.pk), params or {})
    assert response.status_code == 200
    return response


# --- 202 while it is being built ---------------------------------------------------------------------------------


def test_a_missing_document_is_202_with_retry_after_and_one_build_dispatched(
    client_for: APIClient, batch: Any, dispatched: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for.get(labels_url(batch.pk))
    assert response.status_code == 202
    assert response["Content-Type"].startswith("application/json")
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body == {
        "status": "building",
        "format": "pdf",
        "paper_size": "A6",
        "dpi": 72,
        "sort": "order_number",
        "labels_done": 0,
        "labels_total": 0,
        "percentage": 0,
        "retry_after": int(response["Retry-After"]),
        "problem": "",
    }
    document = BatchDocument.objects.get(batch=batch)
    assert dispatched == [document.pk]
    with django_capture_on_commit_callbacks(execute=True):
        again = client_for.get(labels_url(batch.pk))
    assert again.status_code == 202
    assert dispatched == [document.pk]  # asked again while it is built: not sent twice


def test_a_batch_still_making_labels_is_202_and_nothing_is_built(client_for: APIClient, batch: Any) -> None:
    from sendcloud_integration.models import BatchStatus, PushBatch

    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING)
    response = client_for.get(labels_url(batch.pk))
    assert response.status_code == 202
    assert response.json()["status"] == "waiting_for_labels"
    assert response["Retry-After"] == "10"
    assert not BatchDocument.objects.exists()


def test_a_transient_failure_is_202_with_the_problem_and_sent_again_after_its_retries(
    client_for: APIClient,
    batch: Any,
    dispatched: list[int],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk is full on every try: never a 409; the 202 says why, and a request after the task's last
    retry sends the build again (the row stays wanted)."""
    from sendcloud_integration.printing import builder
    from tests.printing.test_builder import FullDisk

    client_for.get(labels_url(batch.pk))
    monkeypatch.setattr(builder.tempfile, "TemporaryFile", FullDisk)
    document = BatchDocument.objects.get(batch=batch)
    outcome = builder.build_document(document_id=document.pk, attempt=builder.BUILD_RETRIES)
    assert (outcome.status, outcome.retry_in) == ("retrying", None)  # the task's retries are spent
    response = client_for.get(labels_url(batch.pk))
    assert response.status_code == 202
    assert response.json()["problem"] == (
        "The document could not be written to storage (No space left on device); it is built again shortly."
    )
    assert dispatched == []
    BatchDocument.objects.update(requested_at=timezone.now() - documents.stalled_after())
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for.get(labels_url(batch.pk)).status_code == 202
    assert dispatched == [document.pk]


def test_progress_is_reported_while_building(client_for: APIClient, batch: Any) -> None:
    client_for.get(labels_url(batch.pk))
    BatchDocument.objects.update(labels_total=10, labels_done=4, started_at=timezone.now(), heartbeat_at=timezone.now())
    body = client_for.get(labels_url(batch.pk)).json()
    assert (body["labels_done"], body["labels_total"], body["percentage"]) == (4, 10, 40)


def test_a_stalled_build_is_sent_again(
    client_for: APIClient, batch: Any, dispatched: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client_for.get(labels_url(batch.pk))
    long_ago = timezone.now() - documents.stalled_after() * 2
    BatchDocument.objects.update(started_at=long_ago, heartbeat_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for.get(labels_url(batch.pk)).status_code == 202
    assert len(dispatched) == 2
    assert build_wanted()[0].status == "ready"


# --- 200 and its headers -------------------------------------------------------------------------------------------


def test_the_stored_document_is_streamed_with_etag_and_a_useful_name(client_for: APIClient, batch: Any) -> None:
    response = ready(client_for, batch)
    data = content_of(response)
    document = BatchDocument.objects.get(batch=batch)
    assert response["Content-Type"] == "application/pdf"
    assert response["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"' == f'"{document.checksum}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data)) == str(document.size)
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Content-Disposition"] == (
        f'attachment; filename="labels-acme-{batch.created_at:%Y%m%d}-{str(batch.pk)[:8]}-pdf-A6-by-order_number.pdf"'
    )
    assert response["X-RateLimit-Limit"] == "60"
    assert [p.extract_text().strip() for p in PdfReader(io.BytesIO(data)).pages] == ["A-1", "A-2", "A-3"]


@pytest.mark.parametrize(
    ("slug", "disposition"),
    [
        ('o"k', 'attachment; filename="labels-o\\"k-{rest}"'),  # the quote escaped: the name stays one token
        ("café", "attachment; filename*=utf-8''labels-caf%C3%A9-{rest}"),  # RFC 6266's form for non-ASCII
    ],
)
def test_a_shop_slug_with_a_quote_or_not_ascii_gives_a_well_formed_file_name(
    client_for: APIClient, batch: Any, slug: str, disposition: str
) -> None:
    Shop.objects.filter(pk=batch.shop_id).update(slug=slug)
    response = ready(client_for, batch)
    rest = f"{batch.created_at:%Y%m%d}-{str(batch.pk)[:8]}-pdf-A6-by-order_number.pdf"
    assert response["Content-Disposition"] == disposition.format(rest=rest)


def test_zpl_is_served_as_application_zpl(client_for: APIClient, batch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ZPL labels come from Sendcloud; here they are stored beforehand, as a first build would have."""
    from sendcloud_integration.models import ParcelLabelFile, ShipmentParcel

    for shipment in OrderShipment.objects.filter(batch=batch).select_related("order"):
        parcel = ShipmentParcel.objects.create(
            shipment=shipment, position=1, sendcloud_parcel_id=str(shipment.pk), label_file=shipment.label_file.name
        )
        name = shipment.label_file.storage.save(
            f"labels/{shipment.order.order_number}.zpl",
            ContentFile(f"^XA^FD{shipment.order.order_number}^FS^XZ".encode()),
        )
        ParcelLabelFile.objects.create(parcel=parcel, variant="zpl", file=name)
    response = ready(client_for, batch, {"format": "zpl"})
    assert response["Content-Type"] == "application/zpl"
    assert response["Content-Disposition"].endswith('-zpl-by-order_number.zpl"')
    assert content_of(response) == b"^XA^FDA-1^FS^XZ\n^XA^FDA-2^FS^XZ\n^XA^FDA-3^FS^XZ\n"


def test_if_none_match_is_304(client_for: APIClient, batch: Any) -> None:
    etag = ready(client_for, batch)["ETag"]
    response = client_for.get(labels_url(batch.pk), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert response.content == b""
    assert client_for.get(labels_url(batch.pk), HTTP_IF_NONE_MATCH='"other"').status_code == 200


# --- Range -----------------------------------------------------------------------------------------------------


def test_a_range_is_206_with_content_range(client_for: APIClient, batch: Any) -> None:
    whole = content_of(ready(client_for, batch))
    response = client_for.get(labels_url(batch.pk), HTTP_RANGE="bytes=10-99")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-99/{len(whole)}"
    assert response["Content-Length"] == "90"
    assert content_of(response) == whole[10:100]
    tail = client_for.get(labels_url(batch.pk), HTTP_RANGE="bytes=-20")
    assert tail.status_code == 206
    assert content_of(tail) == whole[-20:]
    rest = client_for.get(labels_url(batch.pk), HTTP_RANGE=f"bytes={len(whole) - 5}-")
    assert content_of(rest) == whole[-5:]
    assert rest["Content-Range"] == f"bytes {len(whole) - 5}-{len(whole) - 1}/{len(whole)}"


def test_a_range_past_the_end_is_416(client_for: APIClient, batch: Any) -> None:
    size = len(content_of(ready(client_for, batch)))
    response = client_for.get(labels_url(batch.pk), HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


def test_if_range_with_another_etag_or_several_ranges_get_the_whole_file(client_for: APIClient, batch: Any) -> None:
    whole = content_of(ready(client_for, batch))
    other = client_for.get(labels_url(batch.pk), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"stale"')
    assert other.status_code == 200
    assert content_of(other) == whole
    several = client_for.get(labels_url(batch.pk), HTTP_RANGE="bytes=0-9,20-29")
    assert several.status_code == 200
    etag = several["ETag"]
    same = client_for.get(labels_url(batch.pk), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert same.status_code == 206


# --- changes, failures, bad input --------------------------------------------------------------------------------


def test_a_changed_label_rebuilds_the_document(client_for: APIClient, batch: Any) -> None:
    old = ready(client_for, batch)["ETag"]
    shipment = OrderShipment.objects.get(batch=batch, order__order_number="A-2")
    shipment.label_file.save("A-2-new.pdf", ContentFile(label_pdf("A-2 again")))
    OrderShipment.objects.filter(pk=shipment.pk).update(labelled_at=timezone.now(), state=ShipmentState.LABELLED)
    assert client_for.get(labels_url(batch.pk)).status_code == 202
    build_wanted()
    response = client_for.get(labels_url(batch.pk))
    assert response["ETag"] != old
    assert "A-2 again" in [p.extract_text().strip() for p in PdfReader(io.BytesIO(content_of(response))).pages]


def test_a_stored_document_gone_from_storage_is_built_again_not_a_500(client_for: APIClient, batch: Any) -> None:
    ready(client_for, batch)
    document = BatchDocument.objects.get(batch=batch)
    document.file.storage.delete(document.file.name)
    assert client_for.get(labels_url(batch.pk)).status_code == 202
    build_wanted()
    assert client_for.get(labels_url(batch.pk)).status_code == 200


def test_a_missing_label_is_a_409_naming_the_order(client_for: APIClient, batch: Any) -> None:
    name = OrderShipment.objects.get(batch=batch, order__order_number="A-3").label_file.name
    OrderShipment.objects.get(batch=batch, order__order_number="A-3").label_file.storage.delete(name)
    assert client_for.get(labels_url(batch.pk)).status_code == 202
    assert [outcome.status for outcome in build_wanted()] == ["failed"]
    response = client_for.get(labels_url(batch.pk))
    assert response.status_code == 409
    assert response.json()["error"] is True
    assert response.json()["message"].startswith("The label of order A-3 could not be read")
    assert "labels/" not in response.content.decode()
    assert BatchDocument.objects.get(batch=batch).status == DocumentStatus.FAILED


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"format": "gif"}, "format", "The selected format is invalid."),
        ({"paper_size": "A3"}, "paper_size", "The selected paper_size is invalid."),
        ({"sort": "weight"}, "sort", "The selected sort is invalid."),
        ({"dpi": "abc"}, "dpi", "The dpi field must be an integer."),
        ({"format": "png", "dpi": "72"}, "dpi", "dpi for PNG must be one of 150, 300."),
        ({"format": "pdf", "dpi": "300"}, "dpi", "dpi for PDF must be one of 72."),
        ({"format": "zpl", "paper_size": "A4"}, "paper_size", None),
    ],
)
def test_bad_overrides_are_422_naming_the_field(
    client_for: APIClient, batch: Any, params: dict[str, str], field: str, message: str | None
) -> None:
    response = client_for.get(labels_url(batch.pk), params)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field]
    if message is not None:
        assert errors[field] == [message]
    assert not BatchDocument.objects.exists()


def test_the_profiles_dpi_is_kept_when_it_fits_the_format(shop: Shop) -> None:
    from sendcloud_integration.printing.profiles import resolve_spec

    PrinterProfile.objects.create(shop=shop, label_format="png", paper_size="A4", dpi=150, sort="first_sku")
    assert resolve_spec(shop).variant == "png-A4-150"
    assert resolve_spec(shop, label_format="pdf").variant == "pdf-A4"  # 150 does not fit PDF: 72
    assert resolve_spec(shop, label_format="pdf").dpi == 72
    assert resolve_spec(shop, label_format="zpl").variant == "zpl"
    assert resolve_spec(shop, sort="carrier").sort == "carrier"
