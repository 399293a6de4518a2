"""Batches in admin: live progress while running, stored totals once finished, links, labels."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader, PdfWriter

from sendcloud_integration.models import BatchStatus, PushBatch, ShipmentState, StartedBy
from tests.admin.conftest import login, make_batch, ship
from tests.documents import build_wanted
from tests.factories import OrderFactory, issue_token
from webshop.models import ApiToken, Shop

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/sendcloud_integration/pushbatch/"


def change_url(batch: PushBatch) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_change", args=[batch.pk])


@pytest.fixture
def running(shop: Shop) -> PushBatch:
    """A running batch of 4 orders: 1 pushed, 1 failed, 2 still queued."""
    batch = make_batch(shop, status=BatchStatus.RUNNING, queued_orders=4, total_chunks=1)
    states = [ShipmentState.PUSHED, ShipmentState.FAILED, ShipmentState.QUEUED, ShipmentState.QUEUED]
    for state in states:
        ship(OrderFactory(shop=shop), state, batch=batch, chunk_number=1)
    return batch


def test_running_batch_shows_live_progress(superuser: User, running: PushBatch) -> None:
    response = login(superuser).get(CHANGELIST)
    html = response.content.decode()
    assert 'aria-valuenow="50"' in html  # 2 of 4 done
    assert "50% · 2/4 · 1 failed" in html
    assert "Running" in html
    failed_link = "/admin/webshop/order/?" + f"batch={running.pk}&amp;state=failed"
    assert failed_link in html


def test_finished_batch_uses_stored_totals(superuser: User, shop: Shop) -> None:
    make_batch(
        shop,
        status=BatchStatus.COMPLETED_WITH_ERRORS,
        queued_orders=10,
        pushed_count=7,
        failed_count=3,
    )
    html = login(superuser).get(CHANGELIST).content.decode()
    assert 'aria-valuenow="100"' in html
    assert "100% · 10/10 · 3 failed" in html
    assert "Completed with errors" in html


def test_batch_list_queries_are_bounded(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    token = ApiToken.objects.get(prefix=issue_token(shop).split("_")[1])
    for _ in range(2):
        make_batch(shop, status=BatchStatus.RUNNING, started_by_kind=StartedBy.API_TOKEN, started_by_token=token)
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for _ in range(20):
        make_batch(shop, status=BatchStatus.RUNNING, started_by_kind=StartedBy.STAFF, started_by_user=superuser)
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(many) == len(few)


def test_batch_page_shows_who_counts_and_order_links(superuser: User, running: PushBatch) -> None:
    PushBatch.objects.filter(pk=running.pk).update(
        started_by_kind=StartedBy.STAFF, started_by_user=superuser, started_by_label="staff user root"
    )
    response = login(superuser).get(change_url(running))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/admin/auth/user/{superuser.pk}/change/">staff user root</a>' in html
    for state, label, n in (("failed", "Failed", 1), ("queued", "Queued", 2), ("pushed", "Pushed", 1)):
        assert f'/admin/webshop/order/?batch={running.pk}&amp;state={state}">{label} ({n})</a>' in html
    assert f'/admin/webshop/order/?batch={running.pk}">all (4)</a>' in html
    assert '<meta http-equiv="refresh"' in html  # refreshes itself while running
    assert "No labels were asked for in this batch." in html


def test_batch_started_by_token_links_to_the_token(superuser: User, shop: Shop) -> None:
    token = ApiToken.objects.get(prefix=issue_token(shop, name="erp").split("_")[1])
    batch = make_batch(
        shop,
        started_by_kind=StartedBy.API_TOKEN,
        started_by_token=token,
        started_by_label="API token x (erp)",
        status=BatchStatus.COMPLETED,
    )
    html = login(superuser).get(change_url(batch)).content.decode()
    assert f'/admin/webshop/apitoken/{token.pk}/change/">API token x (erp)</a>' in html
    assert '<meta http-equiv="refresh"' not in html


def test_batches_are_read_only(superuser: User, running: PushBatch) -> None:
    client = login(superuser)
    assert client.get(CHANGELIST + "add/").status_code == 403
    assert client.get(change_url(running).replace("/change/", "/delete/")).status_code == 403
    assert client.post(change_url(running), {"status": "completed"}).status_code == 403
    running.refresh_from_db()
    assert running.status == BatchStatus.RUNNING


# --- labels --------------------------------------------------------------------------------------------------


@pytest.fixture
def label_batch(shop: Shop) -> PushBatch:
    return make_batch(shop, create_label=True, status=BatchStatus.COMPLETED, queued_orders=2)


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def one_page_pdf(width: int) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=width, height=100)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def store_label(media: Path, name: str, content: bytes) -> str:
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return name


def labels_url(batch: PushBatch) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_labels", args=[batch.pk])


def test_labels_are_merged_into_one_pdf_in_order_number_order(
    superuser: User, shop: Shop, label_batch: PushBatch, media: Path
) -> None:
    for number, width in (("ORD-B", 200), ("ORD-A", 100)):
        name = store_label(media, f"labels/{number}.pdf", one_page_pdf(width))
        ship(OrderFactory(shop=shop, order_number=number), ShipmentState.LABELLED, batch=label_batch, label_file=name)
    client = login(superuser)
    html = client.get(change_url(label_batch)).content.decode()
    assert f'href="{labels_url(label_batch)}">Download all labels</a>' in html

    building = client.get(labels_url(label_batch))  # never built in the request: to the Print page
    assert building.status_code == 302
    assert building["Location"] == reverse("admin:sendcloud_integration_pushbatch_print", args=[label_batch.pk])
    build_wanted()
    response = client.get(labels_url(label_batch))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"-{str(label_batch.pk)[:8]}-pdf-A6-by-order_number.pdf" in response["Content-Disposition"]
    merged = PdfReader(io.BytesIO(b"".join(response.streaming_content)))
    assert [int(page.mediabox.width) for page in merged.pages] == [100, 200]  # ORD-A, then ORD-B


def test_unreadable_label_is_a_message_not_a_broken_pdf(
    superuser: User, shop: Shop, label_batch: PushBatch, media: Path
) -> None:
    name = store_label(media, "labels/bad.pdf", b"not a pdf at all")
    ship(OrderFactory(shop=shop), ShipmentState.LABELLED, batch=label_batch, label_file=name)
    ship(OrderFactory(shop=shop), ShipmentState.LABELLED, batch=label_batch, label_file="labels/missing.pdf")
    client = login(superuser)
    client.get(labels_url(label_batch))
    assert [outcome.status for outcome in build_wanted()] == ["failed"]
    response = client.get(labels_url(label_batch))
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)][-1:]
    assert "could not be read" in message


def test_labels_of_a_batch_without_any(superuser: User, label_batch: PushBatch) -> None:
    response = login(superuser).get(labels_url(label_batch))
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["This batch has no labels yet."]


def test_labels_need_view_permission(db: None, label_batch: PushBatch) -> None:
    nobody = User.objects.create_user("plain", "p@example.com", "pw-plain-123456", is_staff=True)
    assert login(nobody).get(labels_url(label_batch)).status_code == 403


def test_batch_page_queries_do_not_grow_with_chunks(superuser: User, shop: Shop) -> None:
    from sendcloud_integration.models import PushChunk

    client = login(superuser)
    small = make_batch(shop, status=BatchStatus.RUNNING, total_chunks=2)
    large = make_batch(shop, status=BatchStatus.RUNNING, total_chunks=30)
    for batch in (small, large):
        PushChunk.objects.bulk_create(
            PushChunk(batch=batch, number=n, size=100) for n in range(1, batch.total_chunks + 1)
        )
    client.get(change_url(small))
    with CaptureQueriesContext(connection) as few:
        client.get(change_url(small))
    with CaptureQueriesContext(connection) as many:
        client.get(change_url(large))
    assert len(many) == len(few)
