"""Labels in the format asked: ``Accept``, ``paper_size`` and ``dpi`` of the parcel-documents endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import OtherFormatServed, TransientError

BASE = "https://sendcloud.test/api"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def sc() -> SendcloudV3Client:
    return SendcloudV3Client(base_url=BASE, public_key="pub", secret_key="secret")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_a_png_label_is_asked_for_with_accept_paper_size_and_dpi(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE}/v3/parcels/7/documents/label", body=PNG, content_type="image/png")
    assert sc.download_label("7", label_format="png", paper_size="A6", dpi=150) == PNG
    request = mocked.calls[0].request
    assert request.headers["Accept"] == "image/png"
    assert request.url == f"{BASE}/v3/parcels/7/documents/label?paper_size=A6&dpi=150"


def test_zpl_is_asked_for_without_dpi_and_must_be_zpl(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    url = f"{BASE}/v3/parcels/7/documents/label"
    mocked.get(url, body=b"^XA^FDx^FS^XZ", content_type="application/zpl")
    assert sc.download_label("7", label_format="zpl", dpi=203) == b"^XA^FDx^FS^XZ"
    assert mocked.calls[0].request.headers["Accept"] == "application/zpl"
    assert mocked.calls[0].request.url == url  # the spec: ZPL is not affected by dpi
    mocked.replace(responses.GET, url, body=b"%PDF-1.4 a pdf after all", content_type="application/pdf")
    with pytest.raises(OtherFormatServed, match="with 200 and a PDF instead of a ZPL label") as raised:
        sc.download_label("7", label_format="zpl")
    assert raised.value.served == "application/pdf"
    mocked.replace(responses.GET, url, body=b"<html>busy</html>", content_type="text/html")
    with pytest.raises(TransientError, match="not with a ZPL label") as unknown:
        sc.download_label("7", label_format="zpl")
    assert not isinstance(unknown.value, OtherFormatServed)


def test_a_zpl_label_where_pdf_was_asked_names_the_format_served(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    """Sendcloud: a carrier's native ZPL label "will always be returned in ZPL"; the caller is told so."""
    mocked.get(f"{BASE}/v3/parcels/7/documents/label", body=b"^XA^FDx^FS^XZ", content_type="application/zpl")
    with pytest.raises(OtherFormatServed) as raised:
        sc.download_label("7", label_format="pdf")
    assert raised.value.served == "application/zpl"
    assert isinstance(raised.value, TransientError)  # the label phase keeps waiting for its PDF, as before


def test_bulk_zpl_sends_accept_and_png_is_refused_in_bulk(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE}/v3/parcel-documents/label", body=b"^XA^XZ^XA^XZ", content_type="application/zpl")
    assert sc.download_labels(["1", "2"], label_format="zpl") == b"^XA^XZ^XA^XZ"
    assert mocked.calls[0].request.headers["Accept"] == "application/zpl"
    with pytest.raises(ValueError, match="one parcel at a time"):
        sc.download_labels(["1", "2"], label_format="png")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_format": "gif"}, "label_format"),
        ({"label_format": "png", "dpi": 72}, "dpi for png"),
        ({"label_format": "pdf", "dpi": 300}, "dpi for pdf"),
        ({"paper_size": "A3"}, "paper_size"),
    ],
)
def test_what_sendcloud_does_not_serve_is_refused_before_a_call(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sc.download_label("7", **kwargs)  # type: ignore[arg-type]
    assert not mocked.calls
