"""Staff change an order's shipping method, weight and parcels (the service of update-order), and see the
shop's shipping methods and every parcel of a labelled order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sendcloud_integration.models import SendcloudIntegration, ShipmentParcel, ShipmentState, ShippingOption
from tests.admin.conftest import VIEW_PERMISSIONS, grant, login, ship
from tests.factories import OrderFactory, SendcloudIntegrationFactory
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def options(shop: Shop) -> dict[str, ShippingOption]:
    integration = SendcloudIntegrationFactory(shop=shop, shipping_options_countries=["NL", "US"])
    made = {
        "postnl:standard": ShippingOption.objects.create(
            integration=integration, code="postnl:standard", name="PostNL Standard", carrier_name="PostNL",
            min_weight_kg=Decimal("0.001"), max_weight_kg=Decimal("23"), countries=["NL"], multicollo=True,
        ),
        "dpd:home": ShippingOption.objects.create(
            integration=integration, code="dpd:home", name="DPD Home", carrier_name="DPD",
            min_weight_kg=Decimal("0.001"), max_weight_kg=Decimal("31.5"), countries=["NL"], multicollo=True,
        ),
    }  # fmt: skip
    return made


def shipping_url(order: Order) -> str:
    return f"/admin/webshop/order/{order.pk}/shipping/"


def test_staff_change_an_orders_shipping_data(admin_client_: Client, shop: Shop, options: dict) -> None:
    order = OrderFactory(shop=shop)
    page = admin_client_.get(f"/admin/webshop/order/{order.pk}/change/")
    assert b"Change shipping data" in page.content
    assert b"postnl:standard (the shop&#x27;s default)" in page.content

    form = admin_client_.get(shipping_url(order))
    assert form.status_code == 200
    assert b"DPD Home" in form.content

    answer = admin_client_.post(
        shipping_url(order),
        {"shipping_method": options["dpd:home"].pk, "weight_kg": "4.5", "parcels": "3"},
        follow=True,
    )

    order.refresh_from_db()
    assert (order.shipping_option_code, order.weight_kg, order.parcels.count()) == ("dpd:home", Decimal("4.500"), 3)
    assert b"updated; it is not in Sendcloud yet" in answer.content
    assert b"1.500 kg, 1.500 kg, 1.500 kg" in answer.content


def test_a_labelled_order_cannot_change_and_nothing_changes(admin_client_: Client, shop: Shop, options: dict) -> None:
    order = OrderFactory(shop=shop)
    shipment = ship(order, ShipmentState.LABELLED, tracking_number="3SA")
    ShipmentParcel.objects.bulk_create(
        ShipmentParcel(shipment=shipment, position=n, sendcloud_parcel_id=str(100 + n), tracking_number=f"3S{n}")
        for n in (1, 2, 3)
    )

    answer = admin_client_.post(
        shipping_url(order), {"shipping_method": options["dpd:home"].pk, "weight_kg": "4.5", "parcels": "2"}
    )

    assert b"already has a label" in answer.content
    order.refresh_from_db()
    assert (order.shipping_option_code, order.weight_kg) == ("", None)
    page = admin_client_.get(f"/admin/webshop/order/{order.pk}/change/")
    for n in (1, 2, 3):
        assert f"{n}. parcel {100 + n} · 3S{n}".encode() in page.content


def test_a_method_that_cannot_ship_the_order_is_refused(admin_client_: Client, shop: Shop, options: dict) -> None:
    order = OrderFactory(shop=shop, address={"country": "US", "postal_code": "10001", "city": "New York"})
    answer = admin_client_.post(
        shipping_url(order), {"shipping_method": options["dpd:home"].pk, "weight_kg": "1", "parcels": "1"}
    )
    assert b"does not ship to US" in answer.content
    order.refresh_from_db()
    assert order.shipping_option_code == ""


def test_viewers_may_not_change_shipping_data(viewer: User, shop: Shop, options: dict) -> None:
    order = OrderFactory(shop=shop)
    assert login(viewer).get(shipping_url(order)).status_code == 403
    assert login(grant(viewer, ("webshop.change_order",))).get(shipping_url(order)).status_code == 200
    assert VIEW_PERMISSIONS


def test_the_integration_page_lists_the_shipping_methods(admin_client_: Client, shop: Shop, options: dict) -> None:
    integration = SendcloudIntegration.objects.get(shop=shop)
    page = admin_client_.get(f"/admin/sendcloud_integration/sendcloudintegration/{integration.pk}/change/")
    assert page.status_code == 200
    assert b"sc-shipping-methods" in page.content
    assert b"dpd:home" in page.content
    assert b"postnl:standard" in page.content
    assert b"yes \xc2\xb7 default" in page.content
    listing = admin_client_.get("/admin/sendcloud_integration/shippingoption/")
    assert listing.status_code == 200
    assert b"DPD Home" in listing.content
