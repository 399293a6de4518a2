"""Our ``Order`` → the Sendcloud v3 order JSON of ``POST /v3/orders``, and a local pre-check of it.

Every field name, nesting and type here follows the Order schema of the v3 Orders OpenAPI spec
(``components/schemas/order``). Facts from that spec this module relies on:

* Required: ``order_id``, ``order_number``, ``order_details`` {``integration.id`` (integer), ``status.code``,
  ``order_created_at``, ``order_items``}, ``payment_details`` {``total_price``, ``status.code``}; per item
  ``name``, ``quantity`` (integer), ``total_price``; a shipping address, when sent, needs ``name``,
  ``address_line_1``, ``postal_code``, ``city`` and ``country_code``; ``customer_details`` needs ``name``.
* A price is ``{"value": <number>, "currency": "EUR" | "GBP" | "USD"}``. ``value`` is a JSON *number*, so
  it is kept here as a :class:`~decimal.Decimal` rounded to cents (ROUND_HALF_UP) and written on the wire by
  ``client.encode_json`` as the exact decimal — never via binary float arithmetic.
* A weight is ``{"value": <number > 0>, "unit": "kg"}``; zero weights are therefore left out.
* ``order_details.status.code`` and ``payment_details.status.code`` are free strings ("custom internal shop
  status, you can use it for filtering"): the spec has no enum, so we send our own status names.
* ``country_of_origin`` is exactly two letters; the ``order_id`` used to request labels is at most 64 chars.

The order's shipping option, weight and parcels come from ``shipping_data`` (one set of rules for every
caller): ``shipping_details`` carries the option (``ship_with``) and the total weight; an order in several
parcels is split in the label request (:func:`label_parcels`, the ``parcels`` of ``create-labels-async``).

An order for a pickup point carries ``service_point_details``; one leaving the EU customs and VAT area
(``customs_union.customs_required``) carries ``customs_details`` and, per item, the HS code, country of
origin, value (``unit_price``) and weight that customs need. The pre-check refuses such an order with one
message naming every missing field, and a service point that does not fit the shipping option.

The functions read only what the caller loaded with ``select_related("shipping_address")`` and
``webshop.models.load_lines_and_parcels``: building 100 payloads must not cost 100 extra queries.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from sendcloud_integration.limits import MAX_PARCELS_PER_SHIPMENT
from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from sendcloud_integration.sendcloud.shipping_data import (
    Customs,
    ParcelSpec,
    ServicePoint,
    ShippingData,
    customs,
    shipping_data,
)
from webshop.models import Order, OrderLine, ShippingAddress

CENT: Final = Decimal("0.01")
GRAM: Final = Decimal("0.001")

#: The currencies the v3 price object allows (``components/schemas/price``).
SUPPORTED_CURRENCIES: Final = frozenset({"EUR", "GBP", "USD"})

#: Some carriers refuse house numbers longer than this; the rest goes to ``address_line_2`` (e.g. Belgian
#: "1 bus 200A" → number "1", line 2 "bus 200A").
HOUSE_NUMBER_MAX_LENGTH: Final = 8

#: ``orders[].order_id`` of ``create-labels-async`` has ``maxLength: 64``.
ORDER_ID_MAX_LENGTH: Final = 64

#: ISO 3166-1 alpha-2, the officially assigned codes, plus XK (Kosovo), which carriers use.
_ISO_COUNTRY_CODES: Final = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
    IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
"""
ISO_COUNTRIES: Final = frozenset(_ISO_COUNTRY_CODES.split())

#: Payment status to report when the order carries none, derived from the order's own status.
_PAYMENT_BY_ORDER_STATUS: Final[dict[str, str]] = {
    Order.Status.PAID: "paid",
    Order.Status.PAYMENT_RECEIVED: "paid",
    Order.Status.COMPLETED: "paid",
    Order.Status.REFUNDING: "refunding",
    Order.Status.REFUNDED: "refunded",
    Order.Status.CANCELLED: "cancelled",
    Order.Status.FAILED: "failed",
    Order.Status.PENDING: "pending",
    Order.Status.ON_HOLD: "pending",
}


