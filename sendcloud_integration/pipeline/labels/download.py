"""Step 4 of a label run: fetch the ready labels twenty per GET, split them per parcel, and store them.

A bulk document is trusted page by page only when it has one page per parcel and no page shows another
parcel's tracking number instead of its own; otherwise that group is fetched parcel by parcel. Storing a
label moves the row to LABELLED, if it is still on the request it was read with.
"""

from __future__ import annotations

import logging
from functools import partial

from django.core.files.base import ContentFile
from django.utils import timezone

from sendcloud_integration.limits import MAX_PARCELS_PER_DOCUMENT_REQUEST
from sendcloud_integration.models import ShipmentState
from sendcloud_integration.pipeline.labels.documents import (
    LABEL_PAPER_SIZE,
    count_pdf_pages,
    label_file_name,
    split_label_pages,
)
from sendcloud_integration.pipeline.labels.rows import current
from sendcloud_integration.pipeline.labels.run import LabelRun, ReadyLabel, Skip
from sendcloud_integration.sendcloud.errors import NotFound, SendcloudError, TransientError

logger = logging.getLogger("sendcloud_integration.pipeline.labels")


def download(run: LabelRun, ready: list[ReadyLabel]) -> None:
    """Fetch and store the ready labels: one bulk GET per 20 parcels, split into a file per order.

    A group whose document cannot be trusted page by page is fetched parcel by parcel instead; a
    lone label is fetched on its own (the same single GET).
    """
    for start in range(0, len(ready), MAX_PARCELS_PER_DOCUMENT_REQUEST):
        if run.safe_blocked or run.out_of_time():
            return
        group = ready[start : start + MAX_PARCELS_PER_DOCUMENT_REQUEST]
        if len(group) > 1:
            try:
                pages = download_group(run, group)
            except Skip:
                continue
            if pages is not None:
                for item, pdf in zip(group, pages, strict=True):
                    save(run, item, pdf)
                continue
        for item in group:
            if run.safe_blocked or run.out_of_time():
                return
            download_one(run, item)


def download_group(run: LabelRun, group: list[ReadyLabel]) -> list[bytes] | None:
    """The group's labels as one PDF per parcel, or None when they must be fetched one by one.

    ``GET /v3/parcel-documents/label`` answers one document for all the parcels; page *i* is taken to
    be ``parcels[i]``'s label only when the page count matches and no page shows another parcel's
    tracking number instead of its own (see :func:`split_label_pages`). A 404 (some label not served
    yet) or another refusal also falls back: the single downloads tell which parcel is missing, and
    the others are stored meanwhile. Raises ``Skip`` when the call could not be made or failed
    transiently; the rows then wait, as for a single download.
    """
    rows = [item.row for item in group]
    parcel_ids = [item.parcel.parcel_id for item in group]
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
    pages = split_label_pages(pdf, [item.parcel for item in group])
    if pages is None:
        logger.warning(
            "batch=%s bulk label document for parcels %s does not match them page by page; fetching one by one",
            rows[0].batch_id,
            parcel_ids,
        )
    return pages


def download_one(run: LabelRun, item: ReadyLabel) -> None:
    """``GET /v3/parcels/{id}/documents/label`` for one row; a missing or unreadable PDF is waited for."""
    row = item.row
    try:
        pdf = run.safe(row, partial(run.client.download_label, item.parcel.parcel_id), transient_is_pending=True)
    except NotFound:
        run.pending(row)  # the document may lag behind the status
        return
    except TransientError as exc:
        # The label exists; its PDF is not served yet (or not now). Waiting costs nothing but GETs,
        # and failing an order whose label was bought would only invite a second one.
        run.pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
        return
    except Skip:
        return
    if count_pdf_pages(pdf) < 1:
        run.pending(row, problem="Sendcloud served a label that is not a readable PDF.")
        return
    save(run, item, pdf)


def save(run: LabelRun, item: ReadyLabel, pdf: bytes) -> None:
    """Store the label file and move the row to LABELLED, if it is still on the request we read."""
    row, info, parcel = item.row, item.info, item.parcel
    storage = row.label_file.storage
    name = label_file_name(row, parcel.parcel_id)
    if storage.exists(name):  # a run that died after saving; the same parcel has the same label
        storage.delete(name)
    name = storage.save(name, ContentFile(pdf))
    moved = current(row).move(
        source=[ShipmentState.LABELLING],
        target=ShipmentState.LABELLED,
        label_file=name,
        sendcloud_parcel_id=parcel.parcel_id[:64],
        tracking_number=parcel.tracking_number[:100],
        tracking_url=parcel.tracking_url[:500],
        carrier=(info.carrier or parcel.carrier)[:100],
        labelled_at=timezone.now(),
        last_error="",
        failed_phase="",
    )
    if moved:
        run.labelled += 1
        logger.info(
            "batch=%s order=%s label stored (shipment %s, parcel %s)",
            row.batch_id,
            row.order_id,
            info.shipment_id,
            parcel.parcel_id,
        )
