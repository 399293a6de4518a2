"""A tiny but valid one-page PDF shipping label, written byte by byte.

The sandbox must not depend on PDF libraries, yet clients store and forward labels and tests open
them (with pypdf) to check that the right label went to the right order. So this writes a minimal
PDF 1.4 by hand: one A6 page, the standard Helvetica font, the label's lines as real text (so text
extraction finds the order and tracking numbers), a fake barcode, and an exact cross-reference table.
"""

from __future__ import annotations

from collections.abc import Sequence

A6_WIDTH = 298  # points (105 mm)
A6_HEIGHT = 420  # points (148 mm)


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


def _content_stream(title: str, lines: Sequence[str], barcode: str) -> bytes:
    """Drawing operators for the page: border, title, text lines, barcode."""
    ops = ["0.8 w", f"10 10 {A6_WIDTH - 20} {A6_HEIGHT - 20} re S"]
    ops += ["BT", "/F1 14 Tf", f"22 {A6_HEIGHT - 40} Td", f"({_escape(title)}) Tj", "ET"]
    y = A6_HEIGHT - 70
    for line in lines:
        ops += ["BT", "/F1 10 Tf", f"22 {y} Td", f"({_escape(line)}) Tj", "ET"]
        y -= 16
    if barcode:
        ops += _barcode(barcode, 22, 40, 60)
    return ("\n".join(ops) + "\n").encode("latin-1")


def build_pdf(title: str, lines: Sequence[str], barcode: str = "") -> bytes:
    """A one-page A6 PDF with ``title`` and ``lines`` as extractable text."""
    stream = _content_stream(title, lines, barcode)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {A6_WIDTH} {A6_HEIGHT}] "
            "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode("ascii") + b" >>\nstream\n" + stream + b"endstream",
    ]
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


def build_label_pdf(
    *,
    order_number: str,
    tracking_number: str,
    carrier: str,
    parcel_id: int,
    recipient: Sequence[str],
) -> bytes:
    """The shipping label of one parcel; marked as a sandbox label so nobody ships with it."""
    lines = [
        f"Order: {order_number}",
        f"Tracking: {tracking_number}",
        f"Carrier: {carrier}",
        f"Parcel: {parcel_id}",
        "",
        "Ship to:",
        *recipient,
        "",
        "SANDBOX LABEL - NOT VALID FOR SHIPPING",
    ]
    return build_pdf("Sendcloud sandbox label", lines, barcode=tracking_number)