# --------------------------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------------------------


def sendcloud_order_id(order: Order) -> str:
    """The order's external id at Sendcloud: ``SENDCLOUD_ORDER_ID_PREFIX`` + our primary key.

    Sendcloud upserts on ``order_id`` + integration and refuses to change an ``order_id`` later, so it must be
    stable and immutable: the primary key is, the order number (editable in the shop) is not. The prefix
    exists because test, staging and live databases all count primary keys from 1: when they talk to the
    same Sendcloud account, order 17 of a test run would silently overwrite live order 17 (the "test ids
    poison live ones" problem peers ran into). Give each environment its own prefix; leave it empty in live.
    """
    prefix: str = getattr(settings, "SENDCLOUD_ORDER_ID_PREFIX", "") or ""
    return f"{prefix}{order.pk}"


# --------------------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------------------


def money(value: Decimal | int | str) -> Decimal:
    """Round to cents, half up (19.955 → 19.96): shops with 4-decimal prices must not send 4 decimals."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def weight_kg(value: Decimal | int | str) -> Decimal:
    """Round a weight in kg to grams, half up."""
    return Decimal(value).quantize(GRAM, rounding=ROUND_HALF_UP)


def price(value: Decimal, currency: str) -> dict[str, Any]:
    """A v3 price object. ``value`` stays a Decimal; the client writes it as an exact JSON number."""
    return {"value": money(value), "currency": currency}


# --------------------------------------------------------------------------------------------------------------
# House numbers
# --------------------------------------------------------------------------------------------------------------

# A house number: 12, 12a, 12-14, 12/3; optionally a short word after it ("12 a", "12 bis", "14 III",
# "1-3 hs"); optionally a Belgian box ("1 bus 3").
_NUMBER = r"\d+[^\W_]*(?:\s?[-/]\s?\d+[^\W_]*)?"
_LETTER_SUFFIX = r"(?:\s(?:[^\W\d_]{1,3})(?![^\W_]))?"
_BOX = r"(?:\s*,?\s*(?:bus|box|bte\.?|boîte)\s*[^\W_][\w/-]*)?"
# "Stationsstraat 12a": the street is the shortest text that has a letter and is followed by a number at the end.
_TRAILING = re.compile(rf"^(?P<street>.*?[^\W\d_].*?)[\s,]+(?P<number>{_NUMBER}{_LETTER_SUFFIX}{_BOX})$", re.IGNORECASE)
# "12 Main Street", "221B Baker Street". A trailing "e" is left out on purpose: "2e Hugo de Grootstraat" is
# a Dutch street name (2nd), not number 2e; likewise "1st Avenue" does not match (letters must end there).
_LEADING = re.compile(r"^(?P<number>\d+(?:[^\W\d_eE](?![^\W_]))?(?:\s?[-/]\s?\d+)?)[\s,]+(?P<street>[^\W\d_].*)$")
# For shortening a long number: its first number (or range) and what follows it.
_HEAD = re.compile(r"^(?P<head>\d+[^\W_]*(?:\s?[-/]\s?\d+[^\W_]*)?)[\s,]+(?P<rest>\S.*)$")


def split_house_number(street: str) -> tuple[str, str]:
    """Split ``"Stationsstraat 12a"`` into ``("Stationsstraat", "12a")``; ``("…", "")`` when none is found.

    Used only when the order has no separate house number: several carriers (DHL in DE, ES, CH, …) refuse a
    label without one. Handles numbers after the street (most of Europe) and before it ("12 Main Street").
    Only whitespace and a separating comma are dropped: the split never loses other characters.
    """
    text = street.strip()
    match = _TRAILING.match(text) or _LEADING.match(text)
    if not match:
        return text, ""
    return match.group("street").strip(" ,"), match.group("number").strip()


def address_lines(street: str, house_number: str, address_line_2: str) -> tuple[str, str, str]:
    """``(address_line_1, house_number, address_line_2)`` as Sendcloud should get them.

    The house number is split off the street when missing, and a number longer than
    :data:`HOUSE_NUMBER_MAX_LENGTH` keeps only its leading number there; the rest ("bus 200A") moves to
    the front of ``address_line_2``, where carriers print it instead of refusing the label.
    """
    line_1 = street.strip()
    number = house_number.strip()
    line_2 = address_line_2.strip()
    if not number:
        line_1, number = split_house_number(line_1)
    if len(number) > HOUSE_NUMBER_MAX_LENGTH:
        match = _HEAD.match(number)
        if match and len(match.group("head")) <= HOUSE_NUMBER_MAX_LENGTH:
            number = match.group("head")
            line_2 = ", ".join(part for part in (match.group("rest").strip(), line_2) if part)
    return line_1, number, line_2


# --------------------------------------------------------------------------------------------------------------
# The payload
# --------------------------------------------------------------------------------------------------------------


def _iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2018-02-27T10:00:00.556Z`` (the spec's own examples)."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)  # USE_TZ is on; a naive value can only be UTC
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shipping_address_of(order: Order) -> ShippingAddress | None:
    """The order's shipping address, or None (no query when the caller used select_related)."""
    return _shipping_address(order)


