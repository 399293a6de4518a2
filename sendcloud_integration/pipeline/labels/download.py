"""Step 4 of a label run: fetch the ready labels twenty parcels per GET, split them per parcel, store them.

A bulk document is trusted page by page only when it has one page per parcel and no page shows another
parcel's tracking number instead of its own; otherwise that group is fetched parcel by parcel. Storing a
label moves the row to LABELLED, if it is still on the request it was read with.

When the carrier made a customs declaration for a shipment (a parcel lists a ``customs-declaration``
document: parcels leaving the EU customs and VAT area), it is fetched with the label, one GET per order
(``GET /v3/parcel-documents/customs-declaration?parcels=…``), and stored in the same step
(``OrderShipment.customs_declaration``): a LABELLED row for such a shipment always has its declaration.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from sendcloud_integration.exceptions import LabelFormatNotServedNow, LabelFormatUnavailable
from sendcloud_integration.limits import MAX_PARCELS_PER_DOCUMENT_REQUEST
from sendcloud_integration.models import ParcelLabelFile, SendcloudIntegration, ShipmentParcel, ShipmentState
from sendcloud_integration.pipeline.labels.documents import (
    LABEL_PAPER_SIZE,
    count_pdf_pages,
    customs_file_name,
    label_file_name,
    merge_pdfs,
    order_label_file_name,
    split_label_pages,
    split_zpl_labels,
    variant_file_name,
    zpl_labels,
)
from sendcloud_integration.pipeline.labels.rows import current
from sendcloud_integration.pipeline.labels.run import LabelRun, ReadyLabel, Skip
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import (
    AuthenticationError,
    NotFound,
    OtherFormatServed,
    SendcloudError,
    TransientError,
)
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import ParcelInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")


#: One parcel's label to fetch: the ready row it belongs to, and which of its parcels.
Wanted = tuple[ReadyLabel, ParcelInfo]


def download(run: LabelRun, ready: list[ReadyLabel]) -> None:
    """Fetch and store the ready labels: one bulk GET per 20 parcels, split into one file per parcel.

    An order in several parcels needs every parcel's label before it is stored (and LABELLED); its
    parcels may share a GET with other orders' parcels. A group whose document cannot be trusted page by
    page is fetched parcel by parcel instead; a lone label is fetched on its own (the same single GET).
    """
    wanted: list[Wanted] = [(item, parcel) for item in ready for parcel in item.parcels]
    fetched: dict[tuple[int, str], bytes] = {}
    for start in range(0, len(wanted), MAX_PARCELS_PER_DOCUMENT_REQUEST):
        if run.safe_blocked or run.out_of_time():
            break
        group = wanted[start : start + MAX_PARCELS_PER_DOCUMENT_REQUEST]
        if len(group) > 1:
            try:
                pages = download_group(run, group)
            except Skip:
                continue
            if pages is not None:
                for (item, parcel), pdf in zip(group, pages, strict=True):
                    fetched[(item.row.pk, parcel.parcel_id)] = pdf
                continue
        for item, parcel in group:
            if run.safe_blocked or run.out_of_time():
                break
            single = download_one(run, item, parcel)
            if single is not None:
                fetched[(item.row.pk, parcel.parcel_id)] = single
    for item in ready:
        pdfs = [fetched.get((item.row.pk, parcel.parcel_id)) for parcel in item.parcels]
        if not all(pdf is not None for pdf in pdfs):
            continue
        declaration: bytes | None = None
        if any(parcel.has_customs_declaration for parcel in item.parcels):
            if run.safe_blocked or run.out_of_time():
                continue
            declaration = download_customs_declaration(run, item)
            if declaration is None:
                continue  # waited for, like a label that is not served yet
        save(run, item, [pdf for pdf in pdfs if pdf is not None], declaration)


def download_customs_declaration(run: LabelRun, item: ReadyLabel) -> bytes | None:
    """The shipment's customs declaration as one PDF; None (and the row waits) when it is not served yet."""
    row = item.row
    parcel_ids = [parcel.parcel_id for parcel in item.parcels if parcel.has_customs_declaration]
    try:
        pdf = run.safe(row, partial(run.client.download_customs_declaration, parcel_ids), transient_is_pending=True)
    except NotFound:
        run.pending(row, problem="Sendcloud has not served the customs declaration yet.")
        return None
    except TransientError as exc:
        run.pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
        return None
    except Skip:
        return None
    if count_pdf_pages(pdf) < 1:
        run.pending(row, problem="Sendcloud served a customs declaration that is not a readable PDF.")
        return None
    return pdf


