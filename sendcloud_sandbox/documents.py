"""Parcel documents in the format the client asks for with ``Accept``.

``GET /parcels/{id}/documents/{type}`` serves PDF, ZPL or PNG, and ``GET /parcel-documents/{type}``
the documents of up to 20 parcels as one file. The sandbox renders only labels (other document types
exist but are "not available for the parcel", as for a domestic shipment) and picks the format from
the Accept header, defaulting to PDF. A bulk PDF has one page per requested parcel, in request order,
on the requested paper size; a bulk ZPL is the labels one after the other.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from sendcloud_sandbox.pdf import Page, build_label_pdf, build_pages_pdf, label_page

DOCUMENT_TYPES = ("label", "customs-declaration", "air-waybill", "proof-of-delivery")
#: The bulk endpoint's ``type`` enum: proof of delivery is fetched live per parcel, never in bulk.
BULK_DOCUMENT_TYPES = ("label", "customs-declaration", "air-waybill")
PDF = "application/pdf"
ZPL = "application/zpl"
PNG = "image/png"


@dataclass(frozen=True)
class LabelData:
    """What a label shows."""

    order_number: str
    tracking_number: str
    carrier: str
    parcel_id: int
    recipient: tuple[str, ...]


def choose_format(accept: str | None) -> str | None:
    """The served MIME type for an Accept header; None when nothing acceptable can be served."""
    if not accept:
        return PDF
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for mime in wanted:
        if mime in (PDF, ZPL, PNG):
            return mime
        if mime in ("*/*", "application/*"):
            return PDF
        if mime == "image/*":
            return PNG
    return None


def render_label(data: LabelData, mime: str) -> bytes:
    """The label bytes in ``mime``."""
    if mime == ZPL:
        return _zpl(data)
    if mime == PNG:
        return _png()
    return build_label_pdf(
        order_number=data.order_number,
        tracking_number=data.tracking_number,
        carrier=data.carrier,
        parcel_id=data.parcel_id,
        recipient=data.recipient,
    )


def render_labels(labels: Sequence[LabelData], mime: str, *, paper_size: str = "A6") -> bytes:
    """Many labels as one document: a page each (PDF) or one label after the other (ZPL).

    PNG cannot hold several images, so a bulk PNG is the sandbox's one placeholder image.
    """
    if mime == ZPL:
        return b"".join(_zpl(data) for data in labels)
    if mime == PNG:
        return _png()
    return build_pages_pdf([_page(data) for data in labels], paper_size)


def _page(data: LabelData) -> Page:
    return label_page(
        order_number=data.order_number,
        tracking_number=data.tracking_number,
        carrier=data.carrier,
        parcel_id=data.parcel_id,
        recipient=data.recipient,
    )


def _zpl(data: LabelData) -> bytes:
    """A minimal ZPL II label with the same text as the PDF."""
    fields = [
        f"Order: {data.order_number}",
        f"Tracking: {data.tracking_number}",
        f"Carrier: {data.carrier}",
        *data.recipient,
    ]
    body = "".join(f"^FO40,{40 + 50 * i}^A0N,36,36^FD{text}^FS" for i, text in enumerate(fields))
    barcode = f"^FO40,{80 + 50 * len(fields)}^BCN,120,Y,N,N^FD{data.tracking_number}^FS"
    return f"^XA{body}{barcode}^XZ\n".encode("utf-8", errors="replace")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int = 200, height: int = 300) -> bytes:
    """A valid greyscale PNG: a white label with a black border (no text: no font renderer here)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "none"
        for x in range(width):
            border = x < 4 or y < 4 or x >= width - 4 or y >= height - 4
            rows.append(0 if border else 255)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _png_chunk(b"IEND", b"")
    )
