"""What Sendcloud answers, as small frozen dataclasses: the rest of the service never reads raw JSON.

HTTP only: no Django, no Celery (see ``docs/architecture.md``). ``parse_shipment`` and
``parse_api_errors`` turn v3 JSON into these types; everything else in the adapter builds on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlsplit


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as staff see it in the call log. Never carries credentials."""

    method: str
    path: str  # without host or query, e.g. "/v3/orders"
    status_code: int | None  # None when no answer came (timeout, connection error)
    duration_ms: int
    error: str = ""  # a short excerpt; "" on success


@dataclass(frozen=True)
class ApiError:
    """One entry of a v3 JSON:API ``errors`` array."""

    status: str
    code: str
    detail: str
    pointer: str = ""


@dataclass(frozen=True)
class UpsertedOrder:
    """One order Sendcloud accepted (201). Saving is asynchronous: it may not be readable for a moment."""

    sendcloud_id: str
    order_id: str
    order_number: str


@dataclass(frozen=True)
class LabelAccepted:
    """An order for which Sendcloud created a shipment; its label is made later (poll the shipment)."""

    order_id: str
    order_number: str
    shipment_id: str
    parcel_ids: list[str]


@dataclass(frozen=True)
class LabelRequestResult:
    """The mixed 202 of ``create-labels-async``, keyed by our ``order_id`` values.

    * ``accepted``: a shipment exists for these orders — never ask for their labels again.
    * ``rejected``: Sendcloud's message per order; no shipment was made.
    * ``retryable``: the subset of ``rejected`` whose error looks temporary (the order is not visible yet
      after a push, a processing conflict, a server error) — worth asking again later.
    * ``unaccounted``: requested orders Sendcloud said nothing about. Treat as uncertain: look up their
      shipments before asking again.
    """

    accepted: list[LabelAccepted]
    rejected: dict[str, str]
    retryable: frozenset[str] = frozenset()
    unaccounted: list[str] = field(default_factory=list)


#: Parcel status codes that come after the label was made are open-ended (in transit, delivered, ...), so
#: readiness is defined by exclusion: every parcel has a status that is neither still pending, nor failed,
#: nor cancelled. Codes seen in the v3 shipments spec: ANNOUNCING, READY_TO_SEND, ANNOUNCEMENT_FAILED,
#: CANCELLED; the others below are the v2-era names of "no label yet" that may still appear.
PENDING_STATUSES: Final = frozenset({"ANNOUNCING", "NO_LABEL", "READY_TO_ANNOUNCE", "BEING_ANNOUNCED"})
FAILED_STATUSES: Final = frozenset({"ANNOUNCEMENT_FAILED"})
CANCELLED_STATUSES: Final = frozenset({"CANCELLED", "CANCELLATION_REQUESTED", "BEING_CANCELLED"})
READY_TO_SEND: Final = "READY_TO_SEND"


@dataclass(frozen=True)
class ParcelInfo:
    """One parcel of a shipment. ``errors`` repeats the shipment's errors: v3 reports them per shipment."""

    parcel_id: str
    status_code: str
    status_message: str
    tracking_number: str
    tracking_url: str
    carrier: str
    label_url: str
    errors: list[str]
    #: The carrier made a customs declaration for this parcel (a ``customs-declaration`` document).
    has_customs_declaration: bool = False

    @property
    def is_pending(self) -> bool:
        return not self.status_code or self.status_code in PENDING_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status_code in FAILED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status_code in CANCELLED_STATUSES

    @property
    def is_ready(self) -> bool:
        """READY_TO_SEND or any later status: the label exists."""
        return not (self.is_pending or self.is_failed or self.is_cancelled)


@dataclass(frozen=True)
class ShipmentInfo:
    """What the service needs from ``GET /v3/shipments/{id}``."""

    shipment_id: str
    order_number: str
    external_reference_id: str
    parcels: list[ParcelInfo]
    errors: list[str] = field(default_factory=list)
    carrier: str = ""

    @property
    def is_ready(self) -> bool:
        """Every parcel has its label (READY_TO_SEND or later)."""
        return bool(self.parcels) and all(p.is_ready for p in self.parcels)

    @property
    def is_pending(self) -> bool:
        """Still being announced: ask again later. A shipment without parcels yet counts as pending."""
        if self.failed_message is not None or any(p.is_cancelled for p in self.parcels):
            return False
        return not self.parcels or any(p.is_pending for p in self.parcels)

    @property
    def is_cancelled(self) -> bool:
        return bool(self.parcels) and any(p.is_cancelled for p in self.parcels)

    @property
    def failed_message(self) -> str | None:
        """The carrier's own words when the announcement failed (ANNOUNCEMENT_FAILED), else None."""
        failed = [p for p in self.parcels if p.is_failed]
        if not failed:
            return None
        if self.errors:
            return "; ".join(self.errors)
        return failed[0].status_message or "The carrier refused the shipment (announcement failed)."