def download_group(run: LabelRun, group: list[Wanted]) -> list[bytes] | None:
    """The group's labels as one PDF per parcel, or None when they must be fetched one by one.

    ``GET /v3/parcel-documents/label`` answers one document for all the parcels; page *i* is taken to
    be ``parcels[i]``'s label only when the page count matches and no page shows another parcel's
    tracking number instead of its own (see :func:`split_label_pages`). A 404 (some label not served
    yet) or another refusal also falls back: the single downloads tell which parcel is missing, and
    the others are stored meanwhile. Raises ``Skip`` when the call could not be made or failed
    transiently; the rows then wait, as for a single download.
    """
    rows = list({item.row.pk: item.row for item, _ in group}.values())
    parcel_ids = [parcel.parcel_id for _, parcel in group]
    try:
        pdf = run.read(rows, partial(run.client.download_labels, parcel_ids, paper_size=LABEL_PAPER_SIZE))
    except TransientError as exc:
        if exc.status_code is not None and 200 <= exc.status_code < 300:
            logger.warning("batch=%s bulk label download was not a PDF; fetching one by one", rows[0].batch_id)
            return None
        for row in rows:
            run.pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
        raise Skip from None
    except SendcloudError as exc:
        logger.warning("batch=%s bulk label download refused (%s); fetching one by one", rows[0].batch_id, exc)
        return None
    pages = split_label_pages(pdf, [parcel for _, parcel in group])
    if pages is None:
        logger.warning(
            "batch=%s bulk label document for parcels %s does not match them page by page; fetching one by one",
            rows[0].batch_id,
            parcel_ids,
        )
    return pages


def download_one(run: LabelRun, item: ReadyLabel, parcel: ParcelInfo) -> bytes | None:
    """``GET /v3/parcels/{id}/documents/label`` for one parcel; a missing or unreadable PDF is waited for."""
    row = item.row
    try:
        pdf = run.safe(row, partial(run.client.download_label, parcel.parcel_id), transient_is_pending=True)
    except NotFound:
        run.pending(row)  # the document may lag behind the status
        return None
    except TransientError as exc:
        # The label exists; its PDF is not served yet (or not now). Waiting costs nothing but GETs,
        # and failing an order whose label was bought would only invite a second one.
        run.pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
        return None
    except Skip:
        return None
    if count_pdf_pages(pdf) < 1:
        run.pending(row, problem="Sendcloud served a label that is not a readable PDF.")
        return None
    return pdf


def _store(storage: Storage, name: str, pdf: bytes) -> str:
    if storage.exists(name):  # a run that died after saving; the same parcel has the same label
        storage.delete(name)
    return storage.save(name, ContentFile(pdf))


