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

from sendcloud_sandbox.pdf import Page, build_pages_pdf, label_page

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


#: The ``dpi`` enum of the single-document route, and the values each format accepts (the spec's dpi table).
DPI_CHOICES = (72, 150, 203, 300, 600)
VALID_DPI = {PDF: (72,), PNG: (150, 300)}
DEFAULT_DPI = {PDF: 72, PNG: 300}
#: ISO 216 sizes in millimetres, for the pixel size of a PNG at a resolution.
PAPER_MM = {"A4": (210, 297), "A5": (148, 210), "A6": (105, 148)}


def png_pixels(paper_size: str, dpi: int) -> tuple[int, int]:
    """The pixel size of a ``paper_size`` label at ``dpi``: A6 at 300 dpi is 1240 x 1748."""
    width_mm, height_mm = PAPER_MM[paper_size]
    return round(width_mm / 25.4 * dpi), round(height_mm / 25.4 * dpi)


def render_label(data: LabelData, mime: str, *, paper_size: str = "A6", dpi: int | None = None) -> bytes:
    """The label bytes in ``mime``: a PDF page of ``paper_size``, a ZPL label, or a PNG of that size at ``dpi``.

    ZPL has no paper size or resolution of its own here: it is the carrier's 4x6 in label at 203 dpi.
    """
    if mime == ZPL:
        return _zpl(data)
    if mime == PNG:
        width, height = png_pixels(paper_size, dpi or DEFAULT_DPI[PNG])
        return _png(width, height, text={"Order": data.order_number, "Tracking": data.tracking_number})
    return build_pages_pdf([_page(data)], paper_size)


def render_labels(labels: Sequence[LabelData], mime: str, *, paper_size: str = "A6") -> bytes:
    """Many labels as one document: a page each (PDF) or one label after the other (ZPL).

    PNG cannot hold several images, so a bulk PNG is the first parcel's label image only (the spec
    documents no other shape; clients fetch PNG labels one parcel at a time).
    """
    if mime == ZPL:
        return b"".join(_zpl(data) for data in labels)
    if mime == PNG:
        return render_label(labels[0], PNG, paper_size=paper_size)
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


def _png(width: int = 200, height: int = 300, *, text: dict[str, str] | None = None) -> bytes:
    """A valid greyscale PNG: a white label with a black border (no font renderer here).

    What the label says goes in ``tEXt`` chunks (``Order``, ``Tracking``), so a client can tell which
    parcel an image is for, as it can read a PDF's text.
    """
    border = 4
    edge_row = b"\x00" + b"\x00" * width  # filter type "none", then the pixels
    inner_row = b"\x00" + b"\x00" * border + b"\xff" * max(0, width - 2 * border) + b"\x00" * border
    rows = edge_row * border + inner_row * max(0, height - 2 * border) + edge_row * border
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        chunks.append(_png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", errors="replace")))
    chunks += [_png_chunk(b"IDAT", zlib.compress(rows[: (width + 1) * height])), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)
