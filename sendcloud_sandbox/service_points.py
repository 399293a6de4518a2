"""The sandbox's service points: a fixed set per country, some of which close, and where customs begin.

Each point has Sendcloud's fields (spec v3/service-points, ``ServicePoint``). Most are always open; one
per country is closed from the start ("closed for renovation") and one closes a while after the sandbox
first answered about service points (``closes_after`` seconds), so a point chosen at checkout can be
gone by the time its label is requested, as Sendcloud warns. A closed point is still listed by a
search (Sendcloud: "search results may still include service points that are no longer available"),
with ``is_open_tomorrow`` false; only ``check-availability`` tells.

A postal code is "geocoded" to the points sharing the longest prefix with it (at least its first
character); the sandbox knows no other places.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sendcloud_sandbox.catalogue import EU
from sendcloud_sandbox.jsonapi import JsonDict

_HOURS = [{"start_time": "09:00", "end_time": "18:00"}]
_WEEK: JsonDict = {
    "monday": _HOURS,
    "tuesday": _HOURS,
    "wednesday": _HOURS,
    "thursday": _HOURS,
    "friday": _HOURS,
    "saturday": [{"start_time": "10:00", "end_time": "16:00"}],
    "sunday": None,
}
_CLOSED_WEEK: JsonDict = dict.fromkeys(_WEEK)
_CARRIER_NAMES = {"postnl": "PostNL", "dhl": "DHL", "dpd": "DPD", "ups": "UPS"}


@dataclass(frozen=True)
class SandboxPoint:
    id: int
    name: str
    carrier: str
    carrier_point_id: str
    shop_type: str
    street: str
    house_number: str
    postal_code: str
    city: str
    country: str
    latitude: float
    longitude: float
    #: None: always open; 0: closed from the start; n: closes n seconds after the sandbox's first answer.
    closes_after: float | None = None

    def is_open(self, since_start: float) -> bool:
        return self.closes_after is None or since_start < self.closes_after


#: The service points, by Sendcloud id. Ids 1000001… as in the spec's examples.
POINTS: tuple[SandboxPoint, ...] = (
    SandboxPoint(
        1000001,
        "Primera Stationsplein",
        "postnl",
        "NL-219873",
        "servicepoint",
        "Stationsplein",
        "12",
        "1012 AB",
        "Amsterdam",
        "NL",
        52.3786,
        4.9003,
    ),
    SandboxPoint(
        1000002,
        "Albert Heijn Damrak",
        "postnl",
        "NL-219874",
        "servicepoint",
        "Damrak",
        "80",
        "1012 LP",
        "Amsterdam",
        "NL",
        52.3745,
        4.8960,
    ),
    SandboxPoint(
        1000003,
        "PostNL Pakketautomaat Centraal",
        "postnl",
        "NL-PA-0031",
        "locker",
        "Prins Hendrikkade",
        "1",
        "1012 JD",
        "Amsterdam",
        "NL",
        52.3773,
        4.8985,
    ),
    SandboxPoint(
        1000004,
        "DHL ServicePoint Bloemenwinkel",
        "dhl",
        "NL-DHL-5521",
        "servicepoint",
        "Haarlemmerstraat",
        "44",
        "1013 ER",
        "Amsterdam",
        "NL",
        52.3812,
        4.8890,
    ),
    SandboxPoint(
        1000005,
        "Tabakszaak De Pijp (closed for renovation)",
        "postnl",
        "NL-219880",
        "servicepoint",
        "Albert Cuypstraat",
        "120",
        "1072 CZ",
        "Amsterdam",
        "NL",
        52.3557,
        4.8950,
        closes_after=0,
    ),
    SandboxPoint(
        1000006,
        "Boekhandel Oost (closing soon)",
        "postnl",
        "NL-219881",
        "servicepoint",
        "Javastraat",
        "55",
        "1094 HB",
        "Amsterdam",
        "NL",
        52.3630,
        4.9390,
        closes_after=300,
    ),
    SandboxPoint(
        1000007,
        "Eindhoven Stadhuisplein Parcel Shop",
        "dhl",
        "NL-00001",
        "servicepoint",
        "Stadhuisplein",
        "1",
        "5611 EM",
        "Eindhoven",
        "NL",
        51.4380,
        5.4785,
    ),
    SandboxPoint(
        1000101,
        "Bpost Point Grote Markt",
        "dpd",
        "BE-DPD-1001",
        "servicepoint",
        "Grote Markt",
        "3",
        "1000",
        "Brussel",
        "BE",
        50.8467,
        4.3525,
    ),
    SandboxPoint(
        1000102,
        "Colruyt Antwerpen Centrum",
        "postnl",
        "BE-219001",
        "servicepoint",
        "Meir",
        "78",
        "2000",
        "Antwerpen",
        "BE",
        51.2180,
        4.4100,
    ),
    SandboxPoint(
        1000103,
        "Krantenwinkel Zuid (closed)",
        "postnl",
        "BE-219002",
        "servicepoint",
        "Zuidstraat",
        "9",
        "2000",
        "Antwerpen",
        "BE",
        51.2120,
        4.3990,
        closes_after=0,
    ),
    SandboxPoint(
        1000201,
        "DHL Packstation 123",
        "dhl",
        "DE-PS-123",
        "locker",
        "Alexanderplatz",
        "5",
        "10178",
        "Berlin",
        "DE",
        52.5219,
        13.4132,
    ),
    SandboxPoint(
        1000202,
        "DHL Paketshop Kiosk Mitte",
        "dhl",
        "DE-PSH-4410",
        "servicepoint",
        "Torstrasse",
        "101",
        "10119",
        "Berlin",
        "DE",
        52.5290,
        13.4010,
    ),
    SandboxPoint(
        1000203,
        "DPD Pickup Späti (closed)",
        "dpd",
        "DE-DPD-7781",
        "servicepoint",
        "Kastanienallee",
        "12",
        "10435",
        "Berlin",
        "DE",
        52.5380,
        13.4100,
        closes_after=0,
    ),
    SandboxPoint(
        1000301,
        "Relais Colis Tabac du Marais",
        "dpd",
        "FR-DPD-3301",
        "servicepoint",
        "Rue de Rivoli",
        "24",
        "75004",
        "Paris",
        "FR",
        48.8556,
        2.3570,
    ),
    SandboxPoint(
        1000302,
        "Pickup Station Gare de Lyon",
        "dpd",
        "FR-DPD-3302",
        "locker",
        "Place Louis-Armand",
        "1",
        "75012",
        "Paris",
        "FR",
        48.8443,
        2.3743,
    ),
)
BY_ID = {point.id: point for point in POINTS}


def render_point(point: SandboxPoint, *, since_start: float, distance: int | None) -> JsonDict:
    """A point in the spec's ``ServicePoint`` shape (a search result: ``distance`` included)."""
    open_now = point.is_open(since_start)
    return {
        "id": point.id,
        "name": point.name,
        "carrier": {
            "code": point.carrier,
            "name": _CARRIER_NAMES.get(point.carrier, point.carrier),
            "logo_url": None,
            "icon_url": None,
        },
        "carrier_service_point_id": point.carrier_point_id,
        "carrier_shop_type": "packStation" if point.shop_type == "locker" else "parcelShop",
        "general_shop_type": point.shop_type,
        "address": {
            "street": point.street,
            "house_number": point.house_number,
            "postal_code": point.postal_code,
            "city": point.city,
            "country_code": point.country,
        },
        "position": {"latitude": point.latitude, "longitude": point.longitude},
        "contact": {"email": "", "phone": ""},
        "opening_times": _WEEK if open_now else _CLOSED_WEEK,
        "is_open_tomorrow": open_now,
        "next_open_at": None,
        "is_expired": False,
        "distance": distance,
    }


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    """Great-circle distance in whole metres (haversine)."""
    radius = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * radius * math.asin(math.sqrt(a)))


