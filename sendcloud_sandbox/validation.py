"""Request-body validation for the v3 Orders and Ship-an-Order endpoints.

Sendcloud validates an order batch as a whole: every problem in every order is reported at once, one
JSON:API error per problem, and ``source.pointer`` names the order's index (``/data/attributes/[3]/
shipping_address/city``) so a client can isolate bad orders and resubmit the rest. Messages follow
the pydantic wording the real API uses ("Field required", "Input should be a valid string", ...).

Pure functions: they read the parsed JSON body and return error objects; they never touch state.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sendcloud_sandbox.jsonapi import JsonDict, error_object

MAX_ORDERS_PER_BATCH = 100
MAX_LABEL_ORDERS = 20
MAX_PARCELS_PER_ORDER = 50
MONEY_DECIMALS = 2

FIELD_REQUIRED = "Field required"
NOT_A_STRING = "Input should be a valid string"
NOT_AN_INTEGER = "Input should be a valid integer"
NOT_A_NUMBER = "Input should be a valid number"
NOT_AN_OBJECT = "Input should be a valid dictionary"
NOT_A_LIST = "Input should be a valid list"
NOT_A_BOOLEAN = "Input should be a valid boolean"
EMPTY_STRING = "String should have at least 1 character"
WRONG_FORMAT = "Wrong request format, expected list of objects"

ADDRESS_REQUIRED = ("name", "address_line_1", "postal_code", "city", "country_code")
ADDRESS_OPTIONAL_STRINGS = (
    "company_name",
    "house_number",
    "address_line_2",
    "state_province_code",
    "email",
    "phone_number",
)
_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")
_NL_POSTAL_CODE = re.compile(r"^[1-9][0-9]{3} ?[A-Za-z]{2}$")
_MISSING = object()


def _choices(values: Collection[str]) -> str:
    """Pydantic's enum wording: ``'EUR', 'GBP' or 'USD'``."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


