"""Each format end to end: labels fetched from the sandbox in the format asked, stored per format, and one
stored batch document with one label per parcel, in the chosen order, of the right size.

The sandbox renders each label's order and tracking number as text (PDF text, ZPL ``^FD`` fields, PNG
``tEXt`` chunks), which is how these tests tell which label is where.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from PIL import Image
from pypdf import PdfReader

from sendcloud_integration.models import (
    BatchDocument,
    DocumentStatus,
    OrderShipment,
    ParcelLabelFile,
    PrinterProfile,
    PushBatch,
    ShipmentParcel,
)
from sendcloud_integration.printing import builder, documents
from sendcloud_integration.printing.profiles import resolve_spec
from sendcloud_sandbox import SandboxServer
from tests.documents import build_wanted

pytestmark = pytest.mark.django_db

#: Per order, its parcels' tracking numbers in position order (read from the rows the label phase stored).
Parcels = dict[str, list[str]]


def parcels_of(batch: PushBatch) -> Parcels:
    found: Parcels = {}
    for number, tracking in (
        ShipmentParcel.objects.filter(shipment__batch=batch)
        .order_by("shipment__order__order_number", "position")
        .values_list("shipment__order__order_number", "tracking_number")
    ):
        found.setdefault(number, []).append(tracking)
    return found


def build(batch: PushBatch, **overrides: Any) -> BatchDocument:
    """Ask for the document (202: a build is wanted), build it as the worker would, and read it back."""
    state = documents.document_for(batch=batch, **overrides)
    assert state.availability is documents.Availability.BUILDING
    assert [outcome.status for outcome in build_wanted()] == ["ready"]
    again = documents.document_for(batch=batch, **overrides)
    assert again.availability is documents.Availability.READY
    assert again.document is not None
    return again.document


def stored(document: BatchDocument) -> bytes:
    with document.file.open("rb") as handle:
        return handle.read()


def expected_trackings(parcels: Parcels, order: list[str]) -> list[str]:
    return [tracking for number in order for tracking in parcels[number]]


@pytest.mark.parametrize(
    ("sort", "order"),
    [("order_number", ["A-1", "A-2", "A-3"]), ("carrier", ["A-2", "A-1", "A-3"]), ("first_sku", ["A-2", "A-3", "A-1"])],
)
def test_pdf_a6_has_one_page_per_parcel_in_the_sort_order(
    labelled_batch: PushBatch, sort: str, order: list[str]
) -> None:
    """dhl_express sorts before postnl; the first SKUs are A-1 (A-2), B-1 (A-3), C-1 (A-1)."""
    document = build(labelled_batch, sort=sort)
    reader = PdfReader(io.BytesIO(stored(document)), strict=True)
    texts = [page.extract_text() for page in reader.pages]
    trackings = expected_trackings(parcels_of(labelled_batch), order)
    assert len(texts) == len(trackings) == 5
    assert all(tracking in text for tracking, text in zip(trackings, texts, strict=True))
    assert {(int(p.mediabox.width), int(p.mediabox.height)) for p in reader.pages} == {(298, 420)}
    assert document.labels_total == document.labels_done == 5
    assert not ParcelLabelFile.objects.exists()  # PDF A6 is the label phase's own files: nothing fetched


def test_pdf_a4_is_fetched_at_a4_and_stored_per_parcel(labelled_batch: PushBatch, sandbox: SandboxServer) -> None:
    before = len(sandbox.request_log())
    document = build(labelled_batch, label_format="pdf", paper_size="A4")
    reader = PdfReader(io.BytesIO(stored(document)), strict=True)
    assert {(int(p.mediabox.width), int(p.mediabox.height)) for p in reader.pages} == {(595, 842)}
    assert len(reader.pages) == 5
    gets = [entry["path"] for entry in sandbox.request_log()[before:]]
    assert len(gets) == 1  # five parcels, one bulk GET
    assert gets[0].startswith("/api/v3/parcel-documents/label?") or "parcel-documents/label" in gets[0]
    assert "paper_size=A4" in gets[0]
    assert ParcelLabelFile.objects.filter(variant="pdf-A4").count() == 5


def test_zpl_bundle_is_one_label_per_parcel_one_after_the_other(labelled_batch: PushBatch) -> None:
    document = build(labelled_batch, label_format="zpl")
    content = stored(document).decode()
    labels = re.findall(r"\^XA.*?\^XZ", content, flags=re.DOTALL)
    assert len(labels) == 5
    assert content.count("^XA") == content.count("^XZ") == 5
    assert re.sub(r"\^XA.*?\^XZ", "", content, flags=re.DOTALL).strip() == ""  # nothing between labels
    trackings = expected_trackings(parcels_of(labelled_batch), ["A-1", "A-2", "A-3"])
    assert all(f"^FD{tracking}^FS" in label for tracking, label in zip(trackings, labels, strict=True))
    assert document.variant == "zpl"
    assert document.paper_size == ""


@pytest.mark.parametrize(("dpi", "size"), [(300, (1240, 1748)), (150, (620, 874))])
def test_png_zip_holds_one_image_per_parcel_of_the_pixel_size_of_the_dpi(
    labelled_batch: PushBatch, sandbox: SandboxServer, dpi: int, size: tuple[int, int]
) -> None:
    before = len(sandbox.request_log())
    document = build(labelled_batch, label_format="png", dpi=dpi)
    with zipfile.ZipFile(io.BytesIO(stored(document))) as archive:
        names = archive.namelist()
        images = [Image.open(io.BytesIO(archive.read(name))) for name in names]
    assert names == ["00001-A-1-1.png", "00002-A-1-2.png", "00003-A-1-3.png", "00004-A-2-1.png", "00005-A-3-1.png"]
    for image in images:
        image.load()  # decodes every pixel: a valid image
        assert image.size == size
        assert image.format == "PNG"
    trackings = expected_trackings(parcels_of(labelled_batch), ["A-1", "A-2", "A-3"])
    assert [image.text["Tracking"] for image in images] == trackings  # type: ignore[attr-defined]
    gets = [entry["path"] for entry in sandbox.request_log()[before:]]
    assert len(gets) == 5  # one GET per parcel: the bulk route has no dpi
    assert all(f"dpi={dpi}" in path and "/documents/label" in path for path in gets)


def test_labels_in_a_format_are_fetched_once(labelled_batch: PushBatch, sandbox: SandboxServer) -> None:
    first = build(labelled_batch, label_format="zpl")
    before = len(sandbox.request_log())
    second = build(labelled_batch, label_format="zpl", sort="carrier")  # another document, the same labels
    assert len(sandbox.request_log()) == before

    def labels(document: BatchDocument) -> list[str]:
        return re.findall(r"\^XA.*?\^XZ", stored(document).decode(), flags=re.DOTALL)

    assert labels(first) != labels(second)  # another order...
    assert sorted(labels(first)) == sorted(labels(second))  # ...of the same stored labels


def test_the_printer_profile_is_the_default(labelled_batch: PushBatch) -> None:
    PrinterProfile.objects.create(shop=labelled_batch.shop, label_format="zpl", sort="carrier")
    document = build(labelled_batch)
    assert (document.variant, document.sort) == ("zpl", "carrier")
    assert resolve_spec(labelled_batch.shop, label_format="pdf").variant == "pdf-A6"


def test_customs_declaration_follows_its_orders_labels_in_pdf_only(labelled_batch: PushBatch) -> None:
    """The customs work fills ``customs_declaration``; the PDF puts it right after that order's labels."""
    from tests.api.test_labels_pdf import label_pdf

    shipment = OrderShipment.objects.get(batch=labelled_batch, order__order_number="A-2")
    shipment.customs_declaration.save("customs-A-2.pdf", ContentFile(label_pdf("CUSTOMS-A-2", pages=2)))
    document = build(labelled_batch)
    texts = [page.extract_text() for page in PdfReader(io.BytesIO(stored(document))).pages]
    assert len(texts) == 7
    a2 = parcels_of(labelled_batch)["A-2"][0]
    at = next(index for index, text in enumerate(texts) if a2 in text)
    assert texts[at + 1].strip() == texts[at + 2].strip() == "CUSTOMS-A-2"
    zpl = stored(build(labelled_batch, label_format="zpl")).decode()
    assert "CUSTOMS" not in zpl
    assert zpl.count("^XA") == 5


