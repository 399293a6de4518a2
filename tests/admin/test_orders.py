"""The order list and page: shipment state, errors, batches, filters, search, the Sendcloud history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.http import urlencode

from sendcloud_integration.models import SendcloudApiCall, ShipmentState
from tests.admin.conftest import login, make_batch, ship
from tests.factories import OrderFactory
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/webshop/order/"


def listed(client: Client, query: str = "") -> list[str]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return [order.order_number for order in response.context["cl"].result_list]


def seed(shop: Shop, n: int) -> None:
    batch = make_batch(shop)
    for i in range(n):
        order = OrderFactory(shop=shop)
        state = [ShipmentState.FAILED, ShipmentState.PUSHED, ShipmentState.LABELLED, None][i % 4]
        if state == ShipmentState.LABELLED:
            ship(order, state, batch=batch, tracking_number=f"TRK{i}", tracking_url=f"https://track.example/{i}")
        elif state:
            ship(order, state, batch=batch)


def test_list_shows_state_phase_error_batch_and_tracking(superuser: User, shop: Shop) -> None:
    batch = make_batch(shop)
    failed = OrderFactory(shop=shop, order_number="ORD-FAIL")
    ship(failed, ShipmentState.FAILED, batch=batch, last_error="x" * 300)
    labelled = OrderFactory(shop=shop, order_number="ORD-LAB")
    ship(labelled, ShipmentState.LABELLED, batch=batch, tracking_number="3SABC123", tracking_url="https://t.example/1")
    OrderFactory(shop=shop, order_number="ORD-NEW")

    html = login(superuser).get(CHANGELIST).content.decode()
    assert "Failed" in html
    assert "Labelled" in html
    assert "not sent" in html
    assert "x" * 77 + "…" in html  # the short error; the full one is in the title attribute
    assert f"/admin/sendcloud_integration/pushbatch/{batch.pk}/change/" in html
    assert '<a href="https://t.example/1" target="_blank" rel="noopener noreferrer">3SABC123</a>' in html


def test_list_queries_do_not_grow_with_the_orders(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    seed(shop, 4)
    client.get(CHANGELIST)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        assert client.get(CHANGELIST).status_code == 200
    seed(shop, 40)
    with CaptureQueriesContext(connection) as many:
        assert client.get(CHANGELIST).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?state=failed", {"ORD-F"}),
        ("?state=not_sent", {"ORD-N"}),
        ("?state=labelled", {"ORD-L"}),
        ("?phase=label", {"ORD-F"}),
        ("?phase=push", set()),
    ],
)
def test_state_and_phase_filters(superuser: User, shop: Shop, query: str, expected: set[str]) -> None:
    ship(OrderFactory(shop=shop, order_number="ORD-F"), ShipmentState.FAILED, failed_phase="label")
    ship(OrderFactory(shop=shop, order_number="ORD-L"), ShipmentState.LABELLED)
    OrderFactory(shop=shop, order_number="ORD-N")
    assert set(listed(login(superuser), query)) == expected


def test_shop_batch_and_date_filters(superuser: User, shop: Shop, other_shop: Shop) -> None:
    batch = make_batch(shop)
    ship(OrderFactory(shop=shop, order_number="ORD-IN"), ShipmentState.PUSHED, batch=batch)
    OrderFactory(shop=shop, order_number="ORD-OLD", created_at=timezone.now() - timedelta(days=40))
    OrderFactory(shop=other_shop, order_number="ORD-OTHER")
    client = login(superuser)
    assert set(listed(client, f"?shop__id__exact={other_shop.pk}")) == {"ORD-OTHER"}
    assert listed(client, f"?batch={batch.pk}") == ["ORD-IN"]
    assert listed(client, "?batch=not-a-uuid") == []
    since = (timezone.now() - timedelta(days=7)).isoformat()
    recent = listed(client, "?" + urlencode({"created_at__gte": since}))
    assert "ORD-IN" in recent
    assert "ORD-OLD" not in recent


def test_search_by_order_number_and_customer(superuser: User, shop: Shop) -> None:
    OrderFactory(shop=shop, order_number="ORD-77", customer_name="Marie Curie", customer_email="marie@example.org")
    OrderFactory(shop=shop, order_number="ORD-88", customer_name="Jan Jansen")
    client = login(superuser)
    assert listed(client, "?q=ORD-77") == ["ORD-77"]
    assert listed(client, "?q=curie") == ["ORD-77"]
    assert listed(client, "?q=marie@example") == ["ORD-77"]


def test_order_page_shows_history_and_sendcloud_calls(superuser: User, shop: Shop) -> None:
    batch = make_batch(shop)
    order = OrderFactory(shop=shop, order_number="ORD-H")
    ship(order, ShipmentState.FAILED, batch=batch, chunk_number=1, attempts=3, last_error="city: Field required")
    call = SendcloudApiCall.objects.create(
        shop=shop,
        batch=batch,
        chunk_number=1,
        method="POST",
        path="/v3/orders",
        status_code=400,
        duration_ms=123,
        error="city: Field required",
    )
    call.orders.add(order)
    unrelated = SendcloudApiCall.objects.create(shop=shop, method="GET", path="/v3/unrelated", status_code=200)
    unrelated.orders.add(OrderFactory(shop=shop))

    response = login(superuser).get(f"/admin/webshop/order/{order.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<th>Attempts</th><td>3</td>" in html
    assert "city: Field required" in html
    assert "POST /v3/orders" in html
    assert "123 ms" in html
    assert "/v3/unrelated" not in html
    assert f"/admin/sendcloud_integration/pushbatch/{batch.pk}/change/" in html


def test_order_never_sent_says_so(superuser: User, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    html = login(superuser).get(f"/admin/webshop/order/{order.pk}/change/").content.decode()
    assert "Never sent to Sendcloud." in html
    assert "No calls to Sendcloud for this order yet." in html


def test_orders_cannot_be_added_in_admin(superuser: User) -> None:
    assert login(superuser).get("/admin/webshop/order/add/").status_code == 403


def test_viewer_sees_the_list(viewer: User, shop: Shop) -> None:
    OrderFactory(shop=shop, order_number="ORD-V")
    assert listed(login(viewer)) == ["ORD-V"]
    assert Order.objects.count() == 1