class _Collector:
    """Accumulates 400 errors; small helpers keep the per-field rules one line each."""

    def __init__(self) -> None:
        self.errors: list[JsonDict] = []

    def add(self, pointer: str, detail: str, code: str = "invalid") -> None:
        self.errors.append(error_object(400, code, detail, pointer=pointer))

    def obj(self, value: Any, pointer: str, *, required: bool = True) -> Mapping[str, Any] | None:
        """A JSON object, or None after reporting why not."""
        if value is _MISSING or value is None:
            if required:
                self.add(pointer, FIELD_REQUIRED)
            return None
        if not isinstance(value, Mapping):
            self.add(pointer, NOT_AN_OBJECT)
            return None
        return value

    def string(self, parent: Mapping[str, Any], key: str, pointer: str, *, required: bool = True) -> str | None:
        """A non-empty string field (or an absent optional one)."""
        value = parent.get(key, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                self.add(f"{pointer}/{key}", FIELD_REQUIRED)
            return None
        if not isinstance(value, str):
            self.add(f"{pointer}/{key}", NOT_A_STRING)
            return None
        if required and not value.strip():
            self.add(f"{pointer}/{key}", EMPTY_STRING)
            return None
        return value

    def integer(self, parent: Mapping[str, Any], key: str, pointer: str, *, required: bool = True) -> int | None:
        """An integer field; booleans are not integers."""
        value = parent.get(key, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                self.add(f"{pointer}/{key}", FIELD_REQUIRED)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(f"{pointer}/{key}", NOT_AN_INTEGER)
            return None
        return int(value)

    def money(self, value: Any, pointer: str, currencies: Collection[str], *, required: bool = True) -> None:
        """A price object ``{value, currency}``: a number with at most two decimals and a known currency."""
        price = self.obj(value, pointer, required=required)
        if price is None:
            return
        amount = price.get("value", _MISSING)
        if amount is _MISSING or amount is None:
            self.add(f"{pointer}/value", FIELD_REQUIRED)
        elif isinstance(amount, bool) or not isinstance(amount, int | float | str):
            self.add(f"{pointer}/value", NOT_A_NUMBER)
        else:
            self._decimal_places(amount, f"{pointer}/value")
        currency = price.get("currency", _MISSING)
        if currency is _MISSING or currency is None:
            self.add(f"{pointer}/currency", FIELD_REQUIRED)
        elif not isinstance(currency, str):
            self.add(f"{pointer}/currency", NOT_A_STRING)
        elif currency not in currencies:
            self.add(f"{pointer}/currency", f"Input should be {_choices(currencies)}", code="invalid_choice")

    def _decimal_places(self, amount: int | float | str, pointer: str) -> None:
        try:
            number = Decimal(str(amount).strip())
        except InvalidOperation:
            self.add(pointer, NOT_A_NUMBER)
            return
        if not number.is_finite():
            self.add(pointer, "Input should be a finite number")
            return
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MONEY_DECIMALS:
            self.add(pointer, f"Decimal input should have no more than {MONEY_DECIMALS} decimal places")

    def status(self, parent: Mapping[str, Any], pointer: str) -> None:
        """A ``status`` object with a non-empty ``code``."""
        status = self.obj(parent.get("status", _MISSING), f"{pointer}/status")
        if status is not None:
            self.string(status, "code", f"{pointer}/status")
            self.string(status, "message", f"{pointer}/status", required=False)

    def datetime(self, parent: Mapping[str, Any], key: str, pointer: str, *, required: bool = True) -> None:
        """An ISO 8601 date-time string."""
        text = self.string(parent, key, pointer, required=required)
        if text is None:
            return
        try:
            datetime.fromisoformat(text)
        except ValueError:
            self.add(f"{pointer}/{key}", "Input should be a valid datetime")

    def address(self, value: Any, pointer: str) -> None:
        """A shipping or billing address, when present."""
        address = self.obj(value, pointer, required=False)
        if address is None:
            return
        for key in ADDRESS_REQUIRED:
            self.string(address, key, pointer)
        for key in ADDRESS_OPTIONAL_STRINGS:
            self.string(address, key, pointer, required=False)
        country = address.get("country_code")
        if isinstance(country, str) and country.strip() and not _COUNTRY_CODE.match(country):
            self.add(f"{pointer}/country_code", "Input should be a valid ISO 3166-1 alpha-2 country code")
        postal_code = address.get("postal_code")
        if (
            isinstance(country, str)
            and country.upper() == "NL"
            and isinstance(postal_code, str)
            and postal_code.strip()
            and not _NL_POSTAL_CODE.match(postal_code.strip())
        ):
            # Sendcloud checks postal codes per country; the Netherlands' format stands in for them all.
            self.add(f"{pointer}/postal_code", "Enter a valid Dutch postal code, for example 1234 AB.")


def validate_order_batch(body: Any, *, integration_ids: Collection[int], currencies: Collection[str]) -> list[JsonDict]:
    """All errors of a ``POST /orders`` body; empty when every order may be stored."""
    if not isinstance(body, list):
        return [error_object(400, "non_field_errors", WRONG_FORMAT, title="Wrong format")]
    if len(body) > MAX_ORDERS_PER_BATCH:
        detail = f"Orders list should have at most {MAX_ORDERS_PER_BATCH} items, not {len(body)}"
        return [error_object(400, "invalid", detail, pointer="/data/attributes/")]
    if not body:
        detail = "Orders list should have at least 1 item, not 0"
        return [error_object(400, "invalid", detail, pointer="/data/attributes/")]
    check = _Collector()
    for index, order in enumerate(body):
        _validate_order(check, order, f"/data/attributes/[{index}]", integration_ids, currencies)
    return check.errors


def _validate_order(
    check: _Collector, raw: Any, pointer: str, integration_ids: Collection[int], currencies: Collection[str]
) -> None:
    """Every rule of one order of a batch."""
    if not isinstance(raw, Mapping):
        check.add(pointer, NOT_AN_OBJECT)
        return
    if "id" in raw and raw["id"] is not None and not isinstance(raw["id"], str):
        check.add(f"{pointer}/id", NOT_A_STRING)
    check.string(raw, "order_id", pointer)
    check.string(raw, "order_number", pointer)

    details = check.obj(raw.get("order_details", _MISSING), f"{pointer}/order_details")
    if details is not None:
        base = f"{pointer}/order_details"
        integration = check.obj(details.get("integration", _MISSING), f"{base}/integration")
        if integration is not None:
            integration_id = check.integer(integration, "id", f"{base}/integration")
            if integration_id is not None and integration_id not in integration_ids:
                check.add(f"{base}/integration/id", f"Integration with id {integration_id} does not exist")
        check.status(details, base)
        check.datetime(details, "order_created_at", base)
        check.datetime(details, "order_updated_at", base, required=False)
        _validate_items(check, details.get("order_items", _MISSING), f"{base}/order_items", currencies)

    payment = check.obj(raw.get("payment_details", _MISSING), f"{pointer}/payment_details")
    if payment is not None:
        base = f"{pointer}/payment_details"
        check.money(payment.get("total_price", _MISSING), f"{base}/total_price", currencies)
        check.status(payment, base)
        for key in ("subtotal_price", "estimated_shipping_price", "estimated_tax_price"):
            check.money(payment.get(key), f"{base}/{key}", currencies, required=False)

    check.address(raw.get("shipping_address"), f"{pointer}/shipping_address")
    check.address(raw.get("billing_address"), f"{pointer}/billing_address")
    _validate_shipping_details(check, raw.get("shipping_details"), f"{pointer}/shipping_details")
    _validate_service_point(check, raw.get("service_point_details"), f"{pointer}/service_point_details")
    _validate_customs(check, raw.get("customs_details"), f"{pointer}/customs_details")


#: The enums of ``customs_details`` (spec v3/orders).
SHIPMENT_TYPES = ("gift", "commercial_goods", "commercial_sample", "returned_goods")
EXPORT_TYPES = ("private", "commercial_b2c", "commercial_b2b")


def _validate_service_point(check: _Collector, value: Any, pointer: str) -> None:
    """``service_point_details``: exactly one of ``id`` and ``carrier_service_point_id`` (the spec's oneOf)."""
    point = check.obj(value, pointer, required=False)
    if point is None:
        return
    given = [key for key in ("id", "carrier_service_point_id") if key in point]
    if len(given) != 1:
        check.add(pointer, "Provide exactly one of id and carrier_service_point_id")
    for key in (*given, "post_number"):
        check.string(point, key, pointer, required=False)


def _validate_customs(check: _Collector, value: Any, pointer: str) -> None:
    """``customs_details`` (nullable): the shipment and export types from their enums."""
    customs = check.obj(value, pointer, required=False)
    if customs is None:
        return
    for key, choices in (("shipment_type", SHIPMENT_TYPES), ("export_type", EXPORT_TYPES)):
        chosen = customs.get(key)
        if chosen is not None and chosen not in choices:
            check.add(f"{pointer}/{key}", f"Input should be {_choices(choices)}", code="invalid_choice")
    check.string(customs, "commercial_invoice_number", pointer, required=False)


def _validate_items(check: _Collector, value: Any, pointer: str, currencies: Collection[str]) -> None:
    """``order_items``: each with a name, a positive integer quantity and a total price.

    Item indexes in pointers carry no brackets (``order_items/0/quantity``), as in the v3 spec.
    """
    if value is _MISSING or value is None:
        check.add(pointer, FIELD_REQUIRED)
        return
    if not isinstance(value, list):
        check.add(pointer, NOT_A_LIST)
        return
    for index, item in enumerate(value):
        item_pointer = f"{pointer}/{index}"
        if not isinstance(item, Mapping):
            check.add(item_pointer, NOT_AN_OBJECT)
            continue
        check.string(item, "name", item_pointer)
        quantity = check.integer(item, "quantity", item_pointer)
        if quantity is not None and quantity <= 0:
            check.add(f"{item_pointer}/quantity", "Input should be greater than 0")
        check.money(item.get("total_price", _MISSING), f"{item_pointer}/total_price", currencies)
        check.money(item.get("unit_price"), f"{item_pointer}/unit_price", currencies, required=False)
        check.string(item, "item_id", item_pointer, required=False)
        country = item.get("country_of_origin")
        if country is not None and not (isinstance(country, str) and _COUNTRY_CODE.match(country)):
            check.add(f"{item_pointer}/country_of_origin", "String should have 2 characters")


def _validate_shipping_details(check: _Collector, value: Any, pointer: str) -> None:
    """``shipping_details.ship_with``, when given, must name a shipping option code."""
    details = check.obj(value, pointer, required=False)
    if details is None:
        return
    ship_with = details.get("ship_with")
    if ship_with is not None:
        _validate_ship_with(check, ship_with, f"{pointer}/ship_with")


def _validate_ship_with(check: _Collector, value: Any, pointer: str) -> None:
    ship_with = check.obj(value, pointer)
    if ship_with is None:
        return
    kind = check.string(ship_with, "type", pointer)
    if kind is not None and kind != "shipping_option_code":
        check.add(f"{pointer}/type", "Input should be 'shipping_option_code'", code="invalid_choice")
    properties = check.obj(ship_with.get("properties", _MISSING), f"{pointer}/properties")
    if properties is not None:
        check.string(properties, "shipping_option_code", f"{pointer}/properties")
        check.integer(properties, "contract_id", f"{pointer}/properties", required=False)


@dataclass(frozen=True)
class OrderSelector:
    """One entry of ``create-labels-async``'s ``orders``: which order, and optional parcels."""

    order_id: str | None
    order_number: str | None
    parcels: list[Mapping[str, Any]] | None


@dataclass(frozen=True)
class LabelRequest:
    """A checked ``create-labels-async`` body."""

    integration_id: int
    orders: list[OrderSelector]
    sender_address_id: int | None
    ship_with: Mapping[str, Any] | None


def parse_label_request(body: Any, *, integration_ids: Collection[int]) -> tuple[LabelRequest | None, list[JsonDict]]:
    """Check a ``create-labels-async`` body: the request, or the errors that reject it whole."""
    if not isinstance(body, Mapping):
        return None, [error_object(400, "non_field_errors", "Wrong request format, expected an object")]
    check = _Collector()
    base = "/data/attributes"
    integration_id = check.integer(body, "integration_id", base)
    if integration_id is not None and integration_id not in integration_ids:
        check.add(f"{base}/integration_id", f"Integration with id {integration_id} does not exist")
    sender_address_id = check.integer(body, "sender_address_id", base, required=False)
    check.integer(body, "brand_id", base, required=False)
    ship_with = body.get("ship_with")
    if ship_with is not None:
        _validate_ship_with(check, ship_with, f"{base}/ship_with")
    selectors = _parse_selectors(check, body.get("orders", _MISSING), f"{base}/orders")
    if check.errors or integration_id is None or selectors is None:
        return None, check.errors
    request = LabelRequest(
        integration_id=integration_id,
        orders=selectors,
        sender_address_id=sender_address_id,
        ship_with=ship_with if isinstance(ship_with, Mapping) else None,
    )
    return request, []


def _parse_selectors(check: _Collector, value: Any, pointer: str) -> list[OrderSelector] | None:
    """The 1..20 order selectors; request-level pointers use bare indexes (``orders/0/order_id``)."""
    if value is _MISSING or value is None:
        check.add(pointer, FIELD_REQUIRED)
        return None
    if not isinstance(value, list):
        check.add(pointer, NOT_A_LIST)
        return None
    if not value:
        check.add(pointer, "List should have at least 1 item after validation, not 0")
        return None
    if len(value) > MAX_LABEL_ORDERS:
        check.add(pointer, f"List should have at most {MAX_LABEL_ORDERS} items after validation, not {len(value)}")
        return None
    selectors: list[OrderSelector] = []
    for index, entry in enumerate(value):
        entry_pointer = f"{pointer}/{index}"
        if not isinstance(entry, Mapping):
            check.add(entry_pointer, NOT_AN_OBJECT)
            continue
        order_id = check.string(entry, "order_id", entry_pointer, required=False)
        order_number = check.string(entry, "order_number", entry_pointer, required=False)
        if entry.get("order_id") is None and entry.get("order_number") is None:
            check.add(f"{entry_pointer}/order_number", FIELD_REQUIRED)
        rules = entry.get("apply_shipping_rules")
        if rules is not None and not isinstance(rules, bool):
            check.add(f"{entry_pointer}/apply_shipping_rules", NOT_A_BOOLEAN)
        parcels = _parse_parcels(check, entry.get("parcels"), f"{entry_pointer}/parcels")
        selectors.append(OrderSelector(order_id=order_id, order_number=order_number, parcels=parcels))
    return selectors


def _parse_parcels(check: _Collector, value: Any, pointer: str) -> list[Mapping[str, Any]] | None:
    """Optional multicollo parcels: 1..50 objects."""
    if value is None:
        return None
    if not isinstance(value, list):
        check.add(pointer, NOT_A_LIST)
        return None
    if not 1 <= len(value) <= MAX_PARCELS_PER_ORDER:
        check.add(pointer, f"List should have between 1 and {MAX_PARCELS_PER_ORDER} items, not {len(value)}")
        return None
    parcels: list[Mapping[str, Any]] = []
    for index, parcel in enumerate(value):
        if not isinstance(parcel, Mapping):
            check.add(f"{pointer}/{index}", NOT_AN_OBJECT)
            continue
        _check_parcel(check, parcel, f"{pointer}/{index}")
        parcels.append(parcel)
    return parcels


def _check_parcel(check: _Collector, parcel: Mapping[str, Any], pointer: str) -> None:
    """A ``CreateLabelParcel``: its ``parcel_items`` (required), and a weight and dimensions when given."""
    items = parcel.get("parcel_items", _MISSING)
    if items is _MISSING or items is None:
        check.add(f"{pointer}/parcel_items", FIELD_REQUIRED)
    elif not isinstance(items, list):
        check.add(f"{pointer}/parcel_items", NOT_A_LIST)
    else:
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                check.add(f"{pointer}/parcel_items/{index}", NOT_AN_OBJECT)
                continue
            check.string(item, "item_id", f"{pointer}/parcel_items/{index}")
            quantity = check.integer(item, "quantity", f"{pointer}/parcel_items/{index}")
            if quantity is not None and quantity < 1:
                check.add(f"{pointer}/parcel_items/{index}/quantity", "Input should be greater than or equal to 1")
    weight = check.obj(parcel.get("weight"), f"{pointer}/weight", required=False)
    if weight is not None:
        value = weight.get("value")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            check.add(f"{pointer}/weight/value", NOT_A_STRING)
        else:
            check.string(weight, "unit", f"{pointer}/weight")
    dimensions = check.obj(parcel.get("dimensions"), f"{pointer}/dimensions", required=False)
    if dimensions is not None:
        for key in ("length", "width", "height", "unit"):
            if dimensions.get(key) is None:
                check.add(f"{pointer}/dimensions/{key}", FIELD_REQUIRED)


def has_valid_shipping_address(order_payload: Mapping[str, Any]) -> bool:
    """Whether a stored order can be shipped: a shipping address with every required field."""
    address = order_payload.get("shipping_address")
    if not isinstance(address, Mapping):
        return False
    return all(isinstance(address.get(key), str) and address[key].strip() for key in ADDRESS_REQUIRED)
