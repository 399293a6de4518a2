"""The builder: the streaming PDF writer, one build per document under concurrency, a superseded build,
and the finished batch starting its shop's default document."""

from __future__ import annotations

import errno
import io
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

from sendcloud_integration import tasks
from sendcloud_integration.models import (
    BatchDocument,
    DocumentStatus,
    OrderShipment,
    PrinterProfile,
    PushBatch,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches, dispatch
from sendcloud_integration.pipeline.sweep import FINISH_GRACE, sweep
from sendcloud_integration.printing import builder, documents
from sendcloud_integration.printing.pdfstream import StreamingPdfWriter
from sendcloud_integration.printing.profiles import resolve_spec
from sendcloud_integration.push import services
from tests.api.test_labels_pdf import label_pdf, store_label
from tests.documents import finish
from tests.factories import OrderFactory
from webshop.models import Shop


def inherited_resources_pdf(text: str, pages: int) -> bytes:
    """Pages that take their font and media box from the page tree, not from themselves."""
    writer = PdfWriter()
    for _ in range(pages):
        page = writer.add_blank_page(width=200, height=300)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 250 Td ({text}) Tj ET".encode())
        page.replace_contents(stream)
        del page["/MediaBox"]
        if "/Resources" in page:
            del page["/Resources"]
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    tree = writer._root_object["/Pages"].get_object()
    tree[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    tree[NameObject("/MediaBox")] = ArrayObject(
        [NumberObject(0), NumberObject(0), NumberObject(200), NumberObject(300)]
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_the_streaming_writer_keeps_every_page_its_text_and_inherited_attributes() -> None:
    out = io.BytesIO()
    writer = StreamingPdfWriter(out)
    assert writer.append(label_pdf("one")) == 1
    assert writer.append(io.BytesIO(inherited_resources_pdf("two", pages=2))) == 2
    assert writer.append(label_pdf("three")) == 1
    writer.close()
    reader = PdfReader(io.BytesIO(out.getvalue()), strict=True)
    assert [page.extract_text().strip() for page in reader.pages] == ["one", "two", "two", "three"]
    assert [(int(p.mediabox.width), int(p.mediabox.height)) for p in reader.pages][1:3] == [(200, 300), (200, 300)]
    assert writer.page_count == 4


def test_the_streaming_writer_refuses_what_is_not_a_pdf_and_an_empty_document() -> None:
    writer = StreamingPdfWriter(io.BytesIO())
    with pytest.raises(PdfReadError):
        writer.append(b"<html>not a label</html>")
    with pytest.raises(ValueError, match="at least one page"):
        StreamingPdfWriter(io.BytesIO()).close()


def labelled(shop: Shop, count: int = 3) -> PushBatch:
    orders = [OrderFactory(shop=shop, order_number=f"A-{n}") for n in range(count)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)
    for order in orders:
        store_label(order)
    return batch


@pytest.fixture
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


def stored_documents(media: Path) -> list[str]:
    """The document files in storage (labels are kept elsewhere under MEDIA_ROOT)."""
    return sorted(str(path.relative_to(media)) for path in (media / "documents").rglob("*") if path.is_file())


@pytest.mark.django_db(transaction=True)  # the builder's transactions really commit (or roll back)
@pytest.mark.usefixtures("_media", "integration")
@pytest.mark.parametrize("step", ["_write", "_finish"], ids=["while-writing", "after-storing-the-file"])
def test_a_build_superseded_by_changed_labels_leaves_no_file_in_storage(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, step: str
) -> None:
    """Labels change while the file is written, or after it is stored but before the row is READY."""
    batch = labelled(shop)
    finish(batch)
    state = documents.document_for(batch=batch)
    assert state.document is not None
    original = getattr(builder, step)

    def labels_change_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if step == "_write":
            original(*args, **kwargs)
        documents.build_again(document=BatchDocument.objects.get(pk=state.document.pk))  # type: ignore[union-attr]
        if step == "_finish":
            return original(*args, **kwargs)
        return None

    monkeypatch.setattr(builder, step, labels_change_meanwhile)
    assert builder.build_document(document_id=state.document.pk).status == "superseded"
    document = BatchDocument.objects.get(pk=state.document.pk)
    assert document.status == DocumentStatus.BUILDING
    assert not document.file
    assert stored_documents(tmp_path) == []
    monkeypatch.setattr(builder, step, original)
    assert builder.build_document(document_id=document.pk).status == "ready"
    assert builder.build_document(document_id=document.pk).status == "nothing to do"
    document.refresh_from_db()
    assert stored_documents(tmp_path) == [document.file.name]
    documents.build_again(document=document)  # a rebuild replaces the file: the old one is deleted
    assert builder.build_document(document_id=document.pk).status == "ready"
    document.refresh_from_db()
    assert stored_documents(tmp_path) == [document.file.name]


@pytest.fixture
def default_documents_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``start_default_document`` run at once, as a worker would, when the pipeline sends it (by name)."""
    sent: list[str] = []

    def run(batch_id: Any) -> None:
        sent.append(str(batch_id))
        tasks.start_default_document.run(str(batch_id))

    monkeypatch.setattr(dispatch, "start_default_document", run)
    return sent


@pytest.mark.django_db
@pytest.mark.usefixtures("_media", "integration")
def test_a_finished_batch_starts_its_shops_default_document_once(
    shop: Shop, dispatched: list[int], default_documents_started: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    PrinterProfile.objects.create(shop=shop, label_format="zpl", sort="carrier")
    batch = labelled(shop)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.finish_batch.run(str(batch.pk))
        tasks.finish_batch.run(str(batch.pk))  # a duplicate callback: the batch is finished already
    document = BatchDocument.objects.get(batch=batch)
    assert (document.variant, document.sort, document.status) == ("zpl", "carrier", DocumentStatus.BUILDING)
    assert default_documents_started == [str(batch.pk)]
    assert dispatched == [document.pk]


@pytest.mark.django_db
@pytest.mark.usefixtures("_media", "integration")
def test_a_batch_the_sweep_finishes_starts_its_shops_default_document(
    shop: Shop,
    dispatched: list[int],
    default_documents_started: list[str],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chord callback never came: the sweep finishes the batch, and its document starts all the same."""
    monkeypatch.setattr(dispatch, "dispatch_batch", lambda batch_id, numbers: None)
    batch = labelled(shop)
    PushBatch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - FINISH_GRACE - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        report = sweep()
    assert report.finished_batches == 1
    document = BatchDocument.objects.get(batch=batch)
    assert (document.variant, document.status) == ("pdf-A6", DocumentStatus.BUILDING)
    assert default_documents_started == [str(batch.pk)]
    assert dispatched == [document.pk]


@pytest.mark.django_db
@pytest.mark.usefixtures("_media", "integration")
def test_a_batch_without_labels_starts_no_document(
    shop: Shop, default_documents_started: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    order = OrderFactory(shop=shop)
    result = services.push_orders(
        shop=shop, order_ids=[order.pk], create_label=False, actor=services.Actor.command("test")
    )
    OrderShipment.objects.filter(order=order).update(state=ShipmentState.PUSHED)
    with django_capture_on_commit_callbacks(execute=True):
        assert batches.finish_batch(batch_id=result.batch_id).is_finished  # type: ignore[arg-type]
    assert default_documents_started == []
    assert not BatchDocument.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_media", "integration")
def test_concurrent_requests_and_builds_make_one_document_once(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four requests at once: one row, one dispatch; four workers at once: one build, the others find it taken."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    batch = labelled(shop)
    finish(batch)
    sent: list[int] = []
    lock = threading.Lock()

    def record(document_id: int) -> None:
        with lock:
            sent.append(document_id)

    monkeypatch.setattr(documents.dispatch, "build_batch_document", record)
    spec = resolve_spec(shop)

    def run_all(work: Any, count: int = 4) -> list[Any]:
        barrier = threading.Barrier(count)
        results: list[Any] = [None] * count

        def one(index: int) -> None:
            try:
                barrier.wait()
                results[index] = work()
            finally:
                connection.close()

        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    states = run_all(lambda: documents.request_document(batch=PushBatch.objects.get(pk=batch.pk), spec=spec))
    assert {state.availability for state in states} == {documents.Availability.BUILDING}
    document = BatchDocument.objects.get(batch=batch)
    assert sent == [document.pk]
    outcomes = run_all(lambda: builder.build_document(document_id=document.pk).status)
    assert sorted(outcomes) == ["nothing to do", "nothing to do", "nothing to do", "ready"]
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY


def test_the_build_is_dispatched_by_the_name_of_its_task() -> None:
    """``pipeline.dispatch`` sends it by name: the name must be the task's."""
    import inspect

    from celery import current_app

    from sendcloud_integration.pipeline import dispatch as dispatching

    assert "BUILD_BATCH_DOCUMENT" in inspect.getsource(dispatching.build_batch_document)
    assert "START_DEFAULT_DOCUMENT" in inspect.getsource(dispatching.start_default_document)
    assert tasks.build_batch_document.name in current_app.tasks
    assert tasks.build_batch_document.name == dispatching.BUILD_BATCH_DOCUMENT
    assert tasks.start_default_document.name == dispatching.START_DEFAULT_DOCUMENT
    assert tasks.start_default_document.name in current_app.tasks


def test_a_bulk_zpl_document_is_split_per_parcel_only_when_it_can_be_trusted() -> None:
    from sendcloud_integration.pipeline.labels.documents import split_zpl_labels
    from sendcloud_integration.sendcloud.types import ParcelInfo

    def parcel(tracking: str) -> ParcelInfo:
        return ParcelInfo(tracking, "", "", tracking, "", "", "", [])

    one, two = parcel("3S1"), parcel("3S2")
    bundle = b"^XA^FD3S1^FS^XZ\n^xa^FD3S2^FS^xz"
    assert split_zpl_labels(bundle, [one, two]) == [b"^XA^FD3S1^FS^XZ\n", b"^xa^FD3S2^FS^xz\n"]
    assert split_zpl_labels(bundle, [two, one]) is None  # each label shows the other parcel's number
    assert split_zpl_labels(bundle, [one]) is None  # not one label per parcel
    assert split_zpl_labels(b"^XA^FDno number^FS^XZ^XA^XZ", [one, two]) is not None  # nothing contradicts


class FullDisk(io.BytesIO):
    """A temporary file on a disk that fills up after the PDF's header: later writes fail as the OS says."""

    def write(self, data: Any) -> int:
        if self.tell() > 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


@pytest.mark.django_db
@pytest.mark.usefixtures("_media", "integration")
def test_a_full_disk_while_writing_the_document_does_not_blame_a_label(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write fails while a label is open for reading: that is the disk's fault, not order A-0's."""
    batch = labelled(shop)
    finish(batch)
    state = documents.document_for(batch=batch)
    assert state.document is not None
    monkeypatch.setattr(builder.tempfile, "TemporaryFile", FullDisk)
    outcome = builder.build_document(document_id=state.document.pk)
    assert (outcome.status, outcome.retry_in) == ("retrying", builder.RETRY_DELAY_FIRST)
    document = BatchDocument.objects.get(pk=state.document.pk)
    assert document.status == DocumentStatus.BUILDING  # a full disk is nobody's fault: tried again, not failed
    assert document.error == (
        "The document could not be written to storage (No space left on device); it is built again shortly."
    )
    assert (document.started_at, document.heartbeat_at) == (None, None)  # the claim is given up
    monkeypatch.undo()
    assert builder.build_document(document_id=document.pk, attempt=1).status == "ready"
    document.refresh_from_db()
    assert (document.status, document.error) == (DocumentStatus.READY, "")


def test_every_error_a_document_build_reports_is_an_application_error() -> None:
    from sendcloud_integration.exceptions import DocumentBuildFailed, LabelFileUnreadable, LabelFormatUnavailable
    from wemasy.errors import ApplicationError

    for error in (LabelFormatUnavailable, LabelFileUnreadable, DocumentBuildFailed):
        assert issubclass(error, ApplicationError)
        assert error("x").http_status == 409


def test_a_transient_failure_is_tried_again_after_a_growing_wait_then_left_to_the_next_request() -> None:
    waits = [builder.retry_delay(attempt) for attempt in range(builder.BUILD_RETRIES + 1)]
    assert waits == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, None]
    assert builder.retry_delay(0, at_least=45.0) == 45.0  # Sendcloud's Retry-After, when longer
