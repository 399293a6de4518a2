"""``shipping_data``: which option, what weight, which parcels an order ships with (one rule set for all)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud.payloads import label_parcels, precheck
from sendcloud_integration.sendcloud.shipping_data import shipping_data
from tests.factories import OrderFactory
from webshop.models import Order, OrderParcel, Shop

pytestmark = pytest.mark.django_db


def fetch(order: Order) -> Order:
    return Order.objects.select_related("shipping_address").prefetch_related("lines", "parcels").get(pk=order.pk)


def boxes(order: Order, *weights: str | None) -> Order:
    for n, weight in enumerate(weights):
        OrderParcel.objects.create(order=order, position=n, weight_kg=Decimal(weight) if weight else None)
    return fetch(order)


def test_the_default_is_the_shops_option_the_lines_weight_and_one_parcel(
    shop: Shop, integration: SendcloudIntegration
) -> None:
    data = shipping_data(fetch(OrderFactory(shop=shop)), integration)  # 2 x 0.250 kg
    assert (data.option_code, data.option_chosen, data.weight_kg, data.parcel_count) == (
        "postnl:standard",
        False,
        Decimal("0.500"),
        1,
    )
    assert label_parcels(data) is None


def test_the_orders_own_option_and_weight_win(shop: Shop, integration: SendcloudIntegration) -> None:
    order = OrderFactory(shop=shop, shipping_option_code="dpd:home", weight_kg=Decimal("7"))
    data = shipping_data(fetch(order), integration)
    assert (data.option_code, data.option_chosen, data.weight_kg) == ("dpd:home", True, Decimal("7.000"))


def test_parcels_with_weights_add_up_to_the_order(shop: Shop, integration: SendcloudIntegration) -> None:
    data = shipping_data(boxes(OrderFactory(shop=shop), "1.2", "3.4"), integration)
    assert data.weight_kg == Decimal("4.600")
    assert [p.weight_kg for p in data.parcels] == [Decimal("1.200"), Decimal("3.400")]


def test_parcels_without_weight_share_what_is_left_to_the_gram(shop: Shop, integration: SendcloudIntegration) -> None:
    order = OrderFactory(shop=shop, weight_kg=Decimal("10"))
    data = shipping_data(boxes(order, "4", None, None, None), integration)
    assert [p.weight_kg for p in data.parcels] == [
        Decimal("4.000"),
        Decimal("2.000"),
        Decimal("2.000"),
        Decimal("2.000"),
    ]
    odd = shipping_data(boxes(OrderFactory(shop=shop, weight_kg=Decimal("1")), None, None, None), integration)
    assert [p.weight_kg for p in odd.parcels] == [Decimal("0.333"), Decimal("0.333"), Decimal("0.334")]
    assert sum(p.weight_kg for p in odd.parcels) == Decimal("1.000")


def test_every_unit_is_in_exactly_one_parcel(shop: Shop, integration: SendcloudIntegration) -> None:
    order = OrderFactory(shop=shop, lines=[{"quantity": 5}, {"quantity": 1}])
    parcels = label_parcels(shipping_data(boxes(order, None, None), integration))
    assert parcels is not None
    assert [sum(i["quantity"] for i in p["parcel_items"]) for p in parcels] == [3, 3]


def test_a_parcel_left_without_weight_is_refused_locally(shop: Shop, integration: SendcloudIntegration) -> None:
    order = boxes(OrderFactory(shop=shop, weight_kg=Decimal("1")), "1", None)
    assert any("Parcel 2 has no weight" in problem for problem in precheck(order, integration=integration))


def test_more_than_50_parcels_are_refused_locally(shop: Shop, integration: SendcloudIntegration) -> None:
    order = boxes(OrderFactory(shop=shop), *(["0.1"] * 51))
    assert any("Sendcloud ships at most 50" in problem for problem in precheck(order, integration=integration))


def test_one_parcel_holds_every_unit_of_every_line(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, lines=[{"quantity": 5}, {"quantity": 1}]))
    (parcel,) = shipping_data(order, integration).parcels
    assert [(item.line.pk, item.quantity) for item in parcel.items] == [
        (line.pk, 5 if n == 0 else 1) for n, line in enumerate(order.lines.all())
    ]
