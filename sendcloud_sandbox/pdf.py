"""Tiny but valid PDF shipping labels, written byte by byte: one label, or many as one document.

The sandbox must not depend on PDF libraries, yet clients store and forward labels and tests open
them (with pypdf) to check that the right label went to the right order. So this writes a minimal
PDF 1.4 by hand: one page per label (A6 unless another paper size is asked for), the standard
Helvetica font, the label's lines as real text (so text extraction finds the order and tracking
numbers), a fake barcode, and an exact cross-reference table. The bulk documents endpoint uses the
multi-page form, one page per requested parcel in request order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

A6_WIDTH = 298  # points (105 mm)
A6_HEIGHT = 420  # points (148 mm)
#: The ``paper_size`` enum of the parcel-documents API, in points (width, height).
PAPER_SIZES: dict[str, tuple[int, int]] = {"A4": (595, 842), "A5": (420, 595), "A6": (A6_WIDTH, A6_HEIGHT)}


def _escape(text: str) -> str:
    """Make text safe inside a PDF literal string (Latin-1 only; anything else becomes '?')."""
    safe = text.encode("latin-1", errors="replace").decode("latin-1")
    safe = "".join(ch if 32 <= ord(ch) < 127 or ord(ch) >= 160 else "?" for ch in safe)
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _barcode(code: str, x: float, y: float, height: float) -> list[str]:
    """Filled bars whose widths follow the code's characters: looks like a barcode, encodes nothing."""
    ops: list[str] = []
    cursor = x
    for char in code:
        value = ord(char)
        for bit in range(3):
            width = 1.0 + ((value >> bit) & 1) * 1.5
            ops.append(f"{cursor:.1f} {y:.1f} {width:.1f} {height:.1f} re f")
            cursor += width + 1.2
    return ops


@dataclass(frozen=True)
class Page:
    """What one page shows: a title, text lines (extractable) and an optional fake barcode."""

    title: str
    lines: tuple[str, ...]
    barcode: str = ""


def _content_stream(page: Page, width: int, height: int) -> bytes:
    """Drawing operators for the page: border, title, text lines, barcode (from the top-left corner)."""
    ops = ["0.8 w", f"10 10 {width - 20} {height - 20} re S"]
    ops += ["BT", "/F1 14 Tf", f"22 {height - 40} Td", f"({_escape(page.title)}) Tj", "ET"]
    y = height - 70
    for line in page.lines:
        ops += ["BT", "/F1 10 Tf", f"22 {y} Td", f"({_escape(line)}) Tj", "ET"]
        y -= 16
    if page.barcode:
        ops += _barcode(page.barcode, 22, 40, 60)
    return ("\n".join(ops) + "\n").encode("latin-1")


def build_pages_pdf(pages: Sequence[Page], paper_size: str = "A6") -> bytes:
    """A PDF with one page of ``paper_size`` per entry of ``pages``, in order, sharing one font object.

    Object layout: 1 catalog, 2 page tree, 3 font, then a page object and its content stream per page.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    width, height = PAPER_SIZES[paper_size]
    page_numbers = [4 + 2 * i for i in range(len(pages))]
    kids = " ".join(f"{n} 0 R" for n in page_numbers)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for number, page in zip(page_numbers, pages, strict=True):
        stream = _content_stream(page, width, height)
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {number + 1} 0 R >>"
            ).encode("ascii")
        )
        objects.append(b"<< /Length " + str(len(stream)).encode("ascii") + b" >>\nstream\n" + stream + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f\r\n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n\r\n".encode("ascii")
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode("ascii")
    return bytes(out)


def build_pdf(title: str, lines: Sequence[str], barcode: str = "") -> bytes:
    """A one-page A6 PDF with ``title`` and ``lines`` as extractable text."""
    return build_pages_pdf([Page(title, tuple(lines), barcode)])


def label_page(
    *,
    order_number: str,
    tracking_number: str,
    carrier: str,
    parcel_id: int,
    recipient: Sequence[str],
) -> Page:
    """The shipping label of one parcel; marked as a sandbox label so nobody ships with it."""
    lines = (
        f"Order: {order_number}",
        f"Tracking: {tracking_number}",
        f"Carrier: {carrier}",
        f"Parcel: {parcel_id}",
        "",
        "Ship to:",
        *recipient,
        "",
        "SANDBOX LABEL - NOT VALID FOR SHIPPING",
    )
    return Page("Sendcloud sandbox label", lines, barcode=tracking_number)


def build_label_pdf(
    *,
    order_number: str,
    tracking_number: str,
    carrier: str,
    parcel_id: int,
    recipient: Sequence[str],
) -> bytes:
    """The one-page A6 label PDF of one parcel."""
    return build_pages_pdf(
        [
            label_page(
                order_number=order_number,
                tracking_number=tracking_number,
                carrier=carrier,
                parcel_id=parcel_id,
                recipient=recipient,
            )
        ]
    )
