"""A batch's labels as one PDF: ``GET …/shipments/batches/{id}/labels``, and ``pdf.merge_pdfs``."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
from rest_framework.test import APIClient

from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState
from sendcloud_integration.push import services
from tests.documents import content_of, download
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory, issue_token
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

BATCHES_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/"


def labels_url(batch_id: object) -> str:
    return f"{BATCHES_URL}{batch_id}/labels"


def label_pdf(text: str, *, pages: int = 1) -> bytes:
    """A small, valid label PDF whose every page shows ``text`` (extractable), made with pypdf."""
    writer = PdfWriter()
    for _ in range(pages):
        page = writer.add_blank_page(width=298, height=420)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 380 Td ({text}) Tj ET".encode())
        page.replace_contents(stream)
    writer.add_metadata({"/Title": text})
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text().strip() for page in PdfReader(io.BytesIO(data), strict=True).pages]


def start_batch(shop: Shop, orders: Sequence[Order], *, create_label: bool = True) -> PushBatch:
    result = services.push_orders(
        shop=shop,
        order_ids=[order.pk for order in orders],
        create_label=create_label,
        actor=services.Actor.command("test"),
    )
    assert result.batch_id is not None
    return PushBatch.objects.get(pk=result.batch_id)


def store_label(order: Order, data: bytes | None = None) -> None:
    """What the label phase does: save the PDF in storage and mark the shipment LABELLED."""
    shipment = OrderShipment.objects.get(order=order)
    shipment.label_file.save(f"{order.order_number}.pdf", ContentFile(data or label_pdf(order.order_number)))
    OrderShipment.objects.filter(pk=shipment.pk).update(state=ShipmentState.LABELLED)


def assert_json_error(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": True, "message": message}
    assert response["X-RateLimit-Limit"] == "60"
    assert int(response["X-RateLimit-Remaining"]) >= 0


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path, integration: object, dispatched: list[int]) -> None:
    """Labels go to a temporary media root; pushes need the shop's integration."""
    settings.MEDIA_ROOT = tmp_path


# --- the merged PDF -------------------------------------------------------------------------------------


def test_all_labels_in_order_number_order(client_for: APIClient, shop: Shop) -> None:
    orders = [OrderFactory(shop=shop, order_number=n) for n in ["C-3", "A-1", "B-2", "D-4", "E-5"]]
    batch = start_batch(shop, orders)
    for order in orders[:4]:  # E-5 has no label yet
        store_label(order)

    response = download(client_for, batch)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="labels-acme-{batch.created_at:%Y%m%d}-{str(batch.pk)[:8]}-pdf-A6-by-order_number.pdf"'
    )
    assert response["X-RateLimit-Limit"] == "60"
    assert response["X-RateLimit-Remaining"] == "58"  # the 202 while it was built, then this one
    assert response["X-Request-ID"]
    data = content_of(response)
    assert data.startswith(b"%PDF-")
    assert page_texts(data) == ["A-1", "B-2", "C-3", "D-4"]


def test_multi_page_labels_keep_all_their_pages(client_for: APIClient, shop: Shop) -> None:
    first, second = OrderFactory(shop=shop, order_number="A-1"), OrderFactory(shop=shop, order_number="A-2")
    batch = start_batch(shop, [first, second])
    store_label(first, label_pdf("A-1", pages=2))
    store_label(second)
    assert page_texts(content_of(download(client_for, batch))) == ["A-1", "A-1", "A-2"]


