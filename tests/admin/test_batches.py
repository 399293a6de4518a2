"""Batches in admin: live progress while running, stored totals once finished, links, labels."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sendcloud_integration.models import BatchStatus, PushBatch, ShipmentState, StartedBy
from tests.admin.conftest import login, make_batch, ship
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
    return make_batch(shop, create_label=True, status=BatchStatus.COMPLETED, queued_orders=1)


@pytest.fixture
def without_pdf_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sendcloud_integration.pdf", None)  # import raises ModuleNotFoundError


@pytest.fixture
def fake_pdf_module(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    merged: list[Any] = []
    module = types.ModuleType("sendcloud_integration.pdf")

    def merge_pdfs(files: list[Any]) -> bytes:
        merged.extend(files)
        return b"%PDF-1.7 merged"

    module.merge_pdfs = merge_pdfs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sendcloud_integration.pdf", module)
    return merged


def test_labels_without_the_pdf_module_say_so(
    superuser: User, label_batch: PushBatch, without_pdf_module: None
) -> None:
    client = login(superuser)
    html = client.get(change_url(label_batch)).content.decode()
    assert "Merged label PDFs are not available in this installation yet." in html
    response = client.get(reverse("admin:sendcloud_integration_pushbatch_labels", args=[label_batch.pk]))
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "not available yet" in message


def test_labels_are_merged_into_one_pdf(
    superuser: User, shop: Shop, label_batch: PushBatch, fake_pdf_module: list[Any]
) -> None:
    order = OrderFactory(shop=shop)
    ship(order, ShipmentState.LABELLED, batch=label_batch, label_file="labels/2026/11/a.pdf")
    client = login(superuser)
    html = client.get(change_url(label_batch)).content.decode()
    url = reverse("admin:sendcloud_integration_pushbatch_labels", args=[label_batch.pk])
    assert f'href="{url}">Download all labels (PDF)</a>' in html
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == b"%PDF-1.7 merged"
    assert [f.name for f in fake_pdf_module] == ["labels/2026/11/a.pdf"]


def test_labels_of_a_batch_without_any(superuser: User, label_batch: PushBatch, fake_pdf_module: list[Any]) -> None:
    response = login(superuser).get(reverse("admin:sendcloud_integration_pushbatch_labels", args=[label_batch.pk]))
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["This batch has no labels yet."]


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
