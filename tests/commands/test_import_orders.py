"""``import_orders``: validate everything, then upsert by order number, all or nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.commands.conftest import SAMPLE_ORDERS, run
from tests.factories import ShopFactory
from webshop.models import Order, OrderLine, ShippingAddress, Shop
from webshop.services import OrderImportError, import_orders

pytestmark = pytest.mark.django_db

Items = list[dict[str, Any]]


def import_json(shop: Shop, items: Any) -> Any:
    """Feed ``items`` through stdin (``-``) and return the parsed stdout."""
    out = run("import_orders", "--shop", shop.slug, "-", stdin=StringIO(json.dumps(items)))
    return json.loads(out.stdout)


def snapshot(shop: Shop) -> list[tuple[Any, ...]]:
    """Everything an import may write for ``shop``, to compare before and after."""
    orders = list(Order.objects.filter(shop=shop).order_by("pk").values_list())
    lines = list(OrderLine.objects.filter(order__shop=shop).order_by("pk").values_list())
    addresses = list(ShippingAddress.objects.filter(order__shop=shop).order_by("pk").values_list())
    return [*orders, *lines, *addresses]


# --- the sample file -------------------------------------------------------------------------------


def test_imports_the_sample_file(shop: Shop) -> None:
    out = run("import_orders", "--shop", shop.slug, str(SAMPLE_ORDERS))

    result = json.loads(out.stdout)
    numbers = ["ORD-1001", "ORD-1002", "ORD-1003", "ORD-1004", "ORD-1005"]
    assert [row["order_number"] for row in result] == numbers
    assert Order.objects.filter(shop=shop).count() == 5
    assert "Imported 5 orders into shop acme." in out.stderr

    normal = Order.objects.get(shop=shop, order_number="ORD-1001")
    assert normal.type == Order.Type.CHECKOUT
    assert normal.status == Order.Status.PAID
    assert normal.customer_name == "Jan Jansen"
    assert normal.created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    lines = list(normal.lines.order_by("position"))
    assert [(line.position, line.sku, line.quantity) for line in lines] == [(0, "TS-RED-M", 2), (1, "MUG-WHT", 1)]
    assert lines[0].unit_price == Decimal("19.95")
    assert lines[0].weight_kg == Decimal("0.250")
    assert normal.total_amount == Decimal("48.40")
    assert normal.shipping_address.city == "Amsterdam"

    quote = Order.objects.get(shop=shop, order_number="ORD-1002")
    assert quote.type == Order.Type.QUOTE
    assert quote.customer_company == "De Vries B.V."
    assert quote.created_at == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # +01:00 stored as UTC

    assert Order.objects.get(shop=shop, order_number="ORD-1003").status == Order.Status.CANCELLED
    assert not ShippingAddress.objects.filter(order__order_number="ORD-1004").exists()

    in_street = ShippingAddress.objects.get(order__order_number="ORD-1005")
    assert (in_street.street, in_street.house_number, in_street.country) == ("Hauptstraße 5a", "", "DE")
    assert OrderLine.objects.get(order__order_number="ORD-1005").origin_country == "BD"


def test_output_is_a_json_array_of_ids_and_order_numbers(shop: Shop, sample_items: Items) -> None:
    out = run("import_orders", "--shop", shop.slug, str(SAMPLE_ORDERS))

    assert out.stdout.count("\n") == 1
    result = json.loads(out.stdout)
    assert isinstance(result, list)
    expected = [
        {"id": pk, "order_number": number}
        for number in [item["order_number"] for item in sample_items]
        for pk in Order.objects.filter(shop=shop, order_number=number).values_list("pk", flat=True)
    ]
    assert result == expected
    assert all(set(row) == {"id", "order_number"} for row in result)


def test_reads_stdin_with_a_dash(shop: Shop) -> None:
    text = SAMPLE_ORDERS.read_text(encoding="utf-8")

    out = run("import_orders", "--shop", shop.slug, "-", stdin=StringIO(text))

    assert len(json.loads(out.stdout)) == 5
    assert Order.objects.filter(shop=shop).count() == 5


def test_an_empty_array_imports_nothing(shop: Shop) -> None:
    assert import_json(shop, []) == []


def test_unknown_keys_are_ignored_and_type_defaults_to_checkout(shop: Shop, sample_items: Items) -> None:
    item = sample_items[0]
    del item["type"]
    item["channel"] = "bol.com"
    item["lines"][0]["discount"] = {"amount": "1.00"}

    import_json(shop, [item])

    assert Order.objects.get(shop=shop).type == Order.Type.CHECKOUT


# --- upsert ----------------------------------------------------------------------------------------


def test_second_import_updates_by_order_number(shop: Shop, sample_items: Items) -> None:
    first = import_json(shop, sample_items)
    changed = copy.deepcopy(sample_items)
    changed[0]["status"] = "completed"
    changed[0]["customer"]["name"] = "J. Jansen"
    changed[0]["lines"] = [{"sku": "SOCKS", "name": "Socks", "quantity": 5, "unit_price": "3.00", "weight_kg": "0.050"}]
    changed[2]["shipping_address"] = None  # ORD-1003 loses its address
    changed[3]["shipping_address"] = {  # ORD-1004 gains one
        "street": "Dorpsstraat",
        "house_number": "1",
        "postal_code": "1234AB",
        "city": "Ergens",
        "country": "nl",
    }

    second = import_json(shop, changed)

    assert second == first  # same ids, same order
    assert Order.objects.filter(shop=shop).count() == 5
    order = Order.objects.get(shop=shop, order_number="ORD-1001")
    assert order.status == Order.Status.COMPLETED
    assert order.customer_name == "J. Jansen"
    assert [(line.sku, line.quantity) for line in order.lines.all()] == [("SOCKS", 5)]
    assert OrderLine.objects.filter(order__shop=shop).count() == 5  # 1 + 1 + 1 + 1 + 1
    assert not ShippingAddress.objects.filter(order__order_number="ORD-1003").exists()
    assert ShippingAddress.objects.get(order__order_number="ORD-1004").country == "NL"


def test_same_order_number_in_another_shop_is_another_order(shop: Shop, sample_items: Items) -> None:
    other = ShopFactory(slug="other")
    import_json(shop, sample_items)
    before = snapshot(shop)

    import_json(other, sample_items)

    assert Order.objects.count() == 10
    assert snapshot(shop) == before


def test_repeating_an_import_changes_no_order_rows(shop: Shop, sample_items: Items) -> None:
    import_json(shop, sample_items)
    before = list(Order.objects.order_by("pk").values_list("pk", "order_number", "status", "created_at"))

    import_json(shop, sample_items)

    assert list(Order.objects.order_by("pk").values_list("pk", "order_number", "status", "created_at")) == before


def test_queries_do_not_grow_with_the_number_of_orders(shop: Shop, sample_items: Items) -> None:
    def many(count: int, prefix: str) -> Items:
        items = []
        for index in range(count):
            item = copy.deepcopy(sample_items[index % len(sample_items)])
            item["order_number"] = f"{prefix}-{index}"
            items.append(item)
        return items

    with CaptureQueriesContext(connection) as small:
        import_orders(shop=shop, items=many(5, "S"))
    with CaptureQueriesContext(connection) as large:
        import_orders(shop=shop, items=many(60, "L"))
    with CaptureQueriesContext(connection) as small_update:
        import_orders(shop=shop, items=many(5, "S"))
    with CaptureQueriesContext(connection) as update:
        import_orders(shop=shop, items=many(60, "L"))

    assert len(large) == len(small)
    # An update also locks the existing orders and reads their parcels (the shipping-data lock check).
    assert len(update) == len(small_update)
    assert Order.objects.filter(shop=shop).count() == 65


# --- all or nothing --------------------------------------------------------------------------------


def test_a_bad_item_imports_nothing_and_names_item_and_field(shop: Shop, sample_items: Items) -> None:
    sample_items[3]["lines"][0]["quantity"] = 0

    with pytest.raises(CommandError) as excinfo:
        import_json(shop, sample_items)

    assert "item 3 (ORD-1004): lines[0].quantity: must be a positive integer" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert not Order.objects.exists()


def test_a_bad_item_leaves_existing_orders_untouched(shop: Shop, sample_items: Items) -> None:
    import_json(shop, sample_items)
    before = snapshot(shop)
    changed = copy.deepcopy(sample_items)
    changed[0]["status"] = "refunded"
    changed[0]["lines"] = changed[0]["lines"][:1]
    changed[4]["currency"] = "EURO"

    with pytest.raises(CommandError, match=r"item 4 \(ORD-1005\): currency: must be 3 letters"):
        import_json(shop, changed)

    assert snapshot(shop) == before


def test_every_error_is_collected(shop: Shop, sample_items: Items) -> None:
    sample_items[1]["status"] = "shipped"
    sample_items[2]["customer"]["name"] = ""
    sample_items[4]["shipping_address"]["country"] = "DEU"
    sample_items[4]["lines"][0]["weight_kg"] = "0.1205"

    with pytest.raises(OrderImportError) as excinfo:
        import_orders(shop=shop, items=sample_items)

    assert excinfo.value.errors == [
        "item 1 (ORD-1002): status: must be one of on_hold, payment_received, paid, completed, cancelled, "
        "refunding, refunded, pending, failed",
        "item 2 (ORD-1003): customer.name: is required",
        "item 4 (ORD-1005): shipping_address.country: must be 2 letters",
        "item 4 (ORD-1005): lines[0].weight_kg: must have at most 3 decimal places",
    ]
    assert str(excinfo.value).endswith("(and 1 more error)")


def test_float_money_is_refused(shop: Shop, sample_items: Items) -> None:
    sample_items[0]["lines"][1]["unit_price"] = 8.5

    with pytest.raises(CommandError, match=r"item 0 \(ORD-1001\): lines\[1\]\.unit_price: .*floats lose cents"):
        import_json(shop, sample_items)

    assert not Order.objects.exists()


def set_path(item: dict[str, Any], path: str, value: Any) -> None:
    """``set_path(item, "lines.0.quantity", 3)``; the value ``...`` deletes the key."""
    keys: list[Any] = [int(key) if key.isdigit() else key for key in path.split(".")]
    *parents, last = keys
    target: Any = item
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("order_number", ..., "order_number: is required"),
        ("order_number", "   ", "order_number: is required"),
        ("type", "invoice", "type: must be one of checkout, quote"),
        ("status", ..., "status: is required"),
        ("currency", 978, "currency: must be 3 letters"),
        ("created_at", "2026-11-20T10:00:00", "created_at: must include a timezone"),
        ("created_at", "20 Nov 2026", "created_at: must be an ISO 8601 date and time"),
        ("created_at", "2026-02-30T10:00:00Z", "created_at: must be an ISO 8601 date and time"),
        ("customer", ..., "customer: is required"),
        ("customer.email", "not-an-email", "customer.email: must be an email address"),
        ("customer.phone", 31612345678, "customer.phone: must be a string"),
        ("shipping_address", "Stationsstraat 12", "shipping_address: must be an object or null"),
        ("shipping_address.street", ..., "shipping_address.street: is required"),
        ("shipping_address.postal_code", "", "shipping_address.postal_code: is required"),
        ("shipping_address.city", None, "shipping_address.city: is required"),
        ("shipping_address.country", ..., "shipping_address.country: is required"),
        ("shipping_address.street", "x" * 201, "shipping_address.street: must be at most 200 characters"),
        ("lines", [], "lines: must be an array with at least one line"),
        ("lines", ..., "lines: must be an array with at least one line"),
        ("lines.0", "TS-RED-M", "lines[0]: must be an object"),
        ("lines.0.name", "", "lines[0].name: is required"),
        ("lines.0.quantity", True, "lines[0].quantity: must be a positive integer"),
        ("lines.0.quantity", "2", "lines[0].quantity: must be a positive integer"),
        ("lines.0.quantity", 2.0, "lines[0].quantity: must be a positive integer"),
        ("lines.0.quantity", -1, "lines[0].quantity: must be a positive integer"),
        ("lines.0.unit_price", ..., "lines[0].unit_price: is required"),
        ("lines.0.unit_price", 20, "lines[0].unit_price: must be a decimal string"),
        ("lines.0.unit_price", "-1.00", "lines[0].unit_price: must be a non-negative decimal string"),
        ("lines.0.unit_price", "1,95", "lines[0].unit_price: must be a non-negative decimal string"),
        ("lines.0.unit_price", "NaN", "lines[0].unit_price: must be a non-negative decimal string"),
        ("lines.0.unit_price", "12345678901.00", "lines[0].unit_price: must be below 10000000000"),
        ("lines.0.origin_country", "PRT", "lines[0].origin_country: must be 2 letters"),
    ],
)
def test_field_rules(shop: Shop, sample_items: Items, path: str, value: Any, message: str) -> None:
    item = sample_items[0]
    set_path(item, path, value)

    with pytest.raises(OrderImportError) as excinfo:
        import_orders(shop=shop, items=[item])

    assert any(message in error for error in excinfo.value.errors), excinfo.value.errors
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("customer.phone", ...),
        ("customer.company", None),
        ("customer.email", ""),
        ("payment_status", ...),
        ("shipping_address.house_number", ...),
        ("shipping_address.address_line_2", None),
        ("shipping_address.state", ...),
        ("lines.0.hs_code", ""),
        ("lines.0.origin_country", ...),
        ("lines.0.sku", None),
        ("lines.0.weight_kg", ...),
    ],
)
def test_optional_fields_may_be_empty_null_or_absent(shop: Shop, sample_items: Items, path: str, value: Any) -> None:
    set_path(sample_items[0], path, value)

    [order] = import_orders(shop=shop, items=[sample_items[0]])

    assert order.pk is not None


def test_duplicate_order_numbers_in_one_file_are_refused(shop: Shop, sample_items: Items) -> None:
    sample_items[4]["order_number"] = "ORD-1001"

    with pytest.raises(CommandError, match=r"item 4 \(ORD-1001\): order_number: repeats item 0"):
        import_json(shop, sample_items)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"order_number": "ORD-1"}, "the input must be a JSON array of orders"),
        (["ORD-1"], "item 0: must be an object"),
    ],
)
def test_wrong_shapes(shop: Shop, payload: Any, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        import_json(shop, payload)


# --- the command's own errors -----------------------------------------------------------------------


def test_invalid_json_names_line_and_column(shop: Shop) -> None:
    text = '[\n  {"order_number": "ORD-1"\n  "status": "paid"}\n]'

    with pytest.raises(CommandError, match=r"invalid JSON in stdin at line 3, column 3: Expecting ','"):
        run("import_orders", "--shop", shop.slug, "-", stdin=StringIO(text))


def test_invalid_json_in_a_file_names_the_file(shop: Shop, tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text("[1, 2,]", encoding="utf-8")

    with pytest.raises(CommandError, match=rf"invalid JSON in {path} at line 1, column 7"):
        run("import_orders", "--shop", shop.slug, str(path))


def test_missing_file(shop: Shop, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"cannot read .*missing\.json: No such file or directory"):
        run("import_orders", "--shop", shop.slug, str(tmp_path / "missing.json"))


def test_file_that_is_not_utf8(shop: Shop, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"order_number": "Müller"}]'.encode("latin-1"))

    with pytest.raises(CommandError, match="not UTF-8 text"):
        run("import_orders", "--shop", shop.slug, str(path))


def test_a_byte_order_mark_is_tolerated(shop: Shop, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE_ORDERS.read_bytes())

    out = run("import_orders", "--shop", shop.slug, str(path))

    assert len(json.loads(out.stdout)) == 5


def test_unknown_shop(db: None) -> None:
    with pytest.raises(CommandError, match="unknown shop 'nope'"):
        run("import_orders", "--shop", "nope", str(SAMPLE_ORDERS))


# --- shipping data (shipping_option_code, weight_kg, parcels) ----------------------------------------------


def test_shipping_data_is_imported_and_replaced_on_reimport(shop: Shop, sample_items: Items) -> None:
    from webshop.models import OrderParcel

    sample_items[0].update(
        shipping_option_code="dhl_express:express",
        weight_kg="7.500",
        parcels=[
            {"weight_kg": "4.000", "length_cm": "40", "width_cm": "30", "height_cm": "20"},
            {"weight_kg": "3.500"},
        ],
    )
    sample_items[1]["parcels"] = 3
    import_json(shop, sample_items)

    first = Order.objects.get(shop=shop, order_number=sample_items[0]["order_number"])
    assert (first.shipping_option_code, first.weight_kg) == ("dhl_express:express", Decimal("7.500"))
    parcels = list(OrderParcel.objects.filter(order=first).order_by("position"))
    assert [(p.weight_kg, p.dimensions) for p in parcels] == [
        (Decimal("4.000"), (Decimal("40.0"), Decimal("30.0"), Decimal("20.0"))),
        (Decimal("3.500"), None),
    ]
    second = Order.objects.get(shop=shop, order_number=sample_items[1]["order_number"])
    assert OrderParcel.objects.filter(order=second, weight_kg__isnull=True).count() == 3

    sample_items[0].pop("parcels")
    sample_items[0].pop("weight_kg")
    import_json(shop, sample_items)
    first.refresh_from_db()
    assert first.weight_kg is None
    assert not OrderParcel.objects.filter(order=first).exists()


def test_an_order_without_shipping_data_ships_with_the_defaults(shop: Shop, sample_items: Items) -> None:
    import_json(shop, sample_items)
    order = Order.objects.get(shop=shop, order_number=sample_items[0]["order_number"])
    assert (order.shipping_option_code, order.weight_kg, order.parcels.count()) == ("", None, 0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"weight_kg": 1.5}, "weight_kg: must be a decimal string"),
        ({"parcels": 0}, "parcels: must be a number from 1 to 50 or a list of parcels"),
        ({"parcels": 51}, "parcels: must be a number from 1 to 50"),
        ({"parcels": []}, "parcels: must be a number from 1 to 50 or a list of 1 to 50 parcels"),
        ({"parcels": ["x"]}, "parcels[0]: must be an object"),
        ({"parcels": [{"weight_kg": "0"}]}, "parcels[0].weight_kg: must be above 0"),
        ({"parcels": [{"length_cm": "10"}]}, "parcels[0].length_cm: length_cm, width_cm and height_cm go together"),
        ({"shipping_option_code": 7}, "shipping_option_code: must be a string"),
    ],
)
def test_shipping_data_rules(shop: Shop, sample_items: Items, value: dict, message: str) -> None:
    sample_items[0].update(value)
    with pytest.raises(CommandError) as excinfo:
        import_json(shop, sample_items)
    assert message in str(excinfo.value)
    assert not Order.objects.exists()


# --- service point and customs ------------------------------------------------------------------------------


def test_service_point_and_customs_are_imported_and_cleared_on_reimport(shop: Shop, sample_items: Items) -> None:
    sample_items[0]["service_point"] = {"id": "1000003", "carrier_point_id": "NL-PA-0031", "post_number": "123456789"}
    sample_items[1].update(
        customs={
            "invoice_number": "INV-2026-0042",
            "shipment_type": "gift",
            "export_type": "private",
            "receiver_vat_number": "CHE-123.456.789 MWST",
            "receiver_eori_number": "CH123456789",
        }
    )
    sample_items[1]["lines"][0].update(hs_code="610910", origin_country="pt")
    import_json(shop, sample_items)

    pickup = Order.objects.get(shop=shop, order_number=sample_items[0]["order_number"])
    assert (pickup.service_point_id, pickup.service_point_carrier_id, pickup.service_point_post_number) == (
        "1000003",
        "NL-PA-0031",
        "123456789",
    )
    export = Order.objects.get(shop=shop, order_number=sample_items[1]["order_number"])
    assert (
        export.customs_invoice_number,
        export.customs_shipment_type,
        export.customs_export_type,
        export.receiver_vat_number,
        export.receiver_eori_number,
    ) == ("INV-2026-0042", "gift", "private", "CHE-123.456.789 MWST", "CH123456789")
    line = export.lines.order_by("position").first()
    assert line is not None
    assert (line.hs_code, line.origin_country) == ("610910", "PT")

    sample_items[0]["service_point"] = None  # back to delivery at the address
    sample_items[1].pop("customs")
    import_json(shop, sample_items)
    pickup.refresh_from_db()
    export.refresh_from_db()
    assert (pickup.service_point_id, pickup.service_point_carrier_id, pickup.service_point_post_number) == ("", "", "")
    assert (export.customs_invoice_number, export.customs_shipment_type, export.customs_export_type) == ("", "", "")


def test_a_service_point_known_only_by_its_carrier_id_is_kept(shop: Shop, sample_items: Items) -> None:
    sample_items[0]["service_point"] = {"carrier_point_id": "NL-219873"}
    import_json(shop, sample_items)
    order = Order.objects.get(shop=shop, order_number=sample_items[0]["order_number"])
    assert (order.service_point_id, order.service_point_carrier_id) == ("", "NL-219873")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"service_point": {"id": "abc"}}, "service_point.id: must be Sendcloud's numeric service point id"),
        ({"service_point": {}}, "service_point.id: a service point needs its id (or carrier_point_id)"),
        ({"service_point": "1000001"}, "service_point: must be an object or null"),
        ({"service_point": {"id": 1000001}}, "service_point.id: must be a string"),
        ({"customs": {"shipment_type": "present"}}, "customs.shipment_type: must be one of gift, commercial_goods"),
        ({"customs": {"export_type": "b2c"}}, "customs.export_type: must be one of private, commercial_b2c"),
        ({"customs": {"invoice_number": "x" * 65}}, "customs.invoice_number: must be at most 64 characters"),
        ({"customs": []}, "customs: must be an object or null"),
    ],
)
def test_service_point_and_customs_rules(shop: Shop, sample_items: Items, value: dict, message: str) -> None:
    sample_items[0].update(value)
    with pytest.raises(CommandError) as excinfo:
        import_json(shop, sample_items)
    assert message in str(excinfo.value)
    assert not Order.objects.exists()


# --- shipping data of orders in flight or labelled: the same rule as the integration's own doors ----------


def pushed(order_number: str, shop: Shop, state: str) -> Order:
    """The order as the Sendcloud integration holds it: a shipment row in ``state``."""
    from sendcloud_integration.models import OrderShipment

    order = Order.objects.get(shop=shop, order_number=order_number)
    OrderShipment.objects.create(order=order, shop=shop, state=state)
    return order


@pytest.mark.parametrize(
    ("state", "reason"),
    [("label_queued", "a batch is sending it to Sendcloud"), ("labelled", "it has a label")],
)
def test_a_reimport_cannot_change_the_shipping_data_of_an_order_in_flight_or_labelled(
    shop: Shop, sample_items: Items, state: str, reason: str
) -> None:
    sample_items[0]["service_point"] = {"id": "1000003"}
    import_json(shop, sample_items)
    pushed(sample_items[0]["order_number"], shop, state)
    before = snapshot(shop)

    sample_items[0]["service_point"] = {"id": "1000004"}  # the point the label phase would now check
    sample_items[0]["customs"] = {"export_type": "private"}
    sample_items[0]["parcels"] = 2
    sample_items[1]["status"] = "cancelled"  # an order not in flight: still all or nothing
    with pytest.raises(OrderImportError) as refused:
        import_orders(shop=shop, items=sample_items)

    assert refused.value.errors == [
        f"item 0 ({sample_items[0]['order_number']}): its shipping data cannot change now ({reason}), "
        "but the import changes service_point.id, customs.export_type, parcels"
    ]
    assert snapshot(shop) == before


def test_a_reimport_with_the_same_shipping_data_updates_an_order_in_flight(shop: Shop, sample_items: Items) -> None:
    sample_items[0]["service_point"] = {"id": "1000003"}
    import_json(shop, sample_items)
    order = pushed(sample_items[0]["order_number"], shop, "labelling")

    sample_items[0]["customer"]["phone"] = "+31 6 9999 9999"  # not shipping data
    import_orders(shop=shop, items=sample_items)

    order.refresh_from_db()
    assert (order.customer_phone, order.service_point_id) == ("+31 6 9999 9999", "1000003")


@pytest.mark.parametrize("state", ["pushed", "failed"])
def test_an_order_sendcloud_is_done_with_for_now_takes_new_shipping_data(
    shop: Shop, sample_items: Items, state: str
) -> None:
    import_json(shop, sample_items)
    order = pushed(sample_items[0]["order_number"], shop, state)

    sample_items[0]["service_point"] = {"id": "1000004"}  # as set_service_point allows: the next push sends it
    import_orders(shop=shop, items=sample_items)

    order.refresh_from_db()
    assert order.service_point_id == "1000004"


def test_the_import_and_set_service_point_refuse_the_same_orders(shop: Shop, sample_items: Items) -> None:
    """One rule (sendcloud_integration/shipping/locks.py) for both doors, in every state a shipment can be in."""
    from sendcloud_integration.exceptions import ShippingDataLocked
    from sendcloud_integration.models import OrderShipment, ShipmentState
    from sendcloud_integration.shipping.service_points import set_service_point

    sample_items[0]["service_point"] = {"id": "1000003"}
    import_json(shop, sample_items)
    order = pushed(sample_items[0]["order_number"], shop, ShipmentState.QUEUED)
    sample_items[0]["service_point"] = {"id": "1000004"}
    verdicts = {}
    for state in ShipmentState:
        OrderShipment.objects.filter(order=order).update(state=state)
        try:
            with transaction.atomic():
                import_orders(shop=shop, items=sample_items)
                transaction.set_rollback(True)
            by_import = True
        except OrderImportError:
            by_import = False
        try:
            with transaction.atomic():
                set_service_point(order=order, point_id="1000004")
                transaction.set_rollback(True)
            by_door = True
        except ShippingDataLocked:
            by_door = False
        verdicts[str(state)] = (by_import, by_door)

    assert verdicts == {
        "queued": (False, False),
        "pushing": (False, False),
        "pushed": (True, True),
        "label_queued": (False, False),
        "labelling": (False, False),
        "labelled": (False, False),
        "failed": (True, True),
        "cancel_requested": (False, False),
        "cancelled": (True, True),
    }