def _shipping_address(order: Order) -> ShippingAddress | None:
    """The select_related address, or None — without a query when the caller used select_related."""
    try:
        return order.shipping_address
    except ObjectDoesNotExist:
        return None


def _lines(order: Order) -> list[OrderLine]:
    return order.line_list()  # served from the prefetch


def _status_message(code: str) -> str:
    return code.replace("_", " ").capitalize()


def payment_status_code(order: Order) -> str:
    """The order's payment status, or one derived from its order status when the shop sent none."""
    explicit = (order.payment_status or "").strip().lower()
    return explicit or _PAYMENT_BY_ORDER_STATUS.get(order.status, "unknown")


def _order_item(line: OrderLine, currency: str) -> dict[str, Any]:
    quantity = int(line.quantity)
    item: dict[str, Any] = {
        "item_id": str(line.pk),  # lets a later multicollo label request name this line
        "name": line.name,
        "quantity": quantity,
        "unit_price": price(line.unit_price, currency),
        # The line total from the exact unit price (0.3333 x 3 = 1.00), not from the rounded one (0.99).
        "total_price": price(line.unit_price * quantity, currency),
    }
    if line.sku:
        item["sku"] = line.sku
    unit_weight = weight_kg(line.weight_kg)
    if unit_weight > 0:  # the spec's weight is exclusiveMinimum 0: a zero weight is refused, so leave it out
        item["measurement"] = {"weight": {"value": unit_weight, "unit": "kg"}}
    if line.hs_code:
        item["hs_code"] = hs_code(line.hs_code)
    if line.origin_country:
        item["country_of_origin"] = line.origin_country.strip().upper()
    return item


