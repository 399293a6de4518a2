"""Service points and customs in the order payload and the pre-check.

The payloads are validated with ``jsonschema`` against the vendored request schema of ``POST /v3/orders``
(``tests/fixtures/sendcloud_schemas/orders_batch.json``, from Sendcloud's official v3 spec); the pre-check
rules are each shown on the order a shop would send.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.utils import timezone

from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from sendcloud_integration.sendcloud.payloads import build_order, precheck
from sendcloud_integration.sendcloud.transport import encode_json
from tests.factories import OrderFactory
from webshop.models import Order, Shop

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "sendcloud_schemas" / "orders_batch.json").read_text()
)
SWISS = {"street": "Bahnhofstrasse", "house_number": "1", "postal_code": "8001", "city": "Zürich", "country": "CH"}
FULL_LINE = {"hs_code": "610910", "origin_country": "PT"}


def fetch(order: Order) -> Order:
    return (
        Order.objects.select_related("shipping_address", "shop").prefetch_related("lines", "parcels").get(pk=order.pk)
    )


def sent(order: Order, integration: SendcloudIntegration) -> dict[str, Any]:
    """The order as it goes on the wire (exact decimals), validated against the official schema."""
    body = json.loads(encode_json([build_order(fetch(order), integration)]))
    jsonschema.validate(body, SCHEMA)
    return dict(body[0])


@pytest.fixture
def exporter(integration: SendcloudIntegration) -> SendcloudIntegration:
    integration.sender_eori_number = "NL123456789000"
    integration.sender_vat_number = "NL001234567B01"
    integration.save()
    return integration


def catalogue(integration: SendcloudIntegration) -> dict[str, ShippingOption]:
    """A synced catalogue with a home-delivery method and a pickup-point method serving NL and CH."""
    integration.shipping_options_synced_at = timezone.now()
    integration.shipping_options_countries = ["NL", "CH"]
    integration.save()
    home = ShippingOption.objects.create(integration=integration, code="postnl:standard", countries=["NL", "CH"])
    pickup = ShippingOption.objects.create(
        integration=integration, code="postnl:pickup", name="PostNL Pick-up", countries=["NL"], service_point=True
    )
    return {option.code: option for option in (home, pickup)}


# --- the payload ----------------------------------------------------------------------------------------------


def test_a_service_point_is_sent_by_sendclouds_id_with_the_post_number(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, service_point_id="1000003", service_point_post_number="123456789")
    assert sent(order, integration)["service_point_details"] == {"id": "1000003", "post_number": "123456789"}


def test_a_point_known_only_by_the_carrier_is_sent_by_the_carriers_id(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, service_point_carrier_id="NL-219873")
    assert sent(order, integration)["service_point_details"] == {"carrier_service_point_id": "NL-219873"}


def test_with_both_ids_only_sendclouds_is_sent_since_the_spec_accepts_exactly_one(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, service_point_id="1000001", service_point_carrier_id="NL-219873")
    details = sent(order, integration)["service_point_details"]
    assert details == {"id": "1000001"}
    both = {**details, "carrier_service_point_id": "NL-219873"}
    with pytest.raises(jsonschema.ValidationError):  # the spec's oneOf refuses an object with both
        jsonschema.validate(both, SCHEMA["items"]["allOf"][0]["properties"]["service_point_details"])


def test_a_home_delivery_sends_neither_a_point_nor_customs(shop: Shop, integration: Any) -> None:
    body = sent(OrderFactory(shop=shop), integration)
    assert "service_point_details" not in body
    assert "customs_details" not in body


def test_a_parcel_leaving_the_eu_carries_customs_details_with_the_shops_defaults(
    shop: Shop, exporter: SendcloudIntegration
) -> None:
    order = OrderFactory(
        shop=shop,
        address=SWISS,
        customs_invoice_number="INV-7",
        receiver_eori_number="CH123456789",
        lines=[{"hs_code": "6109.10 00", "origin_country": "pt"}],
    )
    body = sent(order, exporter)
    assert body["customs_details"] == {
        "commercial_invoice_number": "INV-7",
        "shipment_type": "commercial_goods",
        "export_type": "commercial_b2c",
        "tax_numbers": {
            "sender": [
                {"name": "EORI", "country_code": "NL", "value": "NL123456789000"},
                {"name": "VAT", "country_code": "NL", "value": "NL001234567B01"},
            ],
            "receiver": [{"name": "EORI", "country_code": "CH", "value": "CH123456789"}],
        },
    }
    item = body["order_details"]["order_items"][0]
    assert (item["hs_code"], item["country_of_origin"]) == ("61091000", "PT")
    assert item["unit_price"] == {"value": 19.95, "currency": "EUR"}  # the customs value
    assert item["measurement"]["weight"] == {"value": 0.25, "unit": "kg"}


def test_the_orders_own_types_win_over_the_shops(shop: Shop, exporter: SendcloudIntegration) -> None:
    order = OrderFactory(
        shop=shop, address=SWISS, customs_shipment_type="gift", customs_export_type="private", lines=[FULL_LINE]
    )
    details = sent(order, exporter)["customs_details"]
    assert (details["shipment_type"], details["export_type"]) == ("gift", "private")


def test_a_tax_number_without_a_country_prefix_takes_the_destinations(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, address=SWISS, receiver_vat_number="123.456.789", lines=[FULL_LINE])
    receiver = sent(order, integration)["customs_details"]["tax_numbers"]["receiver"]
    assert receiver == [{"name": "VAT", "country_code": "CH", "value": "123.456.789"}]


def test_greek_and_northern_irish_tax_prefixes_are_sent_as_iso_country_codes(
    shop: Shop, integration: SendcloudIntegration
) -> None:
    integration.sender_vat_number = "EL094019245"  # a Greek VAT number starts with EL, Greece is GR
    integration.save()
    order = OrderFactory(shop=shop, address=SWISS, receiver_eori_number="XI123456789000", lines=[FULL_LINE])
    numbers = sent(order, integration)["customs_details"]["tax_numbers"]
    assert numbers["sender"] == [{"name": "VAT", "country_code": "GR", "value": "EL094019245"}]
    assert numbers["receiver"] == [{"name": "EORI", "country_code": "GB", "value": "XI123456789000"}]


# --- the pre-check: customs -----------------------------------------------------------------------------------


def test_an_eu_order_needs_no_customs_data(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, address={"country": "DE", "postal_code": "10115", "city": "Berlin"})
    assert precheck(fetch(order), integration=integration) == []


def test_every_missing_customs_field_is_named_in_one_message(shop: Shop, integration: Any) -> None:
    order = OrderFactory(
        shop=shop,
        address=SWISS,
        lines=[FULL_LINE, {"sku": "SKU-7", "origin_country": ""}, {"sku": "", "name": "Mug", "hs_code": "61"}],
    )
    assert precheck(fetch(order), integration=integration) == [
        "Customs data is incomplete for a parcel to CH: invoice number missing; "
        "the shop's EORI number missing (needed for a commercial export); "
        "HS code missing on line 2 (SKU-7); country of origin missing on line 2 (SKU-7); "
        "HS code '61' on line 3 (Mug) is not 6, 8 or 10 digits; country of origin missing on line 3 (Mug)."
    ]


def test_a_complete_customs_order_passes(shop: Shop, exporter: SendcloudIntegration) -> None:
    order = OrderFactory(shop=shop, address=SWISS, customs_invoice_number="INV-1", lines=[FULL_LINE])
    assert precheck(fetch(order), integration=exporter) == []


def test_a_line_without_value_or_weight_is_named(shop: Shop, exporter: SendcloudIntegration) -> None:
    order = OrderFactory(
        shop=shop,
        address=SWISS,
        customs_invoice_number="INV-1",
        lines=[{**FULL_LINE, "unit_price": "0", "weight_kg": "0"}],
    )
    assert precheck(fetch(order), integration=exporter) == [
        "Customs data is incomplete for a parcel to CH: "
        "value missing on line 1 (SKU-0); weight missing on line 1 (SKU-0)."
    ]


def test_a_private_export_needs_no_eori_and_a_b2b_one_needs_the_receivers_number(shop: Shop, integration: Any) -> None:
    private = OrderFactory(
        shop=shop, address=SWISS, customs_invoice_number="INV-1", customs_export_type="private", lines=[FULL_LINE]
    )
    b2b = OrderFactory(
        shop=shop,
        address=SWISS,
        customs_invoice_number="INV-2",
        customs_export_type="commercial_b2b",
        lines=[FULL_LINE],
    )
    integration.sender_eori_number = "NL123456789000"
    assert precheck(fetch(private), integration=SendcloudIntegration(customs_export_type="commercial_b2c")) == []
    assert precheck(fetch(b2b), integration=integration) == [
        "Customs data is incomplete for a parcel to CH: "
        "the receiver's VAT or EORI number missing (needed for a B2B export)."
    ]


def test_without_a_shop_default_the_types_are_named(shop: Shop) -> None:
    order = OrderFactory(shop=shop, address=SWISS, customs_invoice_number="INV-1", lines=[FULL_LINE])
    assert precheck(fetch(order)) == [
        "Customs data is incomplete for a parcel to CH: shipment type missing; export type missing."
    ]


@pytest.mark.parametrize(
    ("address", "where"),
    [
        ({"country": "ES", "postal_code": "35001", "city": "Las Palmas"}, "the Canary Islands"),
        ({"country": "FI", "postal_code": "22100", "city": "Mariehamn"}, "the Åland Islands"),
        ({"country": "GB", "postal_code": "SW1A 1AA", "city": "London"}, "the United Kingdom (Great Britain)"),
        ({"country": "DE", "postal_code": "78266", "city": "Büsingen"}, "Büsingen am Hochrhein"),
    ],
)
def test_eu_territories_outside_the_area_need_customs_data(
    shop: Shop, exporter: SendcloudIntegration, address: dict[str, str], where: str
) -> None:
    order = OrderFactory(shop=shop, address=address)  # no invoice number, no HS code, no origin
    problems = precheck(fetch(order), integration=exporter)
    assert problems == [
        f"Customs data is incomplete for a parcel to {where}: invoice number missing; "
        "HS code missing on line 1 (SKU-0); country of origin missing on line 1 (SKU-0)."
    ]
    assert "customs_details" in build_order(fetch(order), exporter)


@pytest.mark.parametrize(
    "address",
    [
        {"country": "GB", "postal_code": "BT1 1AA", "city": "Belfast"},
        {"country": "MC", "postal_code": "98000", "city": "Monaco"},
        {"country": "ES", "postal_code": "07001", "city": "Palma"},
    ],
)
def test_northern_ireland_monaco_and_the_balearics_need_none(
    shop: Shop, exporter: SendcloudIntegration, address: dict[str, str]
) -> None:
    order = OrderFactory(shop=shop, address=address)
    assert precheck(fetch(order), integration=exporter) == []
    assert "customs_details" not in build_order(fetch(order), exporter)


def test_a_wrong_country_is_reported_as_such_not_as_missing_customs(shop: Shop, integration: Any) -> None:
    order = OrderFactory(shop=shop, address={"country": "XX"})
    assert precheck(fetch(order), integration=integration) == ["Country 'XX' is not a valid ISO 3166-1 alpha-2 code."]


# --- the pre-check: service points ----------------------------------------------------------------------------


def test_a_service_point_method_without_a_point_is_refused(shop: Shop, integration: SendcloudIntegration) -> None:
    options = catalogue(integration)
    order = OrderFactory(shop=shop, shipping_option_code="postnl:pickup")
    assert precheck(fetch(order), integration=integration, options=options) == [
        "Shipping method 'PostNL Pick-up' (postnl:pickup) delivers to a service point, but the order has none chosen."
    ]


def test_a_point_with_a_home_delivery_method_is_refused(shop: Shop, integration: SendcloudIntegration) -> None:
    options = catalogue(integration)
    order = OrderFactory(shop=shop, shipping_option_code="postnl:standard", service_point_id="1000001")
    assert precheck(fetch(order), integration=integration, options=options) == [
        "The order has a service point chosen, but Shipping method 'postnl:standard' (postnl:standard) delivers to "
        "the address; choose a service-point method or remove the point."
    ]


def test_a_point_with_a_service_point_method_passes(shop: Shop, integration: SendcloudIntegration) -> None:
    options = catalogue(integration)
    order = OrderFactory(shop=shop, shipping_option_code="postnl:pickup", service_point_id="1000001")
    assert precheck(fetch(order), integration=integration, options=options) == []


def test_the_shops_default_method_is_judged_too(shop: Shop, integration: SendcloudIntegration) -> None:
    options = catalogue(integration)
    integration.shipping_option_code = "postnl:pickup"
    order = OrderFactory(shop=shop)  # no point, and the shop's default delivers to points
    assert precheck(fetch(order), integration=integration, options=options) == [
        "Shipping method 'PostNL Pick-up' (postnl:pickup) delivers to a service point, but the order has none chosen."
    ]