def save(run: LabelRun, item: ReadyLabel, pdfs: list[bytes], declaration: bytes | None = None) -> None:
    """Store every parcel's label and move the row to LABELLED, if it is still on the request we read.

    Each parcel's label is a file of its own (``ShipmentParcel.label_file``); the order's label file holds
    them all, one page per parcel (for a one-parcel order it is that parcel's file), so everything that
    prints an order's label — the merged batch PDF, ``?order=`` — prints every parcel. The move and the
    parcel rows are one transaction: a LABELLED row always lists its parcels.
    """
    row, info = item.row, item.info
    storage = row.label_file.storage
    names = [
        _store(storage, label_file_name(row, parcel.parcel_id), pdf)
        for parcel, pdf in zip(item.parcels, pdfs, strict=True)
    ]
    if len(names) == 1:
        order_file = names[0]
    else:
        order_file = _store(
            storage, order_label_file_name(row, item.parcels[0].parcel_id, len(names)), merge_pdfs(pdfs)
        )
    primary = item.parcel
    documents: dict[str, str] = {}
    if declaration is not None:
        documents["customs_declaration"] = _store(
            row.customs_declaration.storage, customs_file_name(row, primary.parcel_id), declaration
        )
    with transaction.atomic():
        moved = current(row).move(
            source=[ShipmentState.LABELLING],
            target=ShipmentState.LABELLED,
            label_file=order_file,
            sendcloud_parcel_id=primary.parcel_id[:64],
            tracking_number=primary.tracking_number[:100],
            tracking_url=primary.tracking_url[:500],
            carrier=(info.carrier or primary.carrier)[:100],
            labelled_at=timezone.now(),
            last_error="",
            failed_phase="",
            **documents,
        )
        if moved:
            ShipmentParcel.objects.filter(shipment_id=row.pk).delete()
            ShipmentParcel.objects.bulk_create(
                ShipmentParcel(
                    shipment_id=row.pk,
                    position=position,
                    sendcloud_parcel_id=parcel.parcel_id[:64],
                    tracking_number=parcel.tracking_number[:100],
                    tracking_url=parcel.tracking_url[:500],
                    label_file=name,
                )
                for position, (parcel, name) in enumerate(zip(item.parcels, names, strict=True), start=1)
            )
    if moved:
        run.labelled += 1
        logger.info(
            "batch=%s order=%s label stored (shipment %s, parcels %s)",
            row.batch_id,
            row.order_id,
            info.shipment_id,
            [parcel.parcel_id for parcel in item.parcels],
        )


# --- labels in another format: what a batch document asks for (printing/builder.py) -------------------------------
#
# The label phase stores every parcel's label as a PDF on A6 (above). A batch document in another format —
# ZPL for a thermal printer, PNG, PDF on A4 — needs each parcel's label in that format: fetched once, the
# first time a document asks for it, and stored beside the PDF (``ParcelLabelFile``, one row per parcel and
# format). PDF and ZPL come twenty parcels per GET (``/v3/parcel-documents/label`` with ``Accept``) and are
# split per parcel with the same checks as the label phase's; PNG comes one parcel per GET, because the bulk
# route takes no ``dpi`` and one image cannot hold twenty labels.

#: Transient failures of one GET tried again before the document's build gives up (for now: it is tried later).
FORMAT_FETCH_ATTEMPTS = 3
#: The longest one GET waits for the account's request budget, in all, before the build is tried later.
FORMAT_BUDGET_WAIT_MAX = 300.0
#: A ``Retry-After`` longer than this is not slept in the worker: the build is tried again later instead.
FORMAT_RETRY_WAIT_MAX = 60.0
#: The longest sleep at once while waiting; the build's heartbeat (``beat``) is written between two, so a
#: waiting build is never taken for a dead one (``SENDCLOUD_DOCUMENT_STALLED_SECONDS``).
PAUSE_SLICE = 5.0


#: What a carrier that makes its labels natively in ZPL answers whatever format is asked.
ZPL_MEDIA_TYPE = "application/zpl"


def _no_beat() -> None:
    return None


@dataclass(frozen=True)
class FetchFormat:
    """A format to fetch labels in: ``label_format`` pdf/zpl/png, ``paper_size`` ("" for ZPL), ``dpi``."""

    label_format: str
    paper_size: str
    dpi: int
    variant: str
    extension: str
    name: str  # for people: "ZPL", "PNG A6 300 dpi"