@dataclass(frozen=True)
class ShipmentPage:
    """One page of ``GET /v3/shipments``. ``next_cursor`` is set when the ``Link`` header names a next page."""

    shipments: list[ShipmentInfo]
    next_cursor: str | None = None


def parse_api_errors(body: Any) -> list[ApiError]:
    """The JSON:API ``errors`` of a v3 body (an array or, per the spec's schema, a single object)."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    errors = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if not isinstance(source, dict):
            source = {}
        pointer = source.get("pointer") or source.get("parameter") or source.get("header") or ""
        detail = item.get("detail") or item.get("title") or item.get("code") or "Unknown error"
        errors.append(
            ApiError(
                status=str(item.get("status") or ""),
                code=str(item.get("code") or ""),
                detail=str(detail),
                pointer=str(pointer),
            )
        )
    return errors


def text_of(value: Any) -> str:
    return "" if value is None else str(value)


def parse_shipment(data: Mapping[str, Any]) -> ShipmentInfo:
    """A v3 shipment object (``GET /v3/shipments/{id}``'s ``data``, or a 409 body) → :class:`ShipmentInfo`."""
    raw_errors = data.get("errors")
    errors = [e.detail for e in parse_api_errors({"errors": raw_errors})] if raw_errors else []
    carrier_obj = data.get("carrier")
    carrier = ""
    if isinstance(carrier_obj, dict):
        carrier = text_of(carrier_obj.get("code") or carrier_obj.get("name"))
    elif carrier_obj:
        carrier = text_of(carrier_obj)
    parcels = []
    raw_parcels = data.get("parcels")
    for parcel in raw_parcels if isinstance(raw_parcels, list) else []:
        if not isinstance(parcel, dict):
            continue
        status = parcel.get("status")
        if not isinstance(status, dict):
            status = {}
        label_url = ""
        documents = parcel.get("documents")
        kinds: set[str] = set()
        for document in documents if isinstance(documents, list) else []:
            if not isinstance(document, dict):
                continue
            kinds.update(text_of(document.get(key)) for key in ("document_type", "type"))
            if not label_url and "label" in (document.get("document_type"), document.get("type")):
                label_url = text_of(document.get("link"))
        parcels.append(
            ParcelInfo(
                parcel_id=text_of(parcel.get("id")),
                status_code=text_of(status.get("code")).upper(),
                status_message=text_of(status.get("message")),
                tracking_number=text_of(parcel.get("tracking_number")),
                tracking_url=web_url(text_of(parcel.get("tracking_url"))),
                carrier=carrier,
                label_url=label_url,
                errors=list(errors),
                has_customs_declaration=bool(kinds & CUSTOMS_DOCUMENT_TYPES),
            )
        )
    return ShipmentInfo(
        shipment_id=text_of(data.get("id")),
        order_number=text_of(data.get("order_number")),
        external_reference_id=text_of(data.get("external_reference_id")),
        parcels=parcels,
        errors=errors,
        carrier=carrier,
    )


def is_web_url(url: str) -> bool:
    """Whether a URL may be shown as a link: http(s) with a host, nothing else (no ``javascript:``)."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def web_url(url: str) -> str:
    """``url`` when it is a web link, else "" (a tracking URL from Sendcloud ends up in staff's browsers)."""
    return url.strip() if is_web_url(url) else ""


#: Kilograms per unit of the v3 weight units (``weight-units`` of the shipping-options spec).
_KG_PER_UNIT: Final = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lbs": Decimal("0.45359237"),
    "oz": Decimal("0.0283495"),
}


@dataclass(frozen=True)
class ShippingOptionInfo:
    """One entry of ``POST /v3/shipping-options``'s ``data``: what the catalogue keeps of it."""

    code: str
    name: str
    carrier_code: str
    carrier_name: str
    min_weight_kg: Decimal | None
    max_weight_kg: Decimal | None
    multicollo: bool
    #: Delivers to a point the customer chose (``last_mile`` a service point or locker, or a point required).
    service_point: bool = False


#: A parcel document that is a customs declaration: ``document_type`` ``customs-declaration``, or one of the
#: deprecated ``type`` values for the same papers (spec v3/shipments, ``documents``).
CUSTOMS_DOCUMENT_TYPES: Final = frozenset({"customs-declaration", "cn23", "cp71", "commercial-invoice", "cn23-default"})

#: ``functionalities.last_mile`` values that deliver to a point rather than to the address.
SERVICE_POINT_LAST_MILES: Final = frozenset({"service_point", "locker", "locker_or_servicepoint"})


def weight_kg_of(weight: Any) -> Decimal | None:
    """A v3 weight object (``{"value": "23.001", "unit": "kg"}``, the value a string) in kg; None if unreadable."""
    if not isinstance(weight, Mapping):
        return None
    factor = _KG_PER_UNIT.get(str(weight.get("unit") or "kg").lower())
    raw = weight.get("value")
    if factor is None or raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return (value * factor).quantize(Decimal("0.001")) if value.is_finite() else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_shipping_option(data: Mapping[str, Any]) -> ShippingOptionInfo | None:
    """A ``shipping-option`` object → :class:`ShippingOptionInfo`; None without a code (nothing to ship with)."""
    code = text_of(data.get("code")).strip()
    if not code:
        return None
    carrier, weight, functionalities, product, requirements = (
        _mapping(data.get(key)) for key in ("carrier", "weight", "functionalities", "product", "requirements")
    )
    return ShippingOptionInfo(
        code=code,
        name=text_of(data.get("name") or product.get("name") or code),
        carrier_code=text_of(carrier.get("code")),
        carrier_name=text_of(carrier.get("name")),
        min_weight_kg=weight_kg_of(weight.get("min")),
        max_weight_kg=weight_kg_of(weight.get("max")),
        multicollo=functionalities.get("multicollo") is True,
        service_point=requirements.get("is_service_point_required") is True
        or functionalities.get("last_mile") in SERVICE_POINT_LAST_MILES,
    )


@dataclass(frozen=True)
class ServicePointInfo:
    """One result of ``GET /v3/service-points``: what checkout and staff need to pick a point."""

    id: str
    name: str
    carrier_code: str
    carrier_name: str
    carrier_service_point_id: str
    shop_type: str
    street: str
    house_number: str
    postal_code: str
    city: str
    country_code: str
    latitude: float | None
    longitude: float | None
    distance_m: int | None
    is_open_tomorrow: bool
    opening_times: dict[str, list[dict[str, str]] | None]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_service_point(data: Mapping[str, Any]) -> ServicePointInfo | None:
    """A ``ServicePoint`` search result → :class:`ServicePointInfo`; None without an id."""
    if data.get("id") is None:
        return None
    carrier, address, position = (_mapping(data.get(key)) for key in ("carrier", "address", "position"))
    times = _mapping(data.get("opening_times"))
    distance = data.get("distance")
    return ServicePointInfo(
        id=text_of(data.get("id")),
        name=text_of(data.get("name")),
        carrier_code=text_of(carrier.get("code")),
        carrier_name=text_of(carrier.get("name")),
        carrier_service_point_id=text_of(data.get("carrier_service_point_id")),
        shop_type=text_of(data.get("general_shop_type") or data.get("carrier_shop_type")),
        street=text_of(address.get("street")),
        house_number=text_of(address.get("house_number")),
        postal_code=text_of(address.get("postal_code")),
        city=text_of(address.get("city")),
        country_code=text_of(address.get("country_code")),
        latitude=_number(position.get("latitude")),
        longitude=_number(position.get("longitude")),
        distance_m=distance if isinstance(distance, int) and not isinstance(distance, bool) else None,
        is_open_tomorrow=data.get("is_open_tomorrow") is True,
        opening_times={
            day: [
                {"start": text_of(slot.get("start_time")), "end": text_of(slot.get("end_time"))}
                for slot in slots
                if isinstance(slot, Mapping)
            ]
            if isinstance(slots, list)
            else None
            for day, slots in times.items()
        },
    )


@dataclass(frozen=True)
class CancelAnswer:
    """A 200 or 202 of ``POST /v3/shipments/{id}/cancel``: ``status`` is ``cancelled`` or ``queued``."""

    status: str
    message: str

    @property
    def queued(self) -> bool:
        """Sendcloud accepted the request but cancels later (confirmed by the parcel's status)."""
        return self.status != "cancelled"


@dataclass(frozen=True)
class IntegrationWebhook:
    """An integration's webhook settings as Sendcloud holds them (``GET /v3/integrations/{id}``)."""

    active: bool
    url: str
