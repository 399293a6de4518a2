"""``POST /shipping-options``: the shipping options an account may use, filtered like Sendcloud filters them.

The body is the spec's ``shipping-option-filter``: origin and destination as ``from_address`` /
``to_address`` objects or the deprecated flat ``from_country_code`` / ``to_country_code`` (never both),
optional ``parcels`` (each option must take every parcel's weight; several parcels need multicollo),
``carrier_code`` and ``shipping_option_code``. Quotes are never calculated (``quotes`` is null).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sendcloud_sandbox.catalogue import matching, render_option
from sendcloud_sandbox.jsonapi import ApiError, error_object
from sendcloud_sandbox.parcels import weight_in_kg
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.web import Response, json_response

NOTHING_FOUND = (
    "We couldn't find any shipping options for this request. Make sure your account has active shipping options "
    "that match the selected filters."
)


def _invalid(detail: str, pointer: str) -> ApiError:
    return ApiError(400, [error_object(400, "invalid", detail, pointer=pointer)])


def _country(body: Mapping[str, Any], side: str) -> str | None:
    """The ``from``/``to`` country, from the address object or the flat field (not both)."""
    address = body.get(f"{side}_address")
    flat = body.get(f"{side}_country_code")
    if address is not None and (flat is not None or body.get(f"{side}_postal_code") is not None):
        raise _invalid(
            f"{side}_address cannot be combined with {side}_country_code or {side}_postal_code.", f"/{side}_address"
        )
    if address is not None:
        if not isinstance(address, Mapping) or not isinstance(address.get("country_code"), str):
            raise _invalid("Field required", f"/{side}_address/country_code")
        flat = address["country_code"]
    if flat is None:
        return None
    if not isinstance(flat, str) or len(flat.strip()) != 2 or not flat.strip().isalpha():
        raise _invalid("Input should be a valid ISO 3166-1 alpha-2 country code", f"/{side}_country_code")
    return flat.strip().upper()


def _weights(body: Mapping[str, Any]) -> list[Decimal]:
    parcels = body.get("parcels")
    if parcels is None:
        return []
    if not isinstance(parcels, list) or not parcels:
        raise _invalid("At least one parcel must be provided.", "/parcels")
    if len(parcels) > 50:
        raise _invalid("List should have at most 50 items", "/parcels")
    weights = []
    for index, parcel in enumerate(parcels):
        weight = weight_in_kg(parcel.get("weight")) if isinstance(parcel, Mapping) else None
        if isinstance(parcel, Mapping) and parcel.get("weight") is None:
            continue
        if weight is None or weight <= 0:
            raise _invalid("Input should be a valid weight", f"/parcels/{index}/weight")
        weights.append(weight)
    return weights


def post_shipping_options(ctx: HandlerContext) -> Response:
    body = ctx.request.json()
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ApiError(400, [error_object(400, "non_field_errors", "Wrong request format, expected an object")])
    from_country = _country(body, "from")
    to_country = _country(body, "to")
    weights = _weights(body)
    carrier = body.get("carrier_code")
    code = body.get("shipping_option_code")
    options = matching(
        from_country=from_country,
        to_country=to_country,
        weights_kg=weights,
        carrier_code=carrier if isinstance(carrier, str) else None,
        shipping_option_code=code if isinstance(code, str) else None,
    )
    data = [render_option(option, from_country, to_country) for option in options]
    return json_response(200, {"data": data, "message": None if data else NOTHING_FOUND})
