"""Deriving parcel contents (weight, dimensions, items) from an order.

Sendcloud makes one parcel from the whole order unless the label request splits it into multicollo
parcels. The sandbox mirrors that so shipment responses carry believable weights and items; nothing
here is stored on its own, ``state.py`` attaches the result to a shipment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sendcloud_sandbox.jsonapi import JsonDict

_KG_PER_UNIT = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lbs": Decimal("0.45359237"),
    "oz": Decimal("0.028349523125"),
}
DEFAULT_WEIGHT_KG = Decimal(1)


@dataclass(frozen=True)
class ParcelContents:
    """What one parcel holds, already in response shape."""

    weight: JsonDict
    dimensions: JsonDict | None
    items: list[JsonDict]


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _quantity(value: Any) -> int:
    """A quantity from JSON; anything unreadable counts as one unit."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def weight_in_kg(weight: Any) -> Decimal | None:
    """A ``{value, unit}`` weight in kilograms, or None when unreadable."""
    if not isinstance(weight, Mapping):
        return None
    value = _decimal(weight.get("value"))
    factor = _KG_PER_UNIT.get(str(weight.get("unit", "kg")).lower())
    if value is None or factor is None:
        return None
    return value * factor


def _weight_json(kilograms: Decimal) -> JsonDict:
    return {"value": f"{kilograms:.3f}", "unit": "kg"}


def _measurement_weight(node: Any) -> Decimal | None:
    measurement = node.get("measurement") if isinstance(node, Mapping) else None
    return weight_in_kg(measurement.get("weight")) if isinstance(measurement, Mapping) else None


def _order_items(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = order.get("order_details")
    items = details.get("order_items") if isinstance(details, Mapping) else None
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _item_json(item: Mapping[str, Any], index: int, quantity: int) -> JsonDict:
    """An order item as a parcel item of the shipments API."""
    price = item.get("unit_price") or item.get("total_price") or {}
    unit_weight = _measurement_weight(item) or Decimal(0)
    amount = _decimal(price.get("value")) if isinstance(price, Mapping) else None
    return {
        "item_id": str(item.get("item_id") or index + 1),
        "description": str(item.get("name", "")),
        "quantity": quantity,
        "weight": _weight_json(unit_weight),
        "price": {
            "value": f"{amount or Decimal(0):.2f}",
            "currency": price.get("currency", "EUR") if isinstance(price, Mapping) else "EUR",
        },
        "hs_code": str(item.get("hs_code") or ""),
        "origin_country": item.get("country_of_origin"),
        "sku": item.get("sku"),
        "product_id": item.get("product_id"),
        "properties": item.get("properties") or {},
    }


def single_parcel(order: Mapping[str, Any]) -> ParcelContents:
    """The whole order in one parcel (no multicollo split requested)."""
    items = _order_items(order)
    weight = _measurement_weight(order.get("shipping_details"))
    if weight is None:
        item_weights = [(_measurement_weight(item) or Decimal(0)) * _quantity(item.get("quantity")) for item in items]
        weight = sum(item_weights, Decimal(0)) or DEFAULT_WEIGHT_KG
    shipping = order.get("shipping_details")
    measurement = shipping.get("measurement") if isinstance(shipping, Mapping) else None
    dimensions = measurement.get("dimension") if isinstance(measurement, Mapping) else None
    return ParcelContents(
        weight=_weight_json(weight),
        dimensions=dict(dimensions) if isinstance(dimensions, Mapping) else None,
        items=[_item_json(item, i, _quantity(item.get("quantity"))) for i, item in enumerate(items)],
    )


def multicollo_parcels(order: Mapping[str, Any], specs: Sequence[Mapping[str, Any]]) -> list[ParcelContents]:
    """One parcel per requested split; items are matched to the order's items by ``item_id``."""
    items = _order_items(order)
    by_id = {str(item.get("item_id")): (i, item) for i, item in enumerate(items) if item.get("item_id")}
    parcels = []
    for spec in specs:
        chosen: list[JsonDict] = []
        for entry in spec.get("parcel_items") or []:
            if not isinstance(entry, Mapping):
                continue
            found = by_id.get(str(entry.get("item_id")))
            if found is not None:
                index, item = found
                chosen.append(_item_json(item, index, _quantity(entry.get("quantity"))))
        weight = weight_in_kg(spec.get("weight")) or DEFAULT_WEIGHT_KG
        dimensions = spec.get("dimensions")
        parcels.append(
            ParcelContents(
                weight=_weight_json(weight),
                dimensions=dict(dimensions) if isinstance(dimensions, Mapping) else None,
                items=chosen,
            )
        )
    return parcels