def build_order(
    order: Order, integration: SendcloudIntegration, *, shipping: ShippingData | None = None
) -> dict[str, Any]:
    """The v3 order object for ``POST /v3/orders`` (one element of its array). Issues no queries.

    ``shipping`` is the order's :func:`shipping_data`, when the caller has it already (the pre-check's).
    """
    currency = (order.currency or "").strip().upper()
    lines = _lines(order)
    line_total = sum((line.unit_price * int(line.quantity) for line in lines), Decimal("0"))
    if shipping is None:
        shipping = shipping_data(order, integration)
    total_weight = shipping.weight_kg
    payment_code = payment_status_code(order)

    payload: dict[str, Any] = {
        "order_id": sendcloud_order_id(order),
        "order_number": order.order_number,
        "order_details": {
            "integration": {"id": int(integration.integration_id)},
            "status": {"code": str(order.status), "message": order.get_status_display()},
            "order_created_at": _iso_utc(order.created_at),
            "order_updated_at": _iso_utc(order.updated_at or order.created_at),
            "order_items": [_order_item(line, currency) for line in lines],
        },
        "payment_details": {
            "total_price": price(line_total, currency),
            "status": {"code": payment_code, "message": _status_message(payment_code)},
        },
        "customer_details": _customer_details(order),
    }

    address = _shipping_address(order)
    if address is not None:
        payload["shipping_address"] = _address(order, address)

    shipping_details: dict[str, Any] = {}
    measurement: dict[str, Any] = {}
    if total_weight > 0:
        measurement["weight"] = {"value": total_weight, "unit": "kg"}
    dimensions = shipping.parcels[0].dimensions if not shipping.is_multicollo else None
    if dimensions is not None:  # one box of known size: the order's measurement (numbers, per the orders spec)
        measurement["dimension"] = {
            "length": dimensions[0],
            "width": dimensions[1],
            "height": dimensions[2],
            "unit": "cm",
        }
    if measurement:
        shipping_details["measurement"] = measurement
    if shipping.option_code:
        shipping_details["ship_with"] = ship_with(shipping.option_code)
    if shipping_details:
        payload["shipping_details"] = shipping_details
    if shipping.service_point is not None:
        payload["service_point_details"] = service_point_details(shipping.service_point)
    declared = customs(order, integration)
    if declared is not None:
        payload["customs_details"] = customs_details(declared, address.country if address is not None else "")
    return payload


def hs_code(value: str) -> str:
    """An HS code as customs read it: its digits (``"6109.10 00"`` → ``"61091000"``)."""
    return re.sub(r"[\s.]", "", value)


#: An HS code: the 6 digits of the Harmonized System, optionally followed by national digits (up to 10).
HS_CODE = re.compile(r"^\d{6}(?:\d{2}){0,2}$")


def service_point_details(point: ServicePoint) -> dict[str, Any]:
    """The ``service_point_details`` of the orders spec: by Sendcloud's id, else by the carrier's.

    The spec's ``oneOf`` accepts exactly one of ``id`` and ``carrier_service_point_id`` (an object with
    both matches both branches and is refused), so Sendcloud's id wins when the order has it.
    """
    details: dict[str, Any] = (
        {"id": point.sendcloud_id} if point.sendcloud_id else {"carrier_service_point_id": point.carrier_id}
    )
    if point.post_number:
        details["post_number"] = point.post_number
    return details


# Tax-number prefixes that are not ISO 3166-1 country codes: Greek VAT numbers start with EL, and Northern
# Ireland's VAT and EORI numbers (the Windsor Framework's) with XI; Sendcloud's ``country_code`` is the ISO code.
TAX_PREFIX_COUNTRIES = {"EL": "GR", "XI": "GB"}


def _tax_number(name: str, value: str, country: str) -> dict[str, Any]:
    """A ``tax_numbers`` entry; its country is the number's own prefix (``NL…``) when it has one.

    The prefix is read as an ISO country code, with the two tax prefixes that are not (EL, XI) mapped to
    theirs; a number without a letter prefix takes ``country`` (the sender's or the destination's).
    """
    prefix = value[:2].upper()
    if not prefix.isalpha():
        return {"name": name, "country_code": country or None, "value": value}
    return {"name": name, "country_code": TAX_PREFIX_COUNTRIES.get(prefix, prefix), "value": value}


def customs_details(declared: Customs, destination_country: str) -> dict[str, Any]:
    """The ``customs_details`` of the orders spec; tax numbers only where the shop or the order gave them."""
    from_country = str(getattr(settings, "SENDCLOUD_SHIPPING_FROM_COUNTRY", "") or "")
    details: dict[str, Any] = {}
    if declared.invoice_number:
        details["commercial_invoice_number"] = declared.invoice_number
    if declared.shipment_type:
        details["shipment_type"] = declared.shipment_type
    if declared.export_type:
        details["export_type"] = declared.export_type
    sender = [
        _tax_number(name, value, from_country)
        for name, value in (("EORI", declared.sender_eori), ("VAT", declared.sender_vat))
        if value
    ]
    receiver = [
        _tax_number(name, value, destination_country.strip().upper())
        for name, value in (("EORI", declared.receiver_eori), ("VAT", declared.receiver_vat))
        if value
    ]
    if sender or receiver:
        details["tax_numbers"] = {
            **({"sender": sender} if sender else {}),
            **({"receiver": receiver} if receiver else {}),
        }
    return details


