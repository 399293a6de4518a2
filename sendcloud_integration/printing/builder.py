"""Building a stored batch document: every label of the batch, in its order, as one file with its checksum.

Runs in a worker (``tasks.build_batch_document``), never in a request. The steps:

1. **Claim** the document's row: only a row that is wanted (BUILDING) and not being built by a live
   worker is taken; a redelivered or duplicate task finds it taken and does nothing.
2. **Fetch** the labels missing in the document's format (``pipeline.labels.download.fetch_in_format``):
   none for PDF A6, the label phase's own files; ZPL, PNG or another paper size are fetched once and kept.
3. **Write** the labels one at a time into a temporary file on disk, hashing as it goes: a PDF through
   :class:`~sendcloud_integration.printing.pdfstream.StreamingPdfWriter` (one label's objects in memory at
   a time) with each order's customs declaration after its labels; ZPL as the labels one after another;
   PNG as a zip of one image per label (stored, not compressed again: PNG is compressed already).
4. **Store** the file under a name of its own and mark the row READY with checksum and size, if the row
   still wants what was built (its ``build_token``); otherwise the file is dropped.

A label missing from storage, or one Sendcloud will not serve in the format, fails the build with a
message naming the order (the API answers 409 with it, the admin shows it); a document short of one label
is never stored. A failure that is nobody's fault — Sendcloud down or busy, a full disk, the database gone
for a moment — does not fail the document: the row stays wanted, shows what went wrong, and the task tries
again after a backoff (``retry_delay``); a request finding it wanted sends it again too. Progress
(``labels_done`` of ``labels_total``) and a heartbeat are written every couple of seconds.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, BinaryIO, Final, cast

from django.core.files import File
from django.core.files.storage import Storage
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import get_valid_filename

from sendcloud_integration.exceptions import LabelFileUnreadable, LabelFormatUnavailable, SendcloudUnavailable
from sendcloud_integration.models import (
    BatchDocument,
    DocumentStatus,
    LabelFormat,
    SendcloudIntegration,
    integration_problem,
)
from sendcloud_integration.pipeline.labels.documents import zpl_labels
from sendcloud_integration.pipeline.labels.download import (
    FetchFormat,
    WantedParcel,
    fetch_in_format,
    store_in_format,
)
from sendcloud_integration.printing.batch_labels import label_storage
from sendcloud_integration.printing.documents import stalled_after
from sendcloud_integration.printing.pdfstream import StreamingPdfWriter
from sendcloud_integration.printing.profiles import DocumentSpec
from sendcloud_integration.selectors.documents import OrderLabels, batch_document_labels, variant_files

logger = logging.getLogger(__name__)

#: Seconds between two progress writes (each is one UPDATE).
PROGRESS_EVERY: Final = 2.0
#: How a file is copied into a zip entry: in blocks, never whole.
COPY_BLOCK: Final = 256 * 1024


#: A label of a document: its order's shipment id and the parcel's index among that order's labels.
LabelKey = tuple[int, int]


class Superseded(Exception):
    """The row no longer wants this build (labels changed, or another worker took a stalled build over)."""


class SpoolWriteFailed(Exception):
    """Writing the document's temporary file failed (a full disk, say): the build's trouble, not a label's.

    Raised by the output around the temporary file, so that :func:`_opened` (which blames the label being
    read for anything that goes wrong while it is open) lets it through; ``__cause__`` is the ``OSError``.
    """


@dataclass(frozen=True)
class BuildOutcome:
    status: str  # "ready", "failed", "retrying", "superseded", "nothing to do"
    labels: int = 0
    #: "retrying": seconds until the task should try again; None once it has tried ``BUILD_RETRIES`` times
    #: (the row stays wanted, and the next request for the document sends it again).
    retry_in: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "labels": self.labels, "retry_in": self.retry_in}


#: What makes a build worth trying again rather than failed: Sendcloud down or busy, a full disk or another
#: error of the storage, the database gone for a moment. None of them is the document's fault.
TRANSIENT_ERRORS: Final = (SendcloudUnavailable, SpoolWriteFailed, OSError, DatabaseError)
#: Times the task tries a build again after a transient error, waiting ``retry_delay`` between tries.
BUILD_RETRIES: Final = 6
#: The first wait after a transient error, doubled each time up to ``RETRY_DELAY_MAX`` (10 s … 5 min).
RETRY_DELAY_FIRST: Final = 10.0
RETRY_DELAY_MAX: Final = 300.0


def retry_delay(attempt: int, *, at_least: float | None = None) -> float | None:
    """Seconds before try ``attempt + 1`` of a build (``attempt`` 0 is the first), or None when none is left."""
    if attempt >= BUILD_RETRIES:
        return None
    return max(at_least or 0.0, min(RETRY_DELAY_MAX, RETRY_DELAY_FIRST * 2**attempt))


def build_document(*, document_id: int, attempt: int = 0) -> BuildOutcome:
    """Claim, fetch, write and store one batch document (see the module docstring).

    ``attempt`` counts the task's tries after a transient error (Celery's ``request.retries``). A permanent
    failure (a label missing or damaged in storage, a format Sendcloud refuses for a parcel, the shop's keys
    refused) marks the row FAILED with a message naming the order. A transient one leaves the row wanted,
    with what went wrong as its ``error`` for people to see, and says when to try again.
    """
    claim = _claim(document_id)
    if claim is None:
        return BuildOutcome("nothing to do")
    document, started_at = claim
    progress = _Progress(document, started_at)
    try:
        labels = _build(document, progress)
    except Superseded:
        logger.info("batch document=%s build superseded", document.pk)
        return BuildOutcome("superseded")
    except (LabelFileUnreadable, LabelFormatUnavailable) as exc:
        logger.warning("batch document=%s build failed: %s", document.pk, exc.message)
        _fail(document, started_at, exc.message)
        return BuildOutcome("failed")
    except TRANSIENT_ERRORS as exc:
        problem = _transient_problem(exc)
        delay = retry_delay(attempt, at_least=getattr(exc, "retry_after", None))
        logger.warning(
            "batch document=%s build not done (%s: %s); %s",
            document.pk,
            type(exc).__name__,
            exc,
            f"trying again in {delay:.0f}s" if delay is not None else "the next request for it sends it again",
            exc_info=not isinstance(exc, SendcloudUnavailable),
        )
        _release(document, started_at, problem)
        return BuildOutcome("retrying", retry_in=delay)
    except Exception:
        logger.exception("batch document=%s build failed on an internal error", document.pk)
        _fail(document, started_at, "The document could not be made because of an internal error (logged).")
        raise
    return BuildOutcome("ready", labels)


# -- the steps ----------------------------------------------------------------------------------------------------


def _claim(document_id: int) -> tuple[BatchDocument, datetime] | None:
    """Take the row if it is wanted and nobody live is building it; returns it and this claim's start time."""
    now = timezone.now()
    with transaction.atomic():
        document = (
            BatchDocument.objects.select_for_update(of=("self",))
            .select_related("batch__shop")
            .filter(pk=document_id)
            .first()
        )
        if document is None or document.status != DocumentStatus.BUILDING:
            return None
        if document.heartbeat_at is not None and now - document.heartbeat_at <= stalled_after():
            return None  # a live build has it
        document.started_at = document.heartbeat_at = now
        document.labels_done = 0
        document.save(update_fields=["started_at", "heartbeat_at", "labels_done"])
    return document, now


