"""Bulk-made orders for the demo shop, integration tests and benchmarks.

``make_orders`` writes thousands of orders in a handful of bulk inserts (one per table), with a
deterministic mix of the cases the push must handle: ordinary orders, quotes, unpaid ones, orders
without a shipping address, house numbers left inside the street, orders that Sendcloud would
refuse, orders for a service point (one of them closed) and exports to Switzerland with customs data.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from webshop.models import Order, OrderLine, ShippingAddress, Shop

CITIES = [
    ("NL", "Amsterdam", "1012AB", "Stationsstraat"),
    ("NL", "Utrecht", "3511AB", "Oudegracht"),
    ("BE", "Antwerpen", "2000", "Meir"),
    ("DE", "Berlin", "10115", "Invalidenstraße"),
    ("FR", "Paris", "75001", "Rue de Rivoli"),
]
PRODUCTS = [
    ("TS-RED-M", "T-shirt red M", "19.95", "0.250"),
    ("HOOD-BLK-L", "Hoodie black L", "49.90", "0.700"),
    ("MUG-WHT", "Mug white", "8.50", "0.400"),
    ("CAP-NVY", "Cap navy", "14.99", "0.150"),
]


class Kind(enum.StrEnum):
    NORMAL = "normal"
    QUOTE = "quote"
    UNPAID = "unpaid"
    NO_ADDRESS = "no_address"
    NUMBER_IN_STREET = "number_in_street"
    INVALID = "invalid"  # passes our own pre-check, refused by Sendcloud (a Dutch postal code cut short)
    SERVICE_POINT = "service_point"  # to a sandbox pickup point in Amsterdam; every third one has closed
    EXPORT = "export"  # to Zürich, outside the EU: invoice number, HS codes and origins


@dataclass(frozen=True)
class Mix:
    """How many of every hundred orders are of each kind; the rest are NORMAL."""

    quote: int = 0
    unpaid: int = 0
    no_address: int = 0
    number_in_street: int = 0
    invalid: int = 0
    service_point: int = 0
    export: int = 0

    def kind_for(self, rng: random.Random) -> Kind:
        roll = rng.randrange(100)
        for kind, share in (
            (Kind.QUOTE, self.quote),
            (Kind.UNPAID, self.unpaid),
            (Kind.NO_ADDRESS, self.no_address),
            (Kind.NUMBER_IN_STREET, self.number_in_street),
            (Kind.INVALID, self.invalid),
            (Kind.SERVICE_POINT, self.service_point),
            (Kind.EXPORT, self.export),
        ):
            if roll < share:
                return kind
            roll -= share
        return Kind.NORMAL


DEMO_MIX = Mix(quote=3, unpaid=5, no_address=3, number_in_street=10, invalid=3, service_point=5, export=4)

#: The sandbox's pickup option and points (``sendcloud_sandbox/service_points.py``): 1000005 has closed.
PICKUP_OPTION = "postnl:standard/service_point"
DEMO_POINTS = ("1000001", "1000002", "1000005")
EXPORT_OPTION = "dhl_express:express"
EXPORT_ADDRESS = ("CH", "Zürich", "8001", "Bahnhofstrasse")
#: HS code and country of origin per product of ``PRODUCTS``.
CUSTOMS = {"TS-RED-M": ("610910", "PT"), "HOOD-BLK-L": ("611020", "PT"), "MUG-WHT": ("691200", "NL"),
           "CAP-NVY": ("650500", "CN")}  # fmt: skip


@transaction.atomic
def make_orders(
    shop: Shop,
    count: int,
    *,
    prefix: str = "ORD",
    mix: Mix | None = None,
    seed: int = 1,
    kinds: list[Kind] | None = None,
) -> list[Order]:
    """Create ``count`` orders numbered ``<prefix>-000001``…, after any the shop already has.

    ``kinds`` fixes the kind of each order (cycled); otherwise ``mix`` draws them (all NORMAL by default).
    """
    rng = random.Random(seed)
    start = Order.objects.filter(shop=shop, order_number__startswith=f"{prefix}-").count()
    now = timezone.now()
    plan = [(kinds[n % len(kinds)] if kinds else (mix or Mix()).kind_for(rng), start + n + 1) for n in range(count)]
    orders = Order.objects.bulk_create(
        Order(
            shop=shop,
            order_number=f"{prefix}-{number:06d}",
            type=Order.Type.QUOTE if kind is Kind.QUOTE else Order.Type.CHECKOUT,
            status=Order.Status.PENDING if kind is Kind.UNPAID else Order.Status.PAID,
            payment_status="pending" if kind is Kind.UNPAID else "paid",
            currency="EUR",
            created_at=now - timedelta(minutes=count - n),
            customer_name=f"Customer {number}",
            customer_email=f"customer{number}@example.com",
            customer_phone="+31612345678",
            **_shipping_of(kind, number),
        )
        for n, (kind, number) in enumerate(plan)
    )
    addresses = []
    lines = []
    for order, (kind, number) in zip(orders, plan, strict=True):
        country, city, postal_code, street = (
            EXPORT_ADDRESS if kind is Kind.EXPORT else CITIES[0 if kind in _AMSTERDAM else number % len(CITIES)]
        )
        if kind is not Kind.NO_ADDRESS:
            house_number = str(1 + number % 250)
            addresses.append(
                ShippingAddress(
                    order=order,
                    street=f"{street} {house_number}" if kind is Kind.NUMBER_IN_STREET else street,
                    house_number="" if kind is Kind.NUMBER_IN_STREET else house_number,
                    postal_code="1012" if kind is Kind.INVALID else postal_code,
                    city=city,
                    country=country,
                )
            )
        for position in range(1 + number % 3):
            sku, name, price, weight = PRODUCTS[(number + position) % len(PRODUCTS)]
            lines.append(
                OrderLine(
                    order=order,
                    position=position,
                    sku=sku,
                    name=name,
                    quantity=1 + (number + position) % 3,
                    unit_price=Decimal(price),
                    weight_kg=Decimal(weight),
                    **_customs_of(kind, sku),
                )
            )
    ShippingAddress.objects.bulk_create(addresses)
    OrderLine.objects.bulk_create(lines)
    return orders


#: Kinds shipped to the first city (Amsterdam): the invalid postal code is Dutch, the pickup points are there.
_AMSTERDAM = frozenset({Kind.INVALID, Kind.SERVICE_POINT})


def _shipping_of(kind: Kind, number: int) -> dict[str, str]:
    """The order's shipping method, service point and customs fields for its kind."""
    if kind is Kind.SERVICE_POINT:
        return {"shipping_option_code": PICKUP_OPTION, "service_point_id": DEMO_POINTS[number % len(DEMO_POINTS)]}
    if kind is Kind.EXPORT:
        return {"shipping_option_code": EXPORT_OPTION, "customs_invoice_number": f"INV-{number:06d}"}
    return {}


def _customs_of(kind: Kind, sku: str) -> dict[str, str]:
    if kind is not Kind.EXPORT:
        return {}
    hs_code, origin = CUSTOMS[sku]
    return {"hs_code": hs_code, "origin_country": origin}
