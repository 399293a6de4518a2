"""``GET /service-points`` and ``POST /service-points/{id}/check-availability`` (spec v3/service-points).

The search follows the spec's rules: ``country_code`` is required; exactly one carrier scope
(``carrier_code``, repeatable, or ``use_integration_carriers``); at most one kind of reference point
(coordinates, or an address: the sandbox geocodes a postal code, see ``service_points.geocode``);
``radius`` (100 to 50000 m) and ``limit`` (1 to 200, default 100). A broken rule is a 400 in the v3 error
shape naming the ``parameter``. The integration's carriers are the sandbox's PostNL, DHL and DPD.
"""

from __future__ import annotations

from sendcloud_sandbox.jsonapi import ApiError, JsonDict
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.service_points import BY_ID, geocode, search
from sendcloud_sandbox.web import Response, json_response

INTEGRATION_CARRIERS = ("postnl", "dhl", "dpd")
SERVICE_POINT_NOT_FOUND = "The service point could not be found"
DEFAULT_LIMIT, MAX_LIMIT = 100, 200
MIN_RADIUS, MAX_RADIUS = 100, 50_000
_ADDRESS_PARAMS = ("address_street", "address_house_number", "address_postal_code", "address_city")


def _invalid(parameter: str, detail: str) -> ApiError:
    return ApiError.single(400, "invalid", detail, parameter=parameter)


def _float(ctx: HandlerContext, name: str) -> float | None:
    raw = ctx.request.param(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise _invalid(name, "A valid number is required.") from None


def _bounded_int(ctx: HandlerContext, name: str, low: int, high: int) -> int | None:
    raw = ctx.request.param(name)
    if raw is None:
        return None
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise _invalid(name, f"Ensure this value is an integer from {low} to {high}.")
    return int(raw)


def _carriers(ctx: HandlerContext) -> tuple[str, ...]:
    codes = [code for code in ctx.request.query.get("carrier_code", []) if code]
    use_integration = (ctx.request.param("use_integration_carriers") or "").lower() == "true"
    if bool(codes) == use_integration:
        raise _invalid("carrier_code", "Exactly one of carrier_code and use_integration_carriers must be provided.")
    return tuple(codes) if codes else INTEGRATION_CARRIERS


def _reference(ctx: HandlerContext, country: str) -> tuple[tuple[float, float] | None, JsonDict | None]:
    """The reference point and the ``geocoding`` object (null for coordinates)."""
    latitude, longitude = _float(ctx, "latitude"), _float(ctx, "longitude")
    address = ctx.request.param("address")
    structured = {name: ctx.request.param(name) for name in _ADDRESS_PARAMS if ctx.request.param(name)}
    given = sum(1 for kind in (latitude is not None or longitude is not None, bool(address), bool(structured)) if kind)
    if given > 1:
        raise _invalid("address", "address, the address_* parameters and latitude/longitude are mutually exclusive.")
    if latitude is not None or longitude is not None:
        if latitude is None or longitude is None:
            raise _invalid("latitude", "latitude and longitude must be provided together.")
        return (latitude, longitude), None
    postal = structured.get("address_postal_code") or (address or "")
    if not postal:
        return None, None
    found = geocode(country, postal)
    if found is None:
        return None, {"status": "not_found", "precision": None, "formatted_address": None}
    return found, {"status": "matched", "precision": "postal_code", "formatted_address": f"{postal}, {country}"}


def list_service_points(ctx: HandlerContext) -> Response:
    """The points of a country for the carriers asked, nearest the reference first."""
    country = (ctx.request.param("country_code") or "").upper()
    if not country:
        raise ApiError.single(400, "required", "This field is required.", parameter="country_code")
    if len(country) != 2:
        raise _invalid("country_code", "Ensure this field has no more than 2 characters.")
    carriers = _carriers(ctx)
    radius = _bounded_int(ctx, "radius", MIN_RADIUS, MAX_RADIUS)
    limit = _bounded_int(ctx, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    reference, geocoding = _reference(ctx, country)
    if geocoding is not None and geocoding["status"] == "not_found":
        return json_response(200, {"data": {"results": [], "geocoding": geocoding}})
    results = search(
        country=country,
        carriers=carriers,
        reference=reference,
        radius=radius,
        carrier_point_ids=[value for value in ctx.request.query.get("carrier_service_point_id", []) if value],
        limit=limit,
        since_start=ctx.state.service_points_age(ctx.now()),
    )
    return json_response(200, {"data": {"results": results, "geocoding": geocoding}})


def check_availability(ctx: HandlerContext) -> Response:
    """``{"data": {"is_available": …}}``; 404 in the spec's words for a point it does not know."""
    raw = ctx.params["id"]
    point = BY_ID.get(int(raw)) if raw.isdigit() else None
    if point is None:
        raise ApiError.single(404, "not_found", SERVICE_POINT_NOT_FOUND)
    available = point.is_open(ctx.state.service_points_age(ctx.now()))
    return json_response(200, {"data": {"is_available": available}})
