"""Staff see an order's service point and customs data, pick a point near the address, or change it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from sendcloud_integration.models import SendcloudIntegration, ShipmentState
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.admin.conftest import ship
from tests.factories import OrderFactory, SendcloudIntegrationFactory
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False)).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def exporter(shop: Shop) -> SendcloudIntegration:
    return SendcloudIntegrationFactory(shop=shop, sender_eori_number="NL123456789000")


def point_url(order: Order) -> str:
    return f"/admin/webshop/order/{order.pk}/service-point/"


def test_the_order_page_shows_the_point_and_the_customs_data(admin_client_: Client, exporter: Any, shop: Shop) -> None:
    order = OrderFactory(
        shop=shop,
        service_point_id="1000001",
        service_point_post_number="123456789",
        customs_invoice_number="INV-9",
        address={"country": "CH", "postal_code": "8001", "city": "Zürich"},
        lines=[{"sku": "SKU-7", "hs_code": "", "origin_country": "PT"}],
    )
    page = admin_client_.get(f"/admin/webshop/order/{order.pk}/change/").content.decode()
    assert "1000001" in page
    assert "123456789" in page
    assert "Change service point" in page
    assert "INV-9" in page
    assert "commercial_goods" in page  # the shop's default, applied
    assert "NL123456789000" in page
    assert "SKU-7" in page
    assert "missing" in page  # the HS code


def test_an_eu_order_needs_no_customs_data_and_ships_to_its_address(
    admin_client_: Client, exporter: Any, shop: Shop
) -> None:
    page = admin_client_.get(f"/admin/webshop/order/{OrderFactory(shop=shop).pk}/change/").content.decode()
    assert "No customs data needed" in page
    assert "Delivered to the address." in page


def test_staff_pick_a_point_near_the_address(
    admin_client_: Client, exporter: Any, shop: Shop, sandbox: SandboxServer
) -> None:
    order = OrderFactory(shop=shop, address={"postal_code": "1012 AB", "city": "Amsterdam", "country": "NL"})
    form = admin_client_.get(point_url(order)).content.decode()
    assert "Primera Stationsplein" in form
    assert "1000001" in form

    answer = admin_client_.post(point_url(order), {"service_point_id": "1000002"}, follow=True)
    order.refresh_from_db()
    assert order.service_point_id == "1000002"
    assert b"Service point saved" in answer.content

    admin_client_.post(point_url(order), {"service_point_id": ""})  # back to the address
    order.refresh_from_db()
    assert order.service_point_id == ""


def test_a_labelled_or_busy_order_keeps_its_point(admin_client_: Client, exporter: Any, shop: Shop) -> None:
    labelled = OrderFactory(shop=shop, service_point_id="1000001")
    ship(labelled, ShipmentState.LABELLED)
    busy = OrderFactory(shop=shop, service_point_id="1000001")
    ship(busy, ShipmentState.LABELLING)

    refused = admin_client_.post(point_url(labelled), {"service_point_id": "1000002"}, follow=True).content
    assert b"cancel the label first to change its service point" in refused
    busy_answer = admin_client_.post(point_url(busy), {"service_point_id": "1000002"}, follow=True).content
    assert b"A batch is working on this order" in busy_answer
    for order in (labelled, busy):
        order.refresh_from_db()
        assert order.service_point_id == "1000001"


def test_a_point_id_that_is_not_sendclouds_number_is_refused(admin_client_: Client, exporter: Any, shop: Shop) -> None:
    order = OrderFactory(shop=shop)
    answer = admin_client_.post(point_url(order), {"service_point_id": "NL-1"}, follow=True).content
    assert b"A service point id is Sendcloud&#x27;s number" in answer
    order.refresh_from_db()
    assert order.service_point_id == ""


def test_a_search_sendcloud_cannot_answer_says_so(admin_client_: Client, shop: Shop) -> None:
    order = OrderFactory(shop=shop)  # no integration at all
    page = admin_client_.get(point_url(order)).content.decode()
    assert "no SendCloud integration" in page
