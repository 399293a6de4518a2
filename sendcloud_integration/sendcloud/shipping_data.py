"""How one order ships: its shipping option, its weight and its parcels, decided once for every caller.

The order payload (``payloads.build_order``), the local pre-check, the label request's multicollo
``parcels`` and the answers of ``update-order`` and the admin all read :func:`shipping_data`, so they can
never disagree. The rules:

* **Option**: the order's own ``shipping_option_code``, else the integration's default; "" when neither is
  set (Sendcloud's defaults and shipping rules then decide).
* **Weight**: the order's explicit ``weight_kg`` wins; else, when every parcel has a weight, their sum;
  else the sum of the lines (unit weight x quantity).
* **Parcels**: the order's ``OrderParcel`` rows, or one parcel when it has none. A parcel with its own
  weight keeps it; the others share what the order's weight leaves, evenly, to the gram (the last one
  takes the rounding remainder, so the parcels always add up to the order).
* **Service point**: the order's chosen pickup point (Sendcloud's id and/or the carrier's), or None for
  delivery to the address.
* **Items per parcel** (multicollo only): the order's units are dealt round-robin over the parcels, line
  after line, so every unit is in exactly one parcel (Sendcloud requires ``parcel_items`` per parcel).

Reads only what the caller prefetched (``webshop.models.load_lines_and_parcels``): no queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Final

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud.customs_union import customs_required
from webshop.models import Order, OrderLine, OrderParcel, ShippingAddress

GRAM: Final = Decimal("0.001")


@dataclass(frozen=True)
class ParcelItem:
    line: OrderLine
    quantity: int


@dataclass(frozen=True)
class ParcelSpec:
    """One parcel as it will be announced: its weight (0 when unknown) and size, and what it holds."""

    number: int
    weight_kg: Decimal
    dimensions: tuple[Decimal, Decimal, Decimal] | None = None
    items: list[ParcelItem] = field(default_factory=list)
    weight_given: bool = False


@dataclass(frozen=True)
class ServicePoint:
    """The pickup point an order is delivered to: Sendcloud's id, the carrier's id, a locker's post number."""

    sendcloud_id: str
    carrier_id: str
    post_number: str


@dataclass(frozen=True)
class ShippingData:
    option_code: str
    #: True when the option is the order's own choice rather than the shop's default.
    option_chosen: bool
    weight_kg: Decimal
    parcels: list[ParcelSpec]
    service_point: ServicePoint | None = None

    @property
    def parcel_count(self) -> int:
        return len(self.parcels)

    @property
    def is_multicollo(self) -> bool:
        return len(self.parcels) > 1


def grams(value: Decimal) -> Decimal:
    return value.quantize(GRAM, rounding=ROUND_HALF_UP)


def option_code(order: Order, integration: SendcloudIntegration | None) -> str:
    """The order's shipping option, falling back to the shop's default (no queries)."""
    own = (order.shipping_option_code or "").strip()
    if own:
        return own
    return (integration.shipping_option_code or "").strip() if integration is not None else ""


def lines_weight(lines: list[OrderLine]) -> Decimal:
    return grams(sum((line.weight_kg * int(line.quantity) for line in lines), Decimal(0)))


def shipping_data(order: Order, integration: SendcloudIntegration | None) -> ShippingData:
    lines: list[OrderLine] = order.line_list()
    stored: list[OrderParcel] = order.parcel_list()
    known = [p.weight_kg for p in stored if p.weight_kg is not None]
    if order.weight_kg is not None:
        total = grams(order.weight_kg)
    elif stored and len(known) == len(stored):
        total = grams(sum(known, Decimal(0)))
    else:
        total = lines_weight(lines)

    count = max(1, len(stored))
    weights = _share_weights(total, [p.weight_kg for p in stored] if stored else [None])
    items = _deal_items(lines, count)
    parcels = [
        ParcelSpec(
            number=index + 1,
            weight_kg=weights[index],
            dimensions=stored[index].dimensions if stored else None,
            items=items[index],
            weight_given=bool(stored) and stored[index].weight_kg is not None,
        )
        for index in range(count)
    ]
    own = bool((order.shipping_option_code or "").strip())
    return ShippingData(
        option_code=option_code(order, integration),
        option_chosen=own,
        weight_kg=total,
        parcels=parcels,
        service_point=service_point(order),
    )


def service_point(order: Order) -> ServicePoint | None:
    """The order's service point, or None when it is delivered to its address."""
    if not order.has_service_point:
        return None
    return ServicePoint(
        sendcloud_id=order.service_point_id.strip(),
        carrier_id=order.service_point_carrier_id.strip(),
        post_number=order.service_point_post_number.strip(),
    )


def _share_weights(total: Decimal, given: list[Decimal | None]) -> list[Decimal]:
    """Each parcel's weight: its own, or an even share of what the order's weight leaves (never negative)."""
    fixed = sum((grams(w) for w in given if w is not None), Decimal(0))
    unknown = [i for i, w in enumerate(given) if w is None]
    left = max(Decimal(0), total - fixed)
    share = (left / len(unknown)).quantize(GRAM, rounding=ROUND_DOWN) if unknown else Decimal(0)
    weights = [grams(w) if w is not None else share for w in given]
    if unknown:
        weights[unknown[-1]] = left - share * (len(unknown) - 1)
    return weights


def _deal_items(lines: list[OrderLine], count: int) -> list[list[ParcelItem]]:
    """Deal the order's units round-robin over ``count`` parcels, line after line."""
    if count == 1:  # the common case: one parcel holds every unit (the loop below gives the same)
        return [[ParcelItem(line=line, quantity=int(line.quantity)) for line in lines if int(line.quantity) > 0]]
    dealt: list[dict[int, int]] = [{} for _ in range(count)]
    slot = 0
    by_pk = {line.pk: line for line in lines}
    for line in lines:
        for _ in range(int(line.quantity)):
            dealt[slot][line.pk] = dealt[slot].get(line.pk, 0) + 1
            slot = (slot + 1) % count
    return [[ParcelItem(line=by_pk[pk], quantity=qty) for pk, qty in parcel.items()] for parcel in dealt]


@dataclass(frozen=True)
class Customs:
    """What customs need of an order leaving the EU customs and VAT area, with the shop's defaults applied.

    ``destination`` names where it goes (for messages). Types are the order's own, else the integration's
    defaults; the sender's tax numbers are the shop's.
    """

    destination: str
    invoice_number: str
    shipment_type: str
    export_type: str
    sender_eori: str
    sender_vat: str
    receiver_eori: str
    receiver_vat: str


def customs(order: Order, integration: SendcloudIntegration | None) -> Customs | None:
    """The order's customs data, or None when its address needs none (or it has no address). No queries
    beyond the caller's ``select_related("shipping_address")``."""
    try:
        address: ShippingAddress | None = order.shipping_address
    except ShippingAddress.DoesNotExist:
        address = None
    if address is None:
        return None
    destination = customs_required(address.country, address.postal_code)
    if destination is None:
        return None
    return Customs(
        destination=destination,
        invoice_number=order.customs_invoice_number.strip(),
        shipment_type=order.customs_shipment_type or (integration.customs_shipment_type if integration else ""),
        export_type=order.customs_export_type or (integration.customs_export_type if integration else ""),
        sender_eori=(integration.sender_eori_number.strip() if integration else ""),
        sender_vat=(integration.sender_vat_number.strip() if integration else ""),
        receiver_eori=order.receiver_eori_number.strip(),
        receiver_vat=order.receiver_vat_number.strip(),
    )
