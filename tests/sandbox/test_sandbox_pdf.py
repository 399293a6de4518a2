"""The hand-written label PDF: valid structure, exact xref offsets, escaped text."""

from __future__ import annotations

import io
import re

import pypdf

from sendcloud_sandbox.pdf import Page, build_label_pdf, build_pages_pdf, build_pdf


def test_xref_offsets_point_at_their_objects() -> None:
    data = build_pdf("Title", ["line one"])

    xref_at = int(re.search(rb"startxref\n(\d+)\n", data).group(1))  # type: ignore[union-attr]
    assert data[xref_at:].startswith(b"xref\n0 6\n")
    entries = data[xref_at:].split(b"\n")[3:8]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry[:10])
        assert data[offset:].startswith(f"{number} 0 obj".encode())


def test_text_with_pdf_special_characters_survives() -> None:
    data = build_label_pdf(
        order_number="A(1)\\B",
        tracking_number="3SBOX1",
        carrier="PostNL",
        parcel_id=1,
        recipient=["Jürgen Müller", "Straße 1"],
    )

    text = pypdf.PdfReader(io.BytesIO(data), strict=True).pages[0].extract_text()

    assert "Order: A(1)\\B" in text
    assert "Jürgen Müller" in text


def test_a_multi_page_document_has_exact_offsets_and_pages_in_order() -> None:
    pages = [Page(f"Label {n}", (f"Order: N-{n}",)) for n in range(3)]

    data = build_pages_pdf(pages, "A5")

    xref_at = int(re.search(rb"startxref\n(\d+)\n", data).group(1))  # type: ignore[union-attr]
    count = 3 + 2 * len(pages)
    assert data[xref_at:].startswith(f"xref\n0 {count + 1}\n".encode())
    for number, entry in enumerate(data[xref_at:].split(b"\n")[3 : 3 + count], start=1):
        assert data[int(entry[:10]) :].startswith(f"{number} 0 obj".encode())
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert [page.extract_text().splitlines()[-1] for page in reader.pages] == ["Order: N-0", "Order: N-1", "Order: N-2"]
    assert round(float(reader.pages[0].mediabox.height)) == 595