def _build(document: BatchDocument, progress: _Progress) -> int:
    spec = DocumentSpec(document.label_format, document.paper_size, document.dpi, document.sort)
    batch = document.batch
    orders = batch_document_labels(batch=batch, sort=spec.sort)
    labels = sum(len(order.parcels) for order in orders)
    if spec.is_stored_label:
        names = {
            (order.shipment_id, index): parcel.pdf_name
            for order in orders
            for index, parcel in enumerate(order.parcels)
        }
        progress.start(total=labels)
    else:
        names = _labels_in_format(document, spec, orders, progress, labels)
    storage = label_storage()
    documents = document.file.storage
    with tempfile.TemporaryFile() as spool:
        output = _Hashing(cast(BinaryIO, spool))
        _write(spec, orders, names, output, storage, progress)
        spool.seek(0)
        progress.beat(force=True)
        stem = f"{spec.variant}-by-{spec.sort}-{document.build_token.hex[:8]}"
        name = f"documents/{batch.shop.slug}/{batch.pk}/{stem}.{spec.extension}"
        stored = documents.save(name, File(spool, name=name))
    _finish(document, progress.started_at, stored, output, documents)
    return labels


def _labels_in_format(
    document: BatchDocument, spec: DocumentSpec, orders: list[OrderLabels], progress: _Progress, labels: int
) -> dict[LabelKey, str]:
    """The storage name of each parcel's label in the document's format, fetching those not kept yet."""
    have = variant_files(batch=document.batch, variant=spec.variant)
    names: dict[LabelKey, str] = {}
    wanted: list[tuple[LabelKey, WantedParcel]] = []
    for order in orders:
        for index, parcel in enumerate(order.parcels):
            if parcel.parcel_pk is None:
                raise LabelFormatUnavailable(
                    f"The label of order {order.order_number} was stored before labels were kept per parcel; "
                    f"only PDF A6 can be printed for it. Re-push it with labels to print it as {spec.describe()}."
                )
            if parcel.parcel_pk in have:
                names[(order.shipment_id, index)] = have[parcel.parcel_pk]
            else:
                wanted.append(
                    (
                        (order.shipment_id, index),
                        WantedParcel(
                            parcel_pk=parcel.parcel_pk,
                            parcel_id=parcel.parcel_id,
                            tracking_number=parcel.tracking_number,
                            order_id=order.order_id,
                            order_number=order.order_number,
                            pdf_name=parcel.pdf_name,
                        ),
                    )
                )
    progress.start(total=labels + len(wanted))
    if not wanted:
        return names
    integration = SendcloudIntegration.objects.filter(shop_id=document.batch.shop_id).first()
    if integration is None or integration_problem(integration) is not None:
        raise LabelFormatUnavailable(
            f"{spec.describe()} labels must be fetched from Sendcloud, and the shop has no usable integration."
        )
    fmt = FetchFormat(
        label_format=spec.label_format,
        paper_size=spec.paper_size,
        dpi=spec.dpi,
        variant=spec.variant,
        extension=spec.label_format,  # a label's own file: .pdf, .zpl, .png
        name=spec.describe(),
    )
    keys: dict[int, LabelKey] = {item.parcel_pk: key for key, item in wanted}
    storage = label_storage()
    for item, content in fetch_in_format(
        integration=integration,
        batch_id=document.batch_id,
        wanted=[item for _, item in wanted],
        fmt=fmt,
        beat=progress.beat,  # waiting for the budget or a retry is still a live build
    ):
        names[keys[item.parcel_pk]] = store_in_format(item, fmt, content, storage=storage)
        progress.advance()
    return names