def ship_with(code: str) -> dict[str, Any]:
    """The v3 ``ship-with`` object for a shipping option code (the same shape in orders and label requests)."""
    return {"type": "shipping_option_code", "properties": {"shipping_option_code": code}}


def _text_number(value: Decimal, places: str) -> str:
    """A decimal as the string the ship-an-order spec wants for weights and sizes (``"1.320"``)."""
    return str(Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def label_parcels(data: ShippingData) -> list[dict[str, Any]] | None:
    """The ``parcels`` of an order in a ``create-labels-async`` request; None for a one-parcel order.

    One ``CreateLabelParcel`` per parcel: its ``parcel_items`` (item ids are the ``item_id`` values of
    :func:`build_order`), and its weight and dimensions when known, as strings (``str-weight``,
    ``str-dimensions`` of spec v3/ship-an-order). A one-parcel order sends none: Sendcloud then makes one
    parcel from the whole order, with the order's weight.
    """
    if not data.is_multicollo:
        return None
    return [_label_parcel(parcel) for parcel in data.parcels]


def _label_parcel(parcel: ParcelSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "parcel_items": [{"item_id": str(item.line.pk), "quantity": item.quantity} for item in parcel.items]
    }
    if parcel.weight_kg > 0:
        body["weight"] = {"value": _text_number(parcel.weight_kg, "0.001"), "unit": "kg"}
    if parcel.dimensions is not None:
        length, width, height = (_text_number(d, "0.1") for d in parcel.dimensions)
        body["dimensions"] = {"length": length, "width": width, "height": height, "unit": "cm"}
    return body


def _customer_details(order: Order) -> dict[str, Any]:
    details: dict[str, Any] = {"name": order.customer_name.strip()}
    if order.customer_phone:
        details["phone_number"] = order.customer_phone.strip()
    if order.customer_email:
        details["email"] = order.customer_email.strip()
    return details


def _address(order: Order, address: ShippingAddress) -> dict[str, Any]:
    line_1, number, line_2 = address_lines(address.street, address.house_number, address.address_line_2)
    fields: dict[str, Any] = {
        "name": order.customer_name.strip(),
        "company_name": order.customer_company.strip(),
        "address_line_1": line_1,
        "house_number": number,
        "address_line_2": line_2,
        "postal_code": address.postal_code.strip(),
        "city": address.city.strip(),
        "country_code": address.country.strip().upper(),
        "state_province_code": address.state.strip(),
        "phone_number": order.customer_phone.strip(),
        "email": order.customer_email.strip(),
    }
    # Optional fields are left out rather than sent empty: an empty email fails the spec's "format: email".
    required = {"name", "address_line_1", "postal_code", "city", "country_code"}
    return {key: value for key, value in fields.items() if value or key in required}


# --------------------------------------------------------------------------------------------------------------
# The pre-check
# --------------------------------------------------------------------------------------------------------------


def precheck(
    order: Order,
    *,
    integration: SendcloudIntegration | None = None,
    options: dict[str, ShippingOption] | None = None,
    shipping: ShippingData | None = None,
) -> list[str]:
    """What Sendcloud would refuse, said so a shop employee can fix it. Empty means: send it.

    One invalid order rejects a whole batch of 100 at Sendcloud, so catching these locally keeps the good
    orders moving and gives a clearer message than a JSON pointer. Issues no queries: ``options`` is the
    integration's shipping-method catalogue by code, loaded once per chunk by the caller (see
    :func:`shipping_problems`).
    """
    problems: list[str] = []
    if not order.order_number.strip():
        problems.append("Order number is missing.")
    if not order.customer_name.strip():
        problems.append("Customer name is missing.")
    if order.customer_email:
        try:
            validate_email(order.customer_email.strip())
        except ValidationError:
            problems.append(f"Customer email '{order.customer_email}' is not a valid email address.")
    currency = (order.currency or "").strip().upper()
    if currency not in SUPPORTED_CURRENCIES:
        problems.append(
            f"Currency '{order.currency}' is not supported by Sendcloud (it accepts EUR, GBP and USD only)."
        )
    order_id = sendcloud_order_id(order)
    if len(order_id) > ORDER_ID_MAX_LENGTH:
        problems.append(
            f"The Sendcloud order id '{order_id}' is longer than {ORDER_ID_MAX_LENGTH} characters; "
            "shorten SENDCLOUD_ORDER_ID_PREFIX."
        )

    address = _shipping_address(order)
    if address is None:
        problems.append("Order has no shipping address.")
    else:
        problems.extend(_address_problems(address))

    lines = _lines(order)
    if not lines:
        problems.append("Order has no lines to ship.")
    for number, line in enumerate(lines, start=1):
        label = f"Line {number} ({line.name.strip()})" if line.name.strip() else f"Line {number}"
        if not line.name.strip():
            problems.append(f"{label} has no product name.")
        if int(line.quantity) <= 0:
            problems.append(f"{label} has quantity {line.quantity}.")
        if line.weight_kg is not None and line.weight_kg < 0:
            problems.append(f"{label} has a negative weight.")
        origin = line.origin_country.strip().upper()
        if origin and origin not in ISO_COUNTRIES:
            problems.append(
                f"{label} has country of origin '{line.origin_country}', which is not a valid ISO 3166-1 alpha-2 code."
            )
    country = address.country.strip().upper() if address is not None else ""
    declared = customs(order, integration) if country in ISO_COUNTRIES else None  # else: the address is wrong
    if declared is not None:
        missing = customs_problems(declared, lines)
        if missing:
            problems.append(f"Customs data is incomplete for a parcel to {declared.destination}: {'; '.join(missing)}.")
    if shipping is None:
        shipping = shipping_data(order, integration)
    problems.extend(shipping_problems(shipping, country, integration, options))
    return problems


def line_label(number: int, line: OrderLine) -> str:
    """``line 2 (SKU-7)``: the line's position, and its SKU (else its name) to find it by."""
    name = line.sku.strip() or line.name.strip()
    return f"line {number} ({name})" if name else f"line {number}"


def customs_problems(declared: Customs, lines: list[OrderLine]) -> list[str]:
    """Every field customs need that this order lacks, each named (``HS code missing on line 2 (SKU-7)``).

    Needed for every parcel leaving the area: an invoice number, the shipment and export type, and per
    line an HS code (6, 8 or 10 digits), a country of origin, a value and a weight above zero. A commercial
    export also needs the shop's EORI number, and a B2B one the receiver's VAT or EORI number.
    """
    missing: list[str] = []
    if not declared.invoice_number:
        missing.append("invoice number missing")
    if not declared.shipment_type:
        missing.append("shipment type missing")
    if not declared.export_type:
        missing.append("export type missing")
    elif declared.export_type != "private" and not declared.sender_eori:
        missing.append("the shop's EORI number missing (needed for a commercial export)")
    if declared.export_type == "commercial_b2b" and not (declared.receiver_vat or declared.receiver_eori):
        missing.append("the receiver's VAT or EORI number missing (needed for a B2B export)")
    for number, line in enumerate(lines, start=1):
        where = line_label(number, line)
        code = hs_code(line.hs_code)
        if not code:
            missing.append(f"HS code missing on {where}")
        elif not HS_CODE.match(code):
            missing.append(f"HS code '{line.hs_code.strip()}' on {where} is not 6, 8 or 10 digits")
        if not line.origin_country.strip():
            missing.append(f"country of origin missing on {where}")
        if line.unit_price is None or money(line.unit_price) <= 0:
            missing.append(f"value missing on {where}")
        if line.weight_kg is None or weight_kg(line.weight_kg) <= 0:
            missing.append(f"weight missing on {where}")
    return missing


def _kg(value: Decimal) -> str:
    return f"{value:.3f} kg"


def shipping_problems(
    data: ShippingData,
    country: str,
    integration: SendcloudIntegration | None,
    options: dict[str, ShippingOption] | None,
) -> list[str]:
    """The order's parcels, and its shipping option against the catalogue: what Sendcloud would refuse.

    The option is judged only when the catalogue knows something: a code is refused as unknown only once
    a sync has read the account's options, and a destination only when the sync asked about that country.
    A catalogue never synced refuses nothing (Sendcloud then decides).
    """
    problems: list[str] = []
    if data.parcel_count > MAX_PARCELS_PER_SHIPMENT:
        problems.append(
            f"The order has {data.parcel_count} parcels; Sendcloud ships at most {MAX_PARCELS_PER_SHIPMENT} "
            "in one shipment."
        )
    if data.is_multicollo:
        for parcel in data.parcels:
            if parcel.weight_kg <= 0:
                problems.append(
                    f"Parcel {parcel.number} has no weight: the order's weight ({_kg(data.weight_kg)}) is used up "
                    "by the other parcels' weights. Give the order or this parcel a weight."
                )
    if not data.option_code or integration is None or options is None:
        return problems
    option = options.get(data.option_code)
    if option is None:
        if integration.shipping_options_synced_at is not None:
            problems.append(
                f"Shipping method '{data.option_code}' is not one of this Sendcloud account's shipping methods."
            )
        return problems
    problems.extend(message for _, message in option_problems(data, country, integration, option))
    return problems


def _address_problems(address: ShippingAddress) -> list[str]:
    problems = []
    if not address.street.strip():
        problems.append("Shipping address has no street.")
    if not address.postal_code.strip():
        problems.append("Shipping address has no postal code.")
    if not address.city.strip():
        problems.append("Shipping address has no city.")
    country = address.country.strip().upper()
    if not country:
        problems.append("Shipping address has no country.")
    elif country not in ISO_COUNTRIES:
        problems.append(f"Country '{address.country}' is not a valid ISO 3166-1 alpha-2 code.")
    return problems


def option_problems(
    data: ShippingData, country: str, integration: SendcloudIntegration, option: ShippingOption
) -> list[tuple[str, str]]:
    """Why this option cannot ship this order, each with what to change: ``shipping_method_id``, ``weight``,
    ``no_parcels`` (the field names of ``update-order``, which refuses with these too) or ``service_point``
    (a service-point method without a point, or a point with a home-delivery method)."""
    label = f"Shipping method '{option.name or option.code}' ({option.code})"
    if not option.is_available:
        return [("shipping_method_id", f"{label} is no longer offered by Sendcloud for this account.")]
    problems: list[tuple[str, str]] = []
    if option.service_point and data.service_point is None:
        problems.append(("service_point", f"{label} delivers to a service point, but the order has none chosen."))
    if not option.service_point and data.service_point is not None:
        problems.append(
            (
                "service_point",
                f"The order has a service point chosen, but {label} delivers to the address; "
                "choose a service-point method or remove the point.",
            )
        )
    if country and country in (integration.shipping_options_countries or []) and not option.serves(country):
        problems.append(("shipping_method_id", f"{label} does not ship to {country}."))
    if data.is_multicollo and not option.multicollo:
        problems.append(
            ("no_parcels", f"{label} cannot ship an order in several parcels (this one has {data.parcel_count}).")
        )
    for parcel in data.parcels:
        weight = parcel.weight_kg
        if weight > 0 and not option.takes(weight):
            what = f"Parcel {parcel.number} weighs" if data.is_multicollo else "The order weighs"
            low = _kg(option.min_weight_kg) if option.min_weight_kg is not None else "any weight"
            high = _kg(option.max_weight_kg) if option.max_weight_kg is not None else "any weight"
            problems.append(("weight", f"{what} {_kg(weight)}, but {label} takes {low} to {high} per parcel."))
    return problems