def _compact(postal_code: str) -> str:
    return "".join(postal_code.split()).upper()


def geocode(country: str, postal_code: str) -> tuple[float, float] | None:
    """The centre of the country's points sharing the longest prefix with ``postal_code``; None if none do."""
    wanted = _compact(postal_code)
    best, shared = [], 0
    for point in POINTS:
        if point.country != country:
            continue
        have = _compact(point.postal_code)
        common = next(
            (i for i, (a, b) in enumerate(zip(wanted, have, strict=False)) if a != b), min(len(wanted), len(have))
        )
        if common > shared:
            best, shared = [point], common
        elif common == shared and common > 0:
            best.append(point)
    if not best:
        return None
    return (sum(p.latitude for p in best) / len(best), sum(p.longitude for p in best) / len(best))


def search(
    *,
    country: str,
    carriers: Sequence[str] | None,
    reference: tuple[float, float] | None,
    radius: int | None,
    carrier_point_ids: Sequence[str],
    limit: int,
    since_start: float,
) -> list[JsonDict]:
    """The points of ``country`` (and ``carriers``, when given) nearest ``reference`` first, as rendered."""
    found: list[tuple[int | None, SandboxPoint]] = []
    for point in POINTS:
        if point.country != country or (carriers is not None and point.carrier not in carriers):
            continue
        if carrier_point_ids and point.carrier_point_id not in carrier_point_ids:
            continue
        distance = distance_m(*reference, point.latitude, point.longitude) if reference is not None else None
        if radius is not None and distance is not None and distance > radius:
            continue
        found.append((distance, point))
    found.sort(key=lambda pair: (pair[0] if pair[0] is not None else 0, pair[1].id))
    return [render_point(point, since_start=since_start, distance=distance) for distance, point in found[:limit]]


# --- customs --------------------------------------------------------------------------------------------


def needs_customs(country: str, postal_code: str) -> bool:
    """Whether a parcel from the Netherlands to this address leaves the EU customs and VAT area.

    The sandbox's own, simpler reading of the rule Sendcloud applies: member states (and Monaco) are
    inside, except the Canary Islands, Ceuta and Melilla (Spanish postal codes 35, 38, 51, 52), the French
    overseas departments (97xxx) and the Åland Islands (Finnish 22xxx); Northern Ireland (BT postcodes) is
    inside for goods.
    """
    code = country.upper()
    postal = _compact(postal_code)
    if code == "GB":
        return not postal.startswith("BT")
    if code == "MC":
        return False
    if code not in EU:
        return True
    special = {"ES": ("35", "38", "51", "52"), "FR": ("97",), "FI": ("22",)}
    return postal.startswith(special.get(code, ()))


def customs_gaps(payload: JsonDict) -> list[str]:
    """What an order leaving the customs area lacks for its customs declaration, as field paths."""
    gaps: list[str] = []
    customs = payload.get("customs_details")
    if not isinstance(customs, dict):
        gaps.append("customs_details")
    else:
        gaps += [f"customs_details.{key}" for key in ("shipment_type", "export_type") if not customs.get(key)]
    details = payload.get("order_details")
    items = details.get("order_items") if isinstance(details, dict) else None
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        for key in ("hs_code", "country_of_origin"):
            if not item.get(key):
                gaps.append(f"order_details.order_items[{index}].{key}")
    return gaps