@dataclass(frozen=True)
class WantedParcel:
    """One parcel whose label is wanted in another format, and where its PDF label is kept."""

    parcel_pk: int
    parcel_id: str
    tracking_number: str
    order_id: int
    order_number: str
    pdf_name: str


def fetch_in_format(
    *,
    integration: SendcloudIntegration,
    batch_id: uuid.UUID,
    wanted: Sequence[WantedParcel],
    fmt: FetchFormat,
    beat: Callable[[], None] = _no_beat,
) -> Iterator[tuple[WantedParcel, bytes]]:
    """Yield each wanted parcel's label in ``fmt``, as Sendcloud serves it, group by group.

    Raises :class:`LabelFormatUnavailable` when a label cannot be had (the shop's keys refused, the format
    refused or not served for the parcel, something that is not a label), and
    :class:`LabelFormatNotServedNow` when Sendcloud is down or busy after ``FORMAT_FETCH_ATTEMPTS`` tries
    (worth trying again later), also when the account's budget stays spent for ``FORMAT_BUDGET_WAIT_MAX``.
    ``beat`` is called at least every ``PAUSE_SLICE`` seconds while it waits (the builder's heartbeat; it
    may raise to stop the fetch). Every call is in the batch's call log.
    """
    call_log = CallLog(shop_id=integration.shop_id, batch_id=batch_id)
    client = build_client(integration, call_log)
    size = 1 if fmt.label_format == "png" else MAX_PARCELS_PER_DOCUMENT_REQUEST
    try:
        for start in range(0, len(wanted), size):
            group = list(wanted[start : start + size])
            labels = _bulk_in_format(client, integration, call_log, group, fmt, beat) if len(group) > 1 else None
            if labels is None:
                labels = [_single_in_format(client, integration, call_log, item, fmt, beat) for item in group]
            yield from zip(group, labels, strict=True)
            call_log.flush()
    finally:
        call_log.flush()


def store_in_format(item: WantedParcel, fmt: FetchFormat, content: bytes, *, storage: Storage) -> str:
    """Keep a parcel's label in ``fmt`` beside its PDF and record it; returns the storage name."""
    name = _store(storage, variant_file_name(item.pdf_name, fmt.variant, fmt.extension), content)
    try:
        ParcelLabelFile.objects.update_or_create(
            parcel_id=item.parcel_pk, variant=fmt.variant, defaults={"file": name, "fetched_at": timezone.now()}
        )
    except IntegrityError:  # the parcel row is gone: the order got a new label meanwhile
        raise LabelFormatUnavailable(
            f"The label of order {item.order_number} changed while the document was being made."
        ) from None
    return name


def _bulk_in_format(
    client: SendcloudV3Client,
    integration: SendcloudIntegration,
    call_log: CallLog,
    group: list[WantedParcel],
    fmt: FetchFormat,
    beat: Callable[[], None],
) -> list[bytes] | None:
    """The group's labels from one bulk GET, or None when they must be fetched one by one."""
    parcels = [_parcel_info(item) for item in group]
    ids = [item.parcel_id for item in group]
    try:
        document = _get(
            integration,
            call_log,
            group,
            fmt,
            partial(client.download_labels, ids, paper_size=fmt.paper_size or "A6", label_format=fmt.label_format),
            beat,
        )
    except LabelFormatUnavailable:
        return None  # the single GETs say which parcel it is
    split = split_label_pages(document, parcels) if fmt.label_format == "pdf" else split_zpl_labels(document, parcels)
    if split is None:
        logger.warning("bulk %s document for parcels %s does not match them; fetching one by one", fmt.name, ids)
    return split


