"""The sandbox's shipping options: a small, realistic catalogue of carrier services with their reach.

Sendcloud names a shipping option by code (``postnl:standard``) and offers it from some countries to
others, for parcels within a weight range, in one parcel or several (multicollo). ``POST /shipping-options``
lists them with those filters, and ``create-labels-async`` refuses an order whose chosen option does not
serve its destination or its weight, the way Sendcloud does. Every option ships from the Netherlands (the
sandbox account's sender address).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sendcloud_sandbox.jsonapi import JsonDict

EU = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
WORLD = EU | frozenset({"GB", "CH", "NO", "US", "CA", "AU", "JP"})
FROM_COUNTRIES = frozenset({"NL"})


@dataclass(frozen=True)
class CatalogueOption:
    code: str
    name: str
    carrier_code: str
    carrier_name: str
    product_name: str
    min_kg: Decimal
    max_kg: Decimal
    countries: frozenset[str]
    multicollo: bool
    signature: bool = False
    max_dimensions_cm: tuple[str, str, str] = ("175.00", "78.00", "58.00")
    #: ``functionalities.last_mile``: ``service_point`` options need the order's service point.
    last_mile: str = "home_delivery"

    @property
    def needs_service_point(self) -> bool:
        return self.last_mile == "service_point"

    def serves(self, from_country: str, to_country: str) -> bool:
        return from_country.upper() in FROM_COUNTRIES and to_country.upper() in self.countries

    def takes(self, weight_kg: Decimal) -> bool:
        return self.min_kg <= weight_kg <= self.max_kg


OPTIONS: tuple[CatalogueOption, ...] = (
    CatalogueOption(
        "postnl:standard", "PostNL Standard", "postnl", "PostNL", "PostNL Standard", Decimal("0.001"),
        Decimal("23.000"), EU, multicollo=True,
    ),
    CatalogueOption(
        "postnl:standard/signature", "PostNL Standard + Signature", "postnl", "PostNL", "PostNL Standard",
        Decimal("0.001"), Decimal("23.000"), frozenset({"NL", "BE"}), multicollo=True, signature=True,
    ),
    CatalogueOption(
        "postnl:mailbox", "PostNL Mailbox Parcel", "postnl", "PostNL", "PostNL Mailbox Parcel", Decimal("0.001"),
        Decimal("2.000"), frozenset({"NL"}), multicollo=False, max_dimensions_cm=("38.00", "26.50", "3.20"),
    ),
    CatalogueOption(
        "dhl:standard", "DHL Parcel Standard", "dhl", "DHL", "DHL Parcel Standard", Decimal("0.001"),
        Decimal("31.500"), frozenset({"NL", "BE", "LU", "DE"}), multicollo=True,
    ),
    CatalogueOption(
        "dpd:home", "DPD Home", "dpd", "DPD", "DPD Home", Decimal("0.001"), Decimal("31.500"),
        frozenset({"NL", "BE", "LU", "DE", "FR", "AT"}), multicollo=True,
    ),
    CatalogueOption(
        "dhl_express:express", "DHL Express Worldwide", "dhl_express", "DHL Express", "DHL Express Worldwide",
        Decimal("0.001"), Decimal("70.000"), WORLD, multicollo=True, signature=True,
    ),
    CatalogueOption(
        "ups:standard", "UPS Standard", "ups", "UPS", "UPS Standard", Decimal("0.001"), Decimal("70.000"),
        EU | frozenset({"GB", "CH", "NO"}), multicollo=True,
    ),
    CatalogueOption(
        "postnl:standard/service_point", "PostNL Pick-up Point", "postnl", "PostNL", "PostNL Standard",
        Decimal("0.001"), Decimal("23.000"), frozenset({"NL", "BE"}), multicollo=False, last_mile="service_point",
    ),
    CatalogueOption(
        "dhl:standard/service_point", "DHL Parcel ServicePoint", "dhl", "DHL", "DHL Parcel Standard",
        Decimal("0.001"), Decimal("20.000"), frozenset({"NL", "BE", "DE"}), multicollo=False,
        last_mile="service_point",
    ),
)  # fmt: skip
BY_CODE = {option.code: option for option in OPTIONS}


def _weight(value: Decimal) -> JsonDict:
    return {"value": f"{value:.3f}", "unit": "kg"}


def render_option(option: CatalogueOption, from_country: str | None, to_country: str | None) -> JsonDict:
    """An option in the shape of the spec's ``shipping-option`` (quotes are not calculated)."""
    international = bool(from_country and to_country and from_country.upper() != to_country.upper())
    outside_eu = bool(to_country and to_country.upper() not in EU)
    length, width, height = option.max_dimensions_cm
    return {
        "code": option.code,
        "name": option.name,
        "carrier": {"code": option.carrier_code, "name": option.carrier_name},
        "product": {"code": option.code.split("/")[0], "name": option.product_name},
        "functionalities": {
            "multicollo": option.multicollo,
            "signature": option.signature,
            "last_mile": option.last_mile,
            "first_mile": "pickup_dropoff",
            "service_area": "international" if international else "domestic",
            "tracked": True,
            "b2b": True,
            "b2c": True,
        },
        "contract": {"id": 60, "client_id": "", "carrier_code": option.carrier_code, "name": f"{option.carrier_name}"},
        "weight": {"min": _weight(option.min_kg), "max": _weight(option.max_kg)},
        "max_dimensions": {"length": length, "width": width, "height": height, "unit": "cm"},
        "requirements": {
            "fields": [],
            "export_documents": outside_eu,
            "is_service_point_required": option.needs_service_point,
        },
        "charging_type": "label_creation",
        "quotes": None,
    }


def matching(
    *,
    from_country: str | None,
    to_country: str | None,
    weights_kg: Iterable[Decimal] = (),
    carrier_code: str | None = None,
    shipping_option_code: str | None = None,
    multicollo: bool | None = None,
) -> list[CatalogueOption]:
    """The options that fit every given filter; a filter left out filters nothing."""
    weights = list(weights_kg)
    found = []
    for option in OPTIONS:
        if from_country and from_country.upper() not in FROM_COUNTRIES:
            continue
        if to_country and to_country.upper() not in option.countries:
            continue
        if carrier_code and option.carrier_code != carrier_code:
            continue
        if shipping_option_code and option.code != shipping_option_code:
            continue
        if any(not option.takes(weight) for weight in weights):
            continue
        if (multicollo or len(weights) > 1) and not option.multicollo:
            continue
        found.append(option)
    return found


def refusal(code: str, *, from_country: str, to_country: str, weights_kg: list[Decimal]) -> str | None:
    """Why a label cannot be made with this option for this shipment, in Sendcloud's manner; None when it can."""
    option = BY_CODE.get(code)
    if option is None:
        return f"The shipping option '{code}' is not available for this account."
    if not option.serves(from_country, to_country):
        return f"The shipping option '{code}' is not available for shipments from {from_country} to {to_country}."
    if len(weights_kg) > 1 and not option.multicollo:
        return f"The shipping option '{code}' does not support multicollo shipments."
    for weight in weights_kg:
        if not option.takes(weight):
            return (
                f"The parcel weight {weight:.3f} kg is outside the weight range of shipping option '{code}' "
                f"({option.min_kg:.3f}-{option.max_kg:.3f} kg)."
            )
    return None


def option_code_of(ship_with: Any) -> str | None:
    """The code of a ``ship_with`` object, when it names one."""
    if not isinstance(ship_with, dict):
        return None
    properties = ship_with.get("properties")
    code = properties.get("shipping_option_code") if isinstance(properties, dict) else None
    return code if isinstance(code, str) and code else None
