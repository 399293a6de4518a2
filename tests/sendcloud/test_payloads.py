"""Order → Sendcloud v3 order JSON, checked against the Order schema of the v3 Orders spec.

The schema's required fields and types are written out by hand below (the project never reads the spec
files at run or test time): ``components/schemas/order`` and the objects it references.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud.payloads import (
    HOUSE_NUMBER_MAX_LENGTH,
    ISO_COUNTRIES,
    address_lines,
    build_order,
    money,
    precheck,
    sendcloud_order_id,
    split_house_number,
)
from sendcloud_integration.sendcloud.transport import encode_json
from tests.factories import OrderFactory, SendcloudIntegrationFactory
from webshop.models import Order, Shop

NUMBER = (int, Decimal)  # JSON "number": Decimals are written as exact numbers by client.encode_json


# -- a hand-written rendering of the spec's required fields -----------------------------------------------------


def assert_price(price: Any, where: str) -> None:
    assert isinstance(price, dict), where
    assert isinstance(price["value"], NUMBER), where
    assert not isinstance(price["value"], bool), where
    assert price["currency"] in {"EUR", "GBP", "USD"}, where  # the price schema's enum


def assert_weight(weight: Any, where: str) -> None:
    assert isinstance(weight["value"], NUMBER), where
    assert weight["value"] > 0, where  # exclusiveMinimum: 0
    assert weight["unit"] in {"kg", "g", "lbs", "oz"}, where


def assert_iso_datetime(value: Any, where: str) -> None:
    assert isinstance(value, str), where
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, where


def assert_valid_v3_order(payload: dict[str, Any]) -> None:
    """Required fields, nesting and types of ``components/schemas/order`` (v3 Orders API)."""
    for key in ("order_id", "order_number", "order_details", "payment_details"):
        assert key in payload, key
    assert isinstance(payload["order_id"], str)
    assert payload["order_id"]
    assert isinstance(payload["order_number"], str)
    assert payload["order_number"]
    assert "id" not in payload  # Sendcloud's own id: we upsert on order_id + integration instead

    details = payload["order_details"]
    for key in ("integration", "status", "order_created_at", "order_items"):
        assert key in details, f"order_details.{key}"
    assert isinstance(details["integration"]["id"], int)
    assert isinstance(details["status"]["code"], str)
    assert details["status"]["code"]
    assert isinstance(details["status"].get("message", ""), str)
    assert_iso_datetime(details["order_created_at"], "order_created_at")
    if "order_updated_at" in details:
        assert_iso_datetime(details["order_updated_at"], "order_updated_at")
    assert isinstance(details["order_items"], list)
    for i, item in enumerate(details["order_items"]):
        for key in ("name", "quantity", "total_price"):
            assert key in item, f"order_items[{i}].{key}"
        assert isinstance(item["name"], str)
        assert isinstance(item["quantity"], int)
        assert not isinstance(item["quantity"], bool)
        assert_price(item["total_price"], f"order_items[{i}].total_price")
        if "unit_price" in item:
            assert_price(item["unit_price"], f"order_items[{i}].unit_price")
        if "item_id" in item:
            assert isinstance(item["item_id"], str)
            assert item["item_id"]
        if "measurement" in item:
            assert_weight(item["measurement"]["weight"], f"order_items[{i}].measurement.weight")
        if "country_of_origin" in item:
            assert len(item["country_of_origin"]) == 2
        for key in ("sku", "hs_code"):
            if key in item:
                assert isinstance(item[key], str)

    payment = payload["payment_details"]
    assert_price(payment["total_price"], "payment_details.total_price")
    assert isinstance(payment["status"]["code"], str)
    assert payment["status"]["code"]

    if "customer_details" in payload:
        assert isinstance(payload["customer_details"]["name"], str)

    if "shipping_address" in payload:
        address = payload["shipping_address"]
        for key in ("name", "address_line_1", "postal_code", "city", "country_code"):
            assert isinstance(address[key], str), f"shipping_address.{key}"
        for key in ("postal_code", "city", "country_code"):
            assert address[key], f"shipping_address.{key} has minLength 1"
        allowed = {
            "name",
            "company_name",
            "address_line_1",
            "house_number",
            "address_line_2",
            "postal_code",
            "city",
            "po_box",
            "state_province_code",
            "country_code",
            "email",
            "phone_number",
        }
        assert set(address) <= allowed
        assert all(isinstance(v, str) for v in address.values())

    if "shipping_details" in payload:
        shipping = payload["shipping_details"]
        assert set(shipping) <= {"is_local_pickup", "delivery_indicator", "measurement", "ship_with"}
        if "measurement" in shipping:
            assert_weight(shipping["measurement"]["weight"], "shipping_details.measurement.weight")
        if "ship_with" in shipping:
            assert shipping["ship_with"]["type"] == "shipping_option_code"  # the only value of the enum
            assert isinstance(shipping["ship_with"]["properties"]["shipping_option_code"], str)

    assert set(payload) <= {
        "order_id",
        "order_number",
        "order_details",
        "payment_details",
        "customs_details",
        "customer_details",
        "billing_address",
        "shipping_address",
        "shipping_details",
        "service_point_details",
    }
    json.loads(encode_json([payload]))  # and it goes on the wire


# -- fixtures ---------------------------------------------------------------------------------------------------


def fetch(order: Order) -> Order:
    """The order the way the service loads it."""
    return (
        Order.objects.select_related("shipping_address", "shop").prefetch_related("lines", "parcels").get(pk=order.pk)
    )


@pytest.fixture
def typical(shop: Shop) -> Order:
    return fetch(
        OrderFactory(
            shop=shop,
            order_number="ORD-1",
            customer_company="Acme BV",
            created_at=datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
            lines=[
                {"sku": "TS-R-M", "name": "T-shirt red M", "quantity": 2, "unit_price": Decimal("19.95")},
                {
                    "sku": "MUG",
                    "name": "Mug",
                    "quantity": 1,
                    "unit_price": Decimal("7.5000"),
                    "weight_kg": Decimal("0.400"),
                    "hs_code": "691200",
                    "origin_country": "pt",
                },
            ],
        )
    )


# -- build_order ------------------------------------------------------------------------------------------------


def test_typical_order_matches_the_spec(typical: Order, integration: SendcloudIntegration) -> None:
    payload = build_order(typical, integration)
    assert_valid_v3_order(payload)

    assert payload["order_id"] == str(typical.pk)
    assert payload["order_number"] == "ORD-1"
    details = payload["order_details"]
    assert details["integration"] == {"id": 1001}
    assert details["status"] == {"code": "paid", "message": "Paid"}
    assert details["order_created_at"] == "2026-03-01T09:30:15.123Z"
    first, second = details["order_items"]
    assert first == {
        "item_id": str(typical.lines.all()[0].pk),
        "name": "T-shirt red M",
        "sku": "TS-R-M",
        "quantity": 2,
        "unit_price": {"value": Decimal("19.95"), "currency": "EUR"},
        "total_price": {"value": Decimal("39.90"), "currency": "EUR"},
        "measurement": {"weight": {"value": Decimal("0.250"), "unit": "kg"}},
    }
    assert second["hs_code"] == "691200"
    assert second["country_of_origin"] == "PT"
    assert payload["payment_details"] == {
        "total_price": {"value": Decimal("47.40"), "currency": "EUR"},
        "status": {"code": "paid", "message": "Paid"},
    }
    assert payload["customer_details"] == {
        "name": "Jan Jansen",
        "phone_number": "+31612345678",
        "email": "jan@example.com",
    }
    assert payload["shipping_address"] == {
        "name": "Jan Jansen",
        "company_name": "Acme BV",
        "address_line_1": "Stationsstraat",
        "house_number": "12",
        "postal_code": "1012AB",
        "city": "Amsterdam",
        "country_code": "NL",
        "phone_number": "+31612345678",
        "email": "jan@example.com",
    }
    assert payload["shipping_details"] == {
        "measurement": {"weight": {"value": Decimal("0.900"), "unit": "kg"}},  # 2 x 0.250 + 0.400
        "ship_with": {"type": "shipping_option_code", "properties": {"shipping_option_code": "postnl:standard"}},
    }


def test_building_and_checking_issue_no_queries(
    typical: Order, integration: SendcloudIntegration, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        build_order(typical, integration)
        precheck(typical)


def test_a_batch_of_orders_costs_no_query_per_order(
    shop: Shop, integration: SendcloudIntegration, django_assert_max_num_queries: Any
) -> None:
    for _ in range(5):
        OrderFactory(shop=shop, lines=[{}, {}])
    OrderFactory(shop=shop, address=False)
    with django_assert_max_num_queries(3):  # the orders with their addresses, then all their lines and parcels
        orders = list(Order.objects.select_related("shipping_address", "shop").prefetch_related("lines", "parcels"))
        payloads = [build_order(o, integration) for o in orders]
        checks = [precheck(o) for o in orders]
    assert len(payloads) == 6
    assert sum(bool(c) for c in checks) == 1


def test_no_ship_with_without_a_shipping_option(shop: Shop) -> None:
    integration = SendcloudIntegrationFactory(shop=shop, shipping_option_code="")
    order = fetch(OrderFactory(shop=shop, lines=[{"weight_kg": Decimal("0")}]))
    payload = build_order(order, integration)
    assert "shipping_details" not in payload
    assert "measurement" not in payload["order_details"]["order_items"][0]  # weight must be > 0
    assert_valid_v3_order(payload)


def test_money_is_rounded_half_up_to_cents(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(
        OrderFactory(
            shop=shop,
            lines=[
                {"quantity": 1, "unit_price": Decimal("19.9550")},
                {"quantity": 3, "unit_price": Decimal("0.3333")},
                {"quantity": 1, "unit_price": Decimal("0.0050")},
            ],
        )
    )
    items = build_order(order, integration)["order_details"]["order_items"]
    assert items[0]["unit_price"]["value"] == Decimal("19.96")
    assert items[0]["total_price"]["value"] == Decimal("19.96")
    assert items[1]["unit_price"]["value"] == Decimal("0.33")
    assert items[1]["total_price"]["value"] == Decimal("1.00")  # from the exact price: 0.9999 → 1.00
    assert items[2]["unit_price"]["value"] == Decimal("0.01")
    for item in items:
        for key in ("unit_price", "total_price"):
            assert item[key]["value"].as_tuple().exponent == -2
    # The order total is the exact sum rounded once (19.955 + 0.9999 + 0.005 = 20.9599), like Order.total_amount.
    total = build_order(order, integration)["payment_details"]["total_price"]["value"]
    assert total == money(order.total_amount) == Decimal("20.96")
    assert b'"value":20.96' in encode_json(build_order(order, integration))


def test_money_helper() -> None:
    assert money(Decimal("19.955")) == Decimal("19.96")
    assert money(Decimal("19.945")) == Decimal("19.95")
    assert money(Decimal("-0.005")) == Decimal("-0.01")
    assert str(money(3)) == "3.00"


def test_quantities_are_integers_and_weights_three_decimals(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, lines=[{"quantity": 3, "weight_kg": Decimal("0.3335")}]))
    payload = build_order(order, integration)
    item = payload["order_details"]["order_items"][0]
    assert type(item["quantity"]) is int
    weight = item["measurement"]["weight"]["value"]
    assert weight.as_tuple().exponent == -3


def test_payment_status_is_derived_when_the_shop_sent_none(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, status=Order.Status.PAYMENT_RECEIVED, payment_status=""))
    payload = build_order(order, integration)
    assert payload["order_details"]["status"] == {"code": "payment_received", "message": "Payment received"}
    assert payload["payment_details"]["status"] == {"code": "paid", "message": "Paid"}

    explicit = fetch(OrderFactory(shop=shop, status=Order.Status.COMPLETED, payment_status="Authorized"))
    assert build_order(explicit, integration)["payment_details"]["status"]["code"] == "authorized"


def test_order_id_prefix_keeps_test_and_live_apart(typical: Order, settings: Any) -> None:
    assert sendcloud_order_id(typical) == str(typical.pk)
    settings.SENDCLOUD_ORDER_ID_PREFIX = "staging-"
    assert sendcloud_order_id(typical) == f"staging-{typical.pk}"


def test_order_without_address_sends_none(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, address=False))
    payload = build_order(order, integration)
    assert "shipping_address" not in payload
    assert_valid_v3_order(payload)


def test_house_number_is_split_from_the_street(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, address={"street": "Stationsstraat 12a", "house_number": ""}))
    address = build_order(order, integration)["shipping_address"]
    assert (address["address_line_1"], address["house_number"]) == ("Stationsstraat", "12a")


def test_long_house_number_moves_to_address_line_2(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(
        OrderFactory(
            shop=shop,
            address={"street": "Kasteelstraat", "house_number": "1 bus 200A", "address_line_2": "2nd floor"},
        )
    )
    address = build_order(order, integration)["shipping_address"]
    assert address["house_number"] == "1"
    assert address["address_line_2"] == "bus 200A, 2nd floor"


def test_no_house_number_found_leaves_the_street_alone(shop: Shop, integration: SendcloudIntegration) -> None:
    order = fetch(OrderFactory(shop=shop, address={"street": "Main Street", "house_number": ""}))
    address = build_order(order, integration)["shipping_address"]
    assert address["address_line_1"] == "Main Street"
    assert "house_number" not in address


# -- house numbers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("street", "expected"),
    [
        ("Stationsstraat 12a", ("Stationsstraat", "12a")),
        ("Stationsstraat 12 a", ("Stationsstraat", "12 a")),
        ("Stationsstraat 12-14", ("Stationsstraat", "12-14")),
        ("Postweg 12/3", ("Postweg", "12/3")),
        ("Laan 12 bis", ("Laan", "12 bis")),
        ("2e Hugo de Grootstraat 14 III", ("2e Hugo de Grootstraat", "14 III")),
        ("Kerkstraat 1 bus 200A", ("Kerkstraat", "1 bus 200A")),
        ("Straße des 17. Juni 5", ("Straße des 17. Juni", "5")),
        ("Plein 1944 10", ("Plein 1944", "10")),
        ("Calle Mayor, 7", ("Calle Mayor", "7")),
        ("Hauptstr. 5b", ("Hauptstr.", "5b")),
        ("12 Main Street", ("Main Street", "12")),
        ("221B Baker Street", ("Baker Street", "221B")),
        ("12, rue de la Paix", ("rue de la Paix", "12")),
        ("Main Street", ("Main Street", "")),
        ("2e Hugo de Grootstraat", ("2e Hugo de Grootstraat", "")),  # a Dutch ordinal, not number "2e"
        ("1st Avenue", ("1st Avenue", "")),
        ("12", ("12", "")),
        ("", ("", "")),
    ],
)
def test_split_house_number(street: str, expected: tuple[str, str]) -> None:
    assert split_house_number(street) == expected


def test_address_lines_keeps_an_explicit_number() -> None:
    assert address_lines("Stationsstraat 5", "12", "") == ("Stationsstraat 5", "12", "")
    assert address_lines("Kasteelstraat", "1, bus 200A", "") == ("Kasteelstraat", "1", "bus 200A")
    long_number = "123456789"  # too long, but nothing sensible to move: leave it for Sendcloud to judge
    assert address_lines("Weg", long_number, "") == ("Weg", long_number, "")


def _kept(*parts: str) -> Counter[str]:
    """The characters that must survive a split: all but whitespace and separating commas."""
    return Counter(c for part in parts for c in part if not c.isspace() and c != ",")


street_text = st.text(alphabet=st.sampled_from(list("abcßéAB 019-/,.")), max_size=40)


@given(street_text)
def test_split_never_loses_characters(street: str) -> None:
    line_1, number = split_house_number(street)
    assert _kept(line_1, number) == _kept(street)


@given(street_text, st.text(alphabet=st.sampled_from(list("abAB 019-/,")), max_size=15), street_text)
def test_address_lines_never_lose_characters(street: str, number: str, line_2: str) -> None:
    result = address_lines(street, number, line_2)
    assert _kept(*result) == _kept(street, number, line_2)


@given(st.from_regex(r"[a-z]{1,12} [0-9]{1,3} (bus|box) [0-9]{3,4}[A-Z]", fullmatch=True))
def test_long_belgian_numbers_always_fit(street: str) -> None:
    _, number, line_2 = address_lines(street, "", "")
    assert len(number) <= HOUSE_NUMBER_MAX_LENGTH
    assert number.isdigit()
    assert line_2 == "" or line_2.startswith(("bus", "box"))


# -- precheck ---------------------------------------------------------------------------------------------------


def test_precheck_accepts_a_typical_order(typical: Order) -> None:
    assert precheck(typical) == []


def test_precheck_finds_what_sendcloud_would_refuse(shop: Shop) -> None:
    order = fetch(
        OrderFactory(
            shop=shop,
            customer_name=" ",
            customer_email="not-an-email",
            currency="CHF",
            address={"postal_code": "", "city": "", "country": "XX"},
            lines=[
                {"name": "Mug"},
                {"name": "T-shirt", "quantity": 0},
                {"name": "", "origin_country": "ZZ"},
            ],
        )
    )
    assert precheck(order) == [
        "Customer name is missing.",
        "Customer email 'not-an-email' is not a valid email address.",
        "Currency 'CHF' is not supported by Sendcloud (it accepts EUR, GBP and USD only).",
        "Shipping address has no postal code.",
        "Shipping address has no city.",
        "Country 'XX' is not a valid ISO 3166-1 alpha-2 code.",
        "Line 2 (T-shirt) has quantity 0.",
        "Line 3 has no product name.",
        "Line 3 has country of origin 'ZZ', which is not a valid ISO 3166-1 alpha-2 code.",
    ]


def test_precheck_without_lines_or_address(shop: Shop) -> None:
    order = fetch(OrderFactory(shop=shop, address=False, lines=[]))
    assert precheck(order) == ["Order has no shipping address.", "Order has no lines to ship."]


def test_precheck_missing_street_and_country(shop: Shop) -> None:
    order = fetch(OrderFactory(shop=shop, address={"street": "", "country": ""}))
    assert precheck(order) == ["Shipping address has no street.", "Shipping address has no country."]


def test_precheck_order_id_too_long_for_label_requests(typical: Order, settings: Any) -> None:
    settings.SENDCLOUD_ORDER_ID_PREFIX = "x" * 64
    assert any("longer than 64 characters" in problem for problem in precheck(typical))


def test_precheck_lowercase_country_is_fine(shop: Shop) -> None:
    order = fetch(OrderFactory(shop=shop, address={"country": "be"}))
    assert precheck(order) == []


def test_iso_country_list() -> None:
    assert len(ISO_COUNTRIES) == 250  # 249 assigned codes plus XK
    assert {"NL", "BE", "DE", "GB", "US", "XK"} <= ISO_COUNTRIES
    assert not {"UK", "EU", "XX"} & ISO_COUNTRIES