def _single_in_format(
    client: SendcloudV3Client,
    integration: SendcloudIntegration,
    call_log: CallLog,
    item: WantedParcel,
    fmt: FetchFormat,
    beat: Callable[[], None],
) -> bytes:
    call = partial(
        client.download_label,
        item.parcel_id,
        label_format=fmt.label_format,
        paper_size=fmt.paper_size or None,
        dpi=fmt.dpi if fmt.label_format == "png" else None,
    )
    content = _get(integration, call_log, [item], fmt, call, beat)
    if fmt.label_format == "zpl" and len(zpl_labels(content)) < 1:
        raise LabelFormatUnavailable(f"Sendcloud's ZPL label of order {item.order_number} holds no ^XA…^XZ label.")
    return content


def _get(
    integration: SendcloudIntegration,
    call_log: CallLog,
    items: Sequence[WantedParcel],
    fmt: FetchFormat,
    call: Callable[[], bytes],
    beat: Callable[[], None],
) -> bytes:
    """One GET within the account's budget (waited for), tried again on transient failures.

    A 401, a refusal, an answer that is not a label, or a ZPL label where PDF or PNG was asked (a carrier
    that makes ZPL only) is :class:`LabelFormatUnavailable` at once; a transient failure on every attempt is
    :class:`LabelFormatNotServedNow`.
    """
    orders = ", ".join(dict.fromkeys(item.order_number for item in items))
    waited = 0.0
    for attempt in range(1, FORMAT_FETCH_ATTEMPTS + 1):
        while wait := budget.acquire(public_key=integration.public_key, kind=budget.Kind.SAFE):
            if waited + wait > FORMAT_BUDGET_WAIT_MAX:
                raise LabelFormatNotServedNow(
                    f"The {fmt.name} label of order {orders} waited {waited:.0f}s for the shop's Sendcloud "
                    "request budget, which other work is using.",
                    retry_after=wait,
                )
            pause = min(wait, 30.0)  # a document build is long work already; waiting beats failing it
            _pause(pause, beat)
            waited += pause
        call_log.for_orders(list(dict.fromkeys(item.order_id for item in items)))
        try:
            return call()
        except AuthenticationError as exc:
            integration.mark_disconnected(exc.message)
            raise LabelFormatUnavailable(f"Sendcloud refused the shop's keys: {exc.message}") from None
        except TransientError as exc:
            if isinstance(exc, OtherFormatServed) and exc.served == ZPL_MEDIA_TYPE:
                # Sendcloud documents it: a carrier's native ZPL label is always served as ZPL. Asking again
                # cannot help; only a ZPL document can hold this order's label.
                raise LabelFormatUnavailable(
                    f"The carrier of order {orders} makes its labels in ZPL only, so Sendcloud serves them as "
                    f"ZPL and not as {fmt.name}. Print this batch as ZPL."
                ) from None
            if attempt == FORMAT_FETCH_ATTEMPTS or (exc.retry_after or 0.0) > FORMAT_RETRY_WAIT_MAX:
                # Sendcloud is down or busy: the build is tried again later
                raise LabelFormatNotServedNow(
                    f"Sendcloud did not serve the {fmt.name} label of order {orders} now: {exc.message}",
                    retry_after=exc.retry_after,
                ) from None
            _pause(exc.retry_after or float(attempt), beat)
        except (SendcloudError, ValueError) as exc:
            raise LabelFormatUnavailable(
                f"Sendcloud did not serve the {fmt.name} label of order {orders}: {exc}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _pause(seconds: float, beat: Callable[[], None]) -> None:
    """Sleep ``seconds`` in slices of at most ``PAUSE_SLICE``, calling ``beat`` before each and at the end."""
    left = seconds
    while left > 0:
        beat()
        step = min(left, PAUSE_SLICE)
        time.sleep(step)
        left -= step
    beat()


def _parcel_info(item: WantedParcel) -> ParcelInfo:
    return ParcelInfo(
        parcel_id=item.parcel_id,
        status_code="",
        status_message="",
        tracking_number=item.tracking_number,
        tracking_url="",
        carrier="",
        label_url="",
        errors=[],
    )
