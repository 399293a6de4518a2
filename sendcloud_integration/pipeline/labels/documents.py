"""Label documents: where a label file is stored, and splitting a bulk label PDF into one file per parcel."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence

from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename
from pypdf import PageObject, PdfReader, PdfWriter

from sendcloud_integration.models import OrderShipment
from sendcloud_integration.sendcloud.types import ParcelInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

#: Labels are fetched in a label's own paper size, so a bulk document holds one label a page.
LABEL_PAPER_SIZE = "A6"


def label_file_name(row: OrderShipment, parcel_id: str) -> str:
    """``labels/<shop slug>/<order number>-<parcel id>.pdf``: readable for staff, unique per parcel."""
    try:
        stem = get_valid_filename(f"{row.order.order_number}-{parcel_id}")
    except SuspiciousFileOperation:
        stem = f"order-{row.order_id}-{parcel_id}"
    return f"labels/{row.shop.slug}/{stem}.pdf"


def customs_file_name(row: OrderShipment, first_parcel_id: str) -> str:
    """``customs/<shop slug>/<order number>-<first parcel id>-customs.pdf``: the order's customs declaration."""
    return label_file_name(row, f"{first_parcel_id}-customs").replace("labels/", "customs/", 1)


def order_label_file_name(row: OrderShipment, first_parcel_id: str, parcels: int) -> str:
    """The file holding every parcel label of a multicollo order: ``<order number>-<first parcel>-x<n>.pdf``."""
    return label_file_name(row, f"{first_parcel_id}-x{parcels}")


def merge_pdfs(pdfs: Sequence[bytes]) -> bytes:
    """Every page of every PDF, in order, as one PDF (an order's parcel labels, one after the other)."""
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(io.BytesIO(pdf))
    out = io.BytesIO()
    writer.write(out)
    writer.close()
    return out.getvalue()


def split_label_pages(pdf: bytes, parcels: Sequence[ParcelInfo]) -> list[bytes] | None:
    """Page *i* of a bulk label document as a one-page PDF for ``parcels[i]``; None when not to be trusted.

    The parcel-documents spec documents neither the order nor the number of the pages, and a label on the
    wrong order means a parcel sent to the wrong address. So the split is refused (None) when the
    document cannot be read, when it has not exactly one page per parcel, or when a page shows another
    parcel's tracking number but not its own. A page without readable text (a scanned carrier label)
    cannot be checked that way and is taken in request order.
    """
    try:
        reader = PdfReader(io.BytesIO(pdf))
        if len(reader.pages) != len(parcels):
            return None
        files: list[bytes] = []
        for index, page in enumerate(reader.pages):
            if _shows_another_parcel(page, parcels, index):
                return None
            writer = PdfWriter()
            writer.add_page(page)
            out = io.BytesIO()
            writer.write(out)
            files.append(out.getvalue())
    except Exception:  # pypdf raises many kinds of error on damaged input; each means "do not trust it"
        logger.debug("bulk label document could not be split", exc_info=True)
        return None
    return files


def count_pdf_pages(pdf: bytes) -> int:
    """The number of pages of a PDF, or 0 when it cannot be read (a truncated or damaged download)."""
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except Exception:  # see split_label_pages
        logger.debug("label document could not be read", exc_info=True)
        return 0


def _shows_another_parcel(page: PageObject, parcels: Sequence[ParcelInfo], index: int) -> bool:
    """True when the page's text names another parcel of the document by tracking number, not its own."""
    own = parcels[index].tracking_number
    others = [p.tracking_number for p in parcels if p.tracking_number and p.tracking_number != own]
    if not others:
        return False
    try:
        text = page.extract_text() or ""
    except Exception:  # text that cannot be extracted cannot contradict the order either
        logger.debug("label page text could not be extracted", exc_info=True)
        return False
    if own and own in text:
        return False
    return any(number in text for number in others)


# --- labels in other formats (ZPL, PNG, PDF on another paper size) ----------------------------------------------

#: One ZPL label: from ``^XA`` to the next ``^XZ`` (ZPL commands are case-insensitive).
ZPL_LABEL = re.compile(rb"\^XA.*?\^XZ", re.IGNORECASE | re.DOTALL)


def variant_file_name(row_name: str, variant: str, extension: str) -> str:
    """Where a parcel's label in another format is kept: beside its PDF, ``<stem>.<variant>.<ext>``."""
    stem = row_name.rsplit(".", 1)[0] if row_name.endswith(".pdf") else row_name
    return f"{stem}.{variant}.{extension}"


def zpl_labels(document: bytes) -> list[bytes]:
    """Every ``^XA … ^XZ`` label of a ZPL document, in order."""
    return ZPL_LABEL.findall(document)


def split_zpl_labels(document: bytes, parcels: Sequence[ParcelInfo]) -> list[bytes] | None:
    """Label *i* of a bulk ZPL document for ``parcels[i]``, or None when not to be trusted (as for PDF pages)."""
    labels = zpl_labels(document)
    if len(labels) != len(parcels):
        return None
    for index, label in enumerate(labels):
        own = parcels[index].tracking_number
        text = label.decode("utf-8", errors="replace")
        if own and own in text:
            continue
        if any(p.tracking_number and p.tracking_number != own and p.tracking_number in text for p in parcels):
            return None
    return [label + b"\n" for label in labels]
