"""A batch's Print page: the printer profile's download, other formats, the documents and their progress,
building again; and the printer profile's form refusing what Sendcloud does not serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.urls import reverse

from sendcloud_integration.models import BatchDocument, BatchStatus, DocumentStatus, PrinterProfile, ShipmentState
from tests.admin.conftest import grant, login, make_batch, ship
from tests.api.test_labels_pdf import label_pdf
from tests.documents import build_wanted
from tests.factories import OrderFactory
from webshop.models import Shop


@pytest.fixture
def batch(shop: Shop, settings: Any, tmp_path: Path) -> Any:
    settings.MEDIA_ROOT = str(tmp_path)
    batch = make_batch(shop, create_label=True, status=BatchStatus.COMPLETED, queued_orders=2)
    for number in ("ORD-B", "ORD-A"):
        path = tmp_path / "labels" / f"{number}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(label_pdf(number))
        ship(
            OrderFactory(shop=shop, order_number=number),
            ShipmentState.LABELLED,
            batch=batch,
            label_file=f"labels/{number}.pdf",
        )
    return batch


def print_url(batch: Any) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_print", args=[batch.pk])


def labels_url(batch: Any) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_labels", args=[batch.pk])


def test_the_print_page_shows_the_profile_and_the_other_formats(superuser: User, batch: Any) -> None:
    PrinterProfile.objects.create(shop=batch.shop, label_format="zpl", sort="carrier")
    html = login(superuser).get(print_url(batch)).content.decode()
    assert "ZPL · Carrier, then order number" in html
    assert f'href="{labels_url(batch)}">Download labels (ZPL)</a>' in html
    assert "format=pdf&amp;sort=carrier&amp;dpi=72&amp;paper_size=A4" in html  # PDF A4, in the profile's order
    assert "PNG A6 300 dpi" in html
    assert "No document yet" in html
    assert "customs declaration" in html


def test_progress_while_building_then_the_download(superuser: User, batch: Any) -> None:
    client = login(superuser)
    response = client.get(labels_url(batch), {"format": "pdf", "paper_size": "A6", "sort": "order_number"})
    assert response.status_code == 302
    assert response["Location"] == print_url(batch)
    BatchDocument.objects.update(labels_total=4, labels_done=1)
    page = client.get(print_url(batch)).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in page  # refreshes itself while building
    assert 'aria-valuenow="25"' in page
    assert "25% · 1/4" in page
    build_wanted()
    page = client.get(print_url(batch)).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert "100% · 2/2" in page
    assert client.get(labels_url(batch), {"format": "pdf"}).status_code == 200


def test_a_failed_build_shows_its_message_and_can_be_built_again(
    superuser: User, batch: Any, tmp_path: Path, dispatched: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    (tmp_path / "labels" / "ORD-A.pdf").unlink()
    client = login(superuser)
    client.get(labels_url(batch))
    assert [outcome.status for outcome in build_wanted()] == ["failed"]
    response = client.get(labels_url(batch))
    assert response.status_code == 302
    assert any("The label of order ORD-A could not be read" in str(m) for m in get_messages(response.wsgi_request))
    page = client.get(print_url(batch)).content.decode()
    assert "The label of order ORD-A could not be read" in page
    assert 'value="Build again"' in page
    (tmp_path / "labels" / "ORD-A.pdf").write_bytes(label_pdf("ORD-A"))
    document = BatchDocument.objects.get(batch=batch)
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(print_url(batch), {"document": document.pk})
    assert again.status_code == 302
    assert dispatched == [document.pk]
    assert BatchDocument.objects.get(pk=document.pk).status == DocumentStatus.BUILDING
    assert [outcome.status for outcome in build_wanted()] == ["ready"]


def test_the_print_page_needs_view_permission(db: None, batch: Any) -> None:
    nobody = User.objects.create_user("plain", "p@example.com", "pw-plain-123456", is_staff=True)
    assert login(nobody).get(print_url(batch)).status_code == 403


def test_building_again_needs_the_change_permission_of_batch_documents(
    viewer: User, batch: Any, dispatched: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    """Viewing a batch lets staff download its documents; rebuilding one needs ``change_batchdocument``."""
    client = login(viewer)
    client.get(labels_url(batch))
    assert [outcome.status for outcome in build_wanted()] == ["ready"]
    document = BatchDocument.objects.get(batch=batch)
    page = client.get(print_url(batch)).content.decode()
    assert "Download" in page
    assert 'value="Build again"' not in page
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(print_url(batch), {"document": document.pk}).status_code == 403
    assert BatchDocument.objects.get(pk=document.pk).status == DocumentStatus.READY
    assert dispatched == []

    client = login(grant(viewer, ["sendcloud_integration.change_batchdocument"]))
    assert 'value="Build again"' in client.get(print_url(batch)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(print_url(batch), {"document": document.pk}).status_code == 302
    assert BatchDocument.objects.get(pk=document.pk).status == DocumentStatus.BUILDING
    assert dispatched == [document.pk]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"label_format": "png", "paper_size": "A6", "dpi": "72", "sort": "order_number"},
            "dpi for PNG must be one of 150, 300.",
        ),
        (
            {"label_format": "zpl", "paper_size": "A6", "dpi": "300", "sort": "order_number"},
            "dpi does not apply to ZPL",
        ),
    ],
)
def test_the_printer_profile_form_refuses_what_sendcloud_does_not_serve(
    superuser: User, shop: Shop, fields: dict[str, str], error: str
) -> None:
    response = login(superuser).post(
        reverse("admin:sendcloud_integration_printerprofile_add"), {"shop": shop.pk, **fields}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not PrinterProfile.objects.exists()
    ok = {**fields, "dpi": ""}
    assert (
        login(superuser)
        .post(reverse("admin:sendcloud_integration_printerprofile_add"), {"shop": shop.pk, **ok})
        .status_code
        == 302
    )


def test_every_other_format_link_asks_for_its_document(superuser: User, batch: Any) -> None:
    """Each link of "Other formats" is a valid request: it starts a build, it is not refused."""
    import re
    from html import unescape

    client = login(superuser)
    html = client.get(print_url(batch)).content.decode()
    links = [unescape(href) for href in re.findall(r'<li><a href="([^"]+)">', html)]
    assert len(links) == 3  # PDF A4, ZPL, PNG A6 300 dpi (the profile's PDF A6 is the main button)
    for link in links:
        response = client.get(link)
        assert response.status_code == 302
        assert {m.level_tag for m in get_messages(response.wsgi_request)} == {"info"}  # "being built", no error
    assert sorted(BatchDocument.objects.values_list("variant", flat=True)) == ["pdf-A4", "png-A6-300", "zpl"]