def test_accept_pdf_is_honoured_and_errors_stay_json(client_for: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    batch = start_batch(shop, [order])
    assert_json_error(download(client_for, batch, HTTP_ACCEPT="application/pdf"), 404, "This batch has no labels yet.")
    store_label(order)
    response = download(client_for, batch, HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert page_texts(content_of(response)) == [order.order_number]


def test_no_labels_yet_is_404(client_for: APIClient, shop: Shop) -> None:
    batch = start_batch(shop, [OrderFactory(shop=shop)])
    assert_json_error(download(client_for, batch), 404, "This batch has no labels yet.")


def test_labels_of_another_batch_are_not_included(client_for: APIClient, shop: Shop) -> None:
    ours, theirs = OrderFactory(shop=shop, order_number="A-1"), OrderFactory(shop=shop, order_number="A-2")
    batch = start_batch(shop, [ours])
    other_batch = start_batch(shop, [theirs])
    store_label(theirs)
    assert_json_error(download(client_for, batch), 404, "This batch has no labels yet.")
    assert page_texts(content_of(download(client_for, other_batch))) == ["A-2"]


def test_another_shops_batch_is_404(client_for: APIClient) -> None:
    other = ShopFactory(slug="other")
    SendcloudIntegrationFactory(shop=other)
    order = OrderFactory(shop=other)
    batch = start_batch(other, [order])
    store_label(order)
    assert_json_error(download(client_for, batch), 404, "No such batch.")
    assert_json_error(client_for.get(labels_url(batch.pk), {"order": order.pk}), 404, "No such batch.")


@pytest.mark.parametrize("batch_id", [uuid.uuid4(), "not-a-uuid"])
def test_unknown_or_ill_formed_batch_is_404(client_for: APIClient, batch_id: object) -> None:
    assert_json_error(client_for.get(labels_url(batch_id)), 404, "No such batch.")


def test_401_and_403(api_client: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    batch = start_batch(shop, [order])
    store_label(order)
    response = api_client.get(labels_url(batch.pk))
    assert response.status_code == 401
    assert response.json()["error"] is True
    assert "X-RateLimit-Limit" in response
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(shop, scopes=[])}")
    response = api_client.get(labels_url(batch.pk))
    assert response.status_code == 403
    assert response.json()["error"] is True


def test_query_count_does_not_grow_with_labels(client_for: APIClient, shop: Shop) -> None:
    orders = [OrderFactory(shop=shop, order_number=f"A-{n:02d}") for n in range(12)]
    small, large = start_batch(shop, orders[:2]), start_batch(shop, orders[2:])
    for order in orders:
        store_label(order)
    content_of(download(client_for, small))  # the token's last-use write happens once
    content_of(download(client_for, large))  # both documents are built and stored

    def queries(batch: PushBatch) -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = download(client_for, batch)
            content_of(response)
        return len(ctx.captured_queries)

    assert queries(small) == queries(large)


def test_a_missing_label_file_is_a_409_naming_the_order_and_leaking_no_path(client_for: APIClient, shop: Shop) -> None:
    """A printout silently short of one label would be worse than an error a person looks into."""
    first, second = OrderFactory(shop=shop, order_number="A-1"), OrderFactory(shop=shop, order_number="A-2")
    batch = start_batch(shop, [first, second])
    store_label(first)
    store_label(second)
    default_storage.delete(OrderShipment.objects.get(order=second).label_file.name)
    response = download(client_for, batch)
    assert response.status_code == 409
    assert response.json()["error"] is True
    assert response.json()["message"].startswith("The label of order A-2 could not be read")
    assert "labels/" not in response.content.decode()
    assert response["X-RateLimit-Limit"]


def test_a_missing_single_label_file_is_a_409_too(client_for: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop, order_number="A-1")
    batch = start_batch(shop, [order])
    store_label(order)
    default_storage.delete(OrderShipment.objects.get(order=order).label_file.name)
    response = client_for.get(labels_url(batch.pk), {"order": order.pk})
    assert response.status_code == 409
    assert response.json()["message"].startswith("The label of this order could not be read")
    assert "labels/" not in response.content.decode()


def test_a_truncated_label_file_is_a_409_not_a_500(client_for: APIClient, shop: Shop) -> None:
    first, second = OrderFactory(shop=shop, order_number="A-1"), OrderFactory(shop=shop, order_number="A-2")
    batch = start_batch(shop, [first, second])
    store_label(first)
    store_label(second)
    name = OrderShipment.objects.get(order=second).label_file.name
    with default_storage.open(name, "rb") as handle:
        whole = handle.read()
    default_storage.delete(name)
    default_storage.save(name, ContentFile(whole[: len(whole) // 3]))
    response = download(client_for, batch)
    assert response.status_code == 409
    assert "order A-2" in response.json()["message"]


# --- one order's label ----------------------------------------------------------------------------------


def test_one_orders_label(client_for: APIClient, shop: Shop) -> None:
    first, second = OrderFactory(shop=shop, order_number="A-1"), OrderFactory(shop=shop, order_number="A-2")
    batch = start_batch(shop, [first, second])
    store_label(first)
    store_label(second)

    response = client_for.get(labels_url(batch.pk), {"order": second.pk})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="label-{batch.pk}-{second.pk}.pdf"'
    assert "X-RateLimit-Remaining" in response
    data = content_of(response)
    with OrderShipment.objects.get(order=second).label_file.open("rb") as stored:
        assert data == stored.read()
    assert page_texts(data) == ["A-2"]


def test_label_url_of_the_batch_answer_downloads_that_label(client_for: APIClient, shop: Shop) -> None:
    order = OrderFactory(shop=shop, order_number="A-7")
    batch = start_batch(shop, [order])
    store_label(order)
    body = client_for.get(f"{BATCHES_URL}{batch.pk}").json()
    label_url = body["orders"]["results"][0]["label_url"]
    assert page_texts(content_of(client_for.get(label_url))) == ["A-7"]
    assert body["batch"]["labels_url"].endswith(labels_url(batch.pk))
    assert page_texts(content_of(download(client_for, batch))) == ["A-7"]


def test_one_order_without_label_or_not_in_batch_is_404(client_for: APIClient, shop: Shop) -> None:
    waiting, labelled = OrderFactory(shop=shop), OrderFactory(shop=shop)
    outsider = OrderFactory(shop=shop)
    batch = start_batch(shop, [waiting, labelled])
    store_label(labelled)
    url = labels_url(batch.pk)
    assert_json_error(client_for.get(url, {"order": waiting.pk}), 404, "This order has no label yet.")
    assert_json_error(client_for.get(url, {"order": outsider.pk}), 404, "No such order in this batch.")
    assert_json_error(client_for.get(url, {"order": 10**12}), 404, "No such order in this batch.")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "The order field must be an integer."),
        ("1.0", "The order field must be an integer."),
        ("0", "The order field must be at least 1."),
        (str(2**63), "The order field must not be greater than 9223372036854775807."),
    ],
)
def test_invalid_order_parameter_is_422(client_for: APIClient, shop: Shop, value: str, message: str) -> None:
    batch = start_batch(shop, [OrderFactory(shop=shop)])
    response = client_for.get(labels_url(batch.pk), {"order": value})
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"order": [message]}}