def _write(
    spec: DocumentSpec,
    orders: list[OrderLabels],
    names: dict[LabelKey, str],
    output: _Hashing,
    storage: Storage,
    progress: _Progress,
) -> None:
    if spec.label_format == LabelFormat.PDF:
        writer = StreamingPdfWriter(cast(BinaryIO, output))
        for order in orders:
            for index in range(len(order.parcels)):
                key = (order.shipment_id, index)
                with _opened(storage, names[key], f"The label of order {order.order_number}") as handle:
                    writer.append(handle)
                progress.advance()
            if order.customs_name:
                with _opened(
                    storage, order.customs_name, f"The customs declaration of order {order.order_number}"
                ) as h:
                    writer.append(h)
        writer.close()
    elif spec.label_format == LabelFormat.ZPL:
        for order in orders:
            for index in range(len(order.parcels)):
                what = f"The ZPL label of order {order.order_number}"
                with _opened(storage, names[(order.shipment_id, index)], what) as handle:
                    found = zpl_labels(handle.read())
                if not found:
                    raise LabelFileUnreadable(f"{what} holds no ^XA…^XZ label; no document was made.")
                output.write(b"".join(label + b"\n" for label in found))
                progress.advance()
    else:
        with zipfile.ZipFile(cast(IO[bytes], output), "w", compression=zipfile.ZIP_STORED) as archive:
            sequence = 0
            for order in orders:
                for index in range(len(order.parcels)):
                    sequence += 1
                    entry = f"{sequence:05d}-{_safe(order.order_number)}-{index + 1}.png"
                    what = f"The PNG label of order {order.order_number}"
                    key = (order.shipment_id, index)
                    with _opened(storage, names[key], what) as handle, archive.open(entry, "w") as target:
                        head = handle.read(8)
                        if head != b"\x89PNG\r\n\x1a\n":
                            raise LabelFileUnreadable(f"{what} is not a PNG image; no document was made.")
                        target.write(head)
                        shutil.copyfileobj(handle, target, COPY_BLOCK)
                    progress.advance()


def _finish(document: BatchDocument, started_at: datetime, stored: str, output: _Hashing, storage: Storage) -> None:
    """Mark the row READY with the stored file, if it still wants this build; otherwise drop the file.

    Files are deleted once the transaction is over, never from an ``on_commit`` inside it: a superseded
    build leaves the block by raising, and Django discards the callbacks of a block that exits on an
    exception (the file would stay in storage for good, pointed at by nothing).
    """
    try:
        ours, replaced = _mark_ready(document, started_at, stored, output)
    except BaseException:
        storage.delete(stored)  # the row was not changed: nothing points at the new file
        raise
    if not ours:
        storage.delete(stored)
        raise Superseded
    if replaced and replaced != stored:
        storage.delete(replaced)  # the previous build's file, which the row no longer names
    logger.info("batch document=%s stored: %s (%s bytes)", document.pk, stored, output.size)


