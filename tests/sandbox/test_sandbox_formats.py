"""The sandbox serves every label format and size: a PDF page of the paper size, ZPL, PNG of the dpi's pixels."""

from __future__ import annotations

import io
import struct
from typing import Any

from PIL import Image
from pypdf import PdfReader

from sendcloud_sandbox.documents import PDF, PNG, ZPL, LabelData, png_pixels, render_label, render_labels

LABEL = LabelData(order_number="A-1", tracking_number="3STRACK1", carrier="PostNL", parcel_id=7, recipient=("Jan",))


def test_a_pdf_label_has_the_media_box_of_its_paper_size() -> None:
    for paper_size, box in {"A6": (298, 420), "A5": (420, 595), "A4": (595, 842)}.items():
        page = PdfReader(io.BytesIO(render_label(LABEL, PDF, paper_size=paper_size)), strict=True).pages[0]
        assert (int(page.mediabox.width), int(page.mediabox.height)) == box
        assert "3STRACK1" in page.extract_text()


def test_a_png_label_has_the_pixel_size_of_its_paper_at_the_dpi() -> None:
    assert png_pixels("A6", 300) == (1240, 1748)
    assert png_pixels("A4", 150) == (1240, 1754)
    for paper_size, dpi in (("A6", 300), ("A6", 150), ("A4", 150)):
        image = Image.open(io.BytesIO(render_label(LABEL, PNG, paper_size=paper_size, dpi=dpi)))
        image.load()
        assert image.size == png_pixels(paper_size, dpi)
        assert image.text == {"Order": "A-1", "Tracking": "3STRACK1"}  # type: ignore[attr-defined]


def test_zpl_labels_come_one_after_the_other() -> None:
    other = LabelData(order_number="A-2", tracking_number="3STRACK2", carrier="PostNL", parcel_id=8, recipient=())
    bundle = render_labels([LABEL, other], ZPL).decode()
    assert bundle.count("^XA") == bundle.count("^XZ") == 2
    assert bundle.index("3STRACK1") < bundle.index("^XZ") < bundle.index("3STRACK2")


def test_a_bulk_png_is_the_first_parcels_image() -> None:
    data = render_labels([LABEL, LABEL], PNG)
    assert struct.unpack(">II", data[16:24]) == png_pixels("A6", 300)


def test_the_single_route_takes_paper_size_and_the_dpi_of_the_format(api: Any) -> None:
    from tests.sandbox.helpers import make_order
    from tests.sandbox.test_sandbox_labels import _wait_for_status

    api.push([make_order(1)])
    shipment_id = api.labels({"order_id": "ORD-1"}).json()["data"][0]["shipment_id"]
    parcel_id = _wait_for_status(api, shipment_id)["parcels"][0]["id"]
    url = f"/parcels/{parcel_id}/documents/label"

    png = api.get(url, headers={"Accept": "image/png"}, params={"dpi": "150", "paper_size": "A4"})
    assert png.status_code == 200
    assert png.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == png_pixels("A4", 150)
    pdf = api.get(url, params={"paper_size": "A4"})
    page = PdfReader(io.BytesIO(pdf.content)).pages[0]
    assert (int(page.mediabox.width), int(page.mediabox.height)) == (595, 842)
    assert api.get(url, headers={"Accept": "application/zpl"}, params={"dpi": "300"}).status_code == 200  # ignored
    for accept, dpi, code in (
        ("image/png", "72", "invalid"),
        ("application/pdf", "300", "invalid"),
        ("image/png", "99", "invalid_choice"),
    ):
        refused = api.get(url, headers={"Accept": accept}, params={"dpi": dpi})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == code
        assert refused.json()["errors"][0]["source"] == {"parameter": "dpi"}