# --- storage ----------------------------------------------------------------------------------------


def test_default_storage_follows_media_root(tmp_path: Path) -> None:
    """Guards the fixture: labels stored by these tests land in the temporary media root."""
    assert Path(default_storage.path("x")).parent == tmp_path


# --- OpenAPI --------------------------------------------------------------------------------------------


def test_schema_documents_both_endpoints(api_client: APIClient) -> None:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    detail = paths["/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch_id}"]["get"]
    labels = paths["/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch_id}/labels"]["get"]
    for operation in (detail, labels):
        assert {"200", "401", "403", "404", "422", "429"} <= set(operation["responses"])
        assert "X-RateLimit-Limit" in operation["responses"]["200"]["headers"]
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "application/json" in operation["responses"]["404"]["content"]
    assert list(labels["responses"]["200"]["content"]) == ["application/pdf", "application/zpl", "application/zip"]
    assert {"202", "206", "304", "409", "416"} <= set(labels["responses"])
    assert {p["name"] for p in detail["parameters"]} == {"batch_id", "page", "page_size", "state"}
    assert {p["name"] for p in labels["parameters"]} == {"batch_id", "order", "format", "paper_size", "dpi", "sort"}
    batch_schema = detail["responses"]["200"]["content"]["application/json"]["schema"]
    assert batch_schema == {"$ref": "#/components/schemas/BatchDetailResponse"}