def test_a_label_missing_from_storage_fails_the_build_naming_the_order(labelled_batch: PushBatch) -> None:
    parcel = ShipmentParcel.objects.get(shipment__order__order_number="A-3")
    parcel.label_file.storage.delete(parcel.label_file.name)
    state = documents.document_for(batch=labelled_batch)
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "failed"
    state.document.refresh_from_db()
    assert state.document.status == DocumentStatus.FAILED
    assert state.document.error.startswith("The label of order A-3 could not be read")
    assert not state.document.file


def test_a_format_sendcloud_will_not_serve_fails_the_build_naming_the_order(
    labelled_batch: PushBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk refused, then each single GET refused (a carrier whose label exists only in another format)."""
    from sendcloud_integration.pipeline.labels import download
    from sendcloud_integration.sendcloud.client import SendcloudV3Client
    from sendcloud_integration.sendcloud.errors import NotFound, TransientError

    def refused(*args: Any, **kwargs: Any) -> bytes:
        raise NotFound("Document type requested is not available for the parcel.")

    monkeypatch.setattr(SendcloudV3Client, "download_labels", refused)
    monkeypatch.setattr(SendcloudV3Client, "download_label", refused)
    state = documents.document_for(batch=labelled_batch, label_format="zpl")
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "failed"
    state.document.refresh_from_db()
    assert state.document.error == (
        "Sendcloud did not serve the ZPL label of order A-1: Document type requested is not available for the parcel."
    )
    assert not ParcelLabelFile.objects.exists()

    tries: list[int] = []

    def busy(*args: Any, **kwargs: Any) -> bytes:
        tries.append(1)
        raise TransientError("Sendcloud answered 503.", outcome_uncertain=False)

    monkeypatch.setattr(SendcloudV3Client, "download_label", busy)
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    state = documents.document_for(batch=labelled_batch, label_format="png")
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "retrying"  # Sendcloud down: not failed
    state.document.refresh_from_db()
    assert state.document.status == DocumentStatus.BUILDING
    assert state.document.error.startswith("Sendcloud did not serve the PNG A6 300 dpi label of order A-1 now")
    assert len(tries) == download.FORMAT_FETCH_ATTEMPTS


def test_a_sendcloud_outage_that_clears_up_delays_the_document_and_never_fails_it(
    labelled_batch: PushBatch, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every label GET answers 503 for a while: the build is tried again by its task (never a 409), then made."""
    from celery.exceptions import Retry

    from sendcloud_integration import tasks
    from sendcloud_integration.pipeline.labels import download

    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    outage = download.FORMAT_FETCH_ATTEMPTS
    sandbox.set_faults(
        {
            "GET /parcel-documents/{type}": [{"kind": "server_error", "status": 503, "times": outage}],
            "GET /parcels/{id}/documents/{type}": [{"kind": "server_error", "status": 503, "times": outage}],
        }
    )
    state = documents.document_for(batch=labelled_batch, label_format="zpl")
    assert state.document is not None
    with pytest.raises(Retry):  # the task asks Celery to run it again after the backoff
        tasks.build_batch_document.run(state.document.pk)
    again = documents.document_for(batch=labelled_batch, label_format="zpl")  # what the API answers meanwhile
    assert again.availability is documents.Availability.BUILDING  # a 202, not DocumentBuildFailed's 409
    assert again.document is not None
    assert again.document.error.startswith("Sendcloud did not serve the ZPL label of order A-1, A-2, A-3 now")
    assert not ParcelLabelFile.objects.exists()

    # The outage is over (the sandbox's faults are spent): the retry makes the document.
    assert builder.build_document(document_id=state.document.pk, attempt=1).status == "ready"
    done = documents.document_for(batch=labelled_batch, label_format="zpl")
    assert done.availability is documents.Availability.READY
    assert done.document is not None
    assert done.document.error == ""
    assert ParcelLabelFile.objects.filter(variant="zpl").count() == 5


class FakeClock:
    """``timezone.now`` moved on by every sleep of the label fetch, so long waits take no real time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django.utils import timezone

        self.offset = timedelta()
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + self.offset)

    def sleep(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def test_a_build_waiting_for_the_budget_keeps_its_heartbeat_and_is_not_built_twice(
    labelled_batch: PushBatch, monkeypatch: pytest.MonkeyPatch, dispatched: list[int]
) -> None:
    """Four minutes of waiting for the account's budget, twice ``SENDCLOUD_DOCUMENT_STALLED_SECONDS``: the
    requests meanwhile find the build alive (no second build), and the build is stored."""
    from sendcloud_integration.pipeline.labels import download

    clock = FakeClock(monkeypatch)
    spec = resolve_spec(labelled_batch.shop, label_format="zpl")
    asked: list[documents.Availability] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        asked.append(documents.request_document(batch=labelled_batch, spec=spec).availability)

    waits = iter([30.0] * 8)
    monkeypatch.setattr(download.budget, "acquire", lambda **kwargs: next(waits, 0.0))
    monkeypatch.setattr(download.time, "sleep", sleep)
    monkeypatch.setattr(builder, "PROGRESS_EVERY", 0.0)
    state = documents.request_document(batch=labelled_batch, spec=spec)
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "ready"
    assert clock.offset >= 2 * documents.stalled_after()
    assert len(asked) == 48  # 8 waits of 30 s, in slices of 5 s
    assert set(asked) == {documents.Availability.BUILDING}
    assert dispatched == []  # never taken for dead: not sent again


def test_a_budget_spent_for_too_long_puts_the_build_off_instead_of_waiting_for_ever(
    labelled_batch: PushBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sendcloud_integration.pipeline.labels import download

    clock = FakeClock(monkeypatch)
    calls = iter(range(100))  # spent for ever, as far as the build can tell (bounded, so the test cannot hang)
    monkeypatch.setattr(download.budget, "acquire", lambda **kwargs: 30.0 if next(calls, None) is not None else 0.0)
    monkeypatch.setattr(download.time, "sleep", clock.sleep)
    state = documents.document_for(batch=labelled_batch, label_format="zpl")
    assert state.document is not None
    outcome = builder.build_document(document_id=state.document.pk)
    assert (outcome.status, outcome.retry_in) == ("retrying", 30.0)
    assert clock.offset == timedelta(seconds=download.FORMAT_BUDGET_WAIT_MAX)
    state.document.refresh_from_db()
    assert state.document.status == DocumentStatus.BUILDING
    assert "waited 300s for the shop's Sendcloud request budget" in state.document.error


def test_a_carrier_that_makes_zpl_only_fails_a_pdf_document_at_once_naming_the_order(
    labelled_batch: PushBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sendcloud serves a carrier's native ZPL label as ZPL whatever is asked: here DHL Express's (order A-2).
    Asking again cannot help, so the build fails on the first answer, with what to do instead."""
    from sendcloud_sandbox import documents as sandbox_documents
    from sendcloud_sandbox.handlers import documents as sandbox_handlers

    asked_dhl: list[str] = []

    def native_zpl(data: Any, mime: str, **kwargs: Any) -> bytes:
        if data.carrier.lower().startswith("dhl"):
            asked_dhl.append(mime)
            return sandbox_documents.render_label(data, sandbox_documents.ZPL)
        return sandbox_documents.render_label(data, mime, **kwargs)

    def bulk(labels: Any, mime: str, **kwargs: Any) -> bytes:
        if any(data.carrier.lower().startswith("dhl") for data in labels):
            return sandbox_documents.render_labels(labels, sandbox_documents.ZPL)
        return sandbox_documents.render_labels(labels, mime, **kwargs)

    monkeypatch.setattr(sandbox_handlers, "render_label", native_zpl)
    monkeypatch.setattr(sandbox_handlers, "render_labels", bulk)
    state = documents.document_for(batch=labelled_batch, label_format="pdf", paper_size="A4")
    assert state.document is not None
    assert builder.build_document(document_id=state.document.pk).status == "failed"
    state.document.refresh_from_db()
    assert state.document.status == DocumentStatus.FAILED
    assert state.document.error == (
        "The carrier of order A-2 makes its labels in ZPL only, so Sendcloud serves them as ZPL and not as "
        "PDF A4. Print this batch as ZPL."
    )
    assert asked_dhl == ["application/pdf"]  # asked once: no retries of what cannot change