def _mark_ready(document: BatchDocument, started_at: datetime, stored: str, output: _Hashing) -> tuple[bool, str]:
    """The row READY with ``stored`` if it still wants this build (same token and start).

    Returns whether it did, and the name of the file the row named before ("" for none).
    """
    with transaction.atomic():
        current = BatchDocument.objects.select_for_update().get(pk=document.pk)
        if current.build_token != document.build_token or current.started_at != started_at:
            return False, ""
        BatchDocument.objects.filter(pk=document.pk).update(
            status=DocumentStatus.READY,
            file=stored,
            checksum=output.digest.hexdigest(),
            size=output.size,
            labels_done=F("labels_total"),
            error="",
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
    return True, current.file.name or ""


def _release(document: BatchDocument, started_at: datetime, problem: str) -> None:
    """Give the claim up after a transient error: the row stays wanted (BUILDING), with the problem to show.

    Without a heartbeat the next try (the task's retry, or a request finding the row wanted for half of
    ``SENDCLOUD_DOCUMENT_STALLED_SECONDS``) can claim it at once. When the database itself is what failed,
    nothing can be written: the heartbeat then goes stale and a request sends the build again.
    """
    try:
        BatchDocument.objects.filter(pk=document.pk, build_token=document.build_token, started_at=started_at).update(
            started_at=None, heartbeat_at=None, requested_at=timezone.now(), labels_done=0, error=problem[:2000]
        )
    except DatabaseError:
        logger.warning("batch document=%s: its claim could not be given up (the database)", document.pk)


def _transient_problem(exc: BaseException) -> str:
    """What went wrong, for people, without a file's path; the build is being tried again."""
    if isinstance(exc, SendcloudUnavailable):
        return f"{exc.message} The document is built again shortly."
    if isinstance(exc, SpoolWriteFailed | OSError):
        cause = exc.__cause__ if isinstance(exc, SpoolWriteFailed) else exc
        reason = getattr(cause, "strerror", None) or type(cause).__name__
        return f"The document could not be written to storage ({reason}); it is built again shortly."
    return "The database could not be reached while the document was made; it is built again shortly."


def _fail(document: BatchDocument, started_at: datetime, message: str) -> None:
    BatchDocument.objects.filter(pk=document.pk, build_token=document.build_token, started_at=started_at).update(
        status=DocumentStatus.FAILED, error=message[:2000], finished_at=timezone.now()
    )


# -- helpers --------------------------------------------------------------------------------------------------------


@contextmanager
def _opened(storage: Storage, name: str, what: str) -> Iterator[BinaryIO]:
    """A stored file open for reading; a missing or unreadable one is :class:`LabelFileUnreadable` naming ``what``."""
    if not name:
        raise LabelFileUnreadable(f"{what} has no stored file; no document was made. Re-push the order with labels.")
    try:
        handle = storage.open(name, "rb")
    except OSError as exc:
        raise LabelFileUnreadable(
            f"{what} could not be read ({type(exc).__name__}: it is missing from storage); no document was made. "
            "Re-push the order with labels to fetch it again."
        ) from None
    try:
        yield cast(BinaryIO, handle)
    except (LabelFileUnreadable, Superseded, SpoolWriteFailed):
        raise
    except Exception as exc:  # pypdf raises many kinds of error on a damaged file; each means "unreadable"
        raise LabelFileUnreadable(
            f"{what} could not be read ({type(exc).__name__}); no document was made. "
            "Re-push the order with labels to fetch it again."
        ) from exc
    finally:
        handle.close()


def _safe(text: str) -> str:
    try:
        return get_valid_filename(text)[:40]
    except Exception:  # SuspiciousFileOperation for a name of dots only
        return "order"


class _Hashing:
    """A write-only file that hashes and counts what passes through it (enough for pypdf's writer and zipfile)."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        try:
            self._target.write(data)
        except OSError as exc:
            raise SpoolWriteFailed(f"the document's temporary file could not be written ({exc})") from exc
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        try:
            self._target.flush()
        except OSError as exc:
            raise SpoolWriteFailed(f"the document's temporary file could not be written ({exc})") from exc


class _Progress:
    """Counts labels done and writes them with a heartbeat every ``PROGRESS_EVERY`` seconds, if still ours."""

    def __init__(self, document: BatchDocument, started_at: datetime) -> None:
        self.document = document
        self.started_at = started_at
        self.done = 0
        self._last = time.monotonic()

    def start(self, *, total: int) -> None:
        BatchDocument.objects.filter(pk=self.document.pk).update(labels_total=total, labels_done=0)

    def advance(self) -> None:
        self.done += 1
        self.beat()

    def beat(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < PROGRESS_EVERY:
            return
        self._last = time.monotonic()
        ours = BatchDocument.objects.filter(
            pk=self.document.pk, build_token=self.document.build_token, started_at=self.started_at
        ).update(labels_done=self.done, heartbeat_at=timezone.now())
        if not ours:
            raise Superseded
