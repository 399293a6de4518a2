"""Finding service points for a checkout or for staff, and changing an order's point.

:func:`find_service_points` proxies ``GET /v3/service-points`` (a country, a reference point given as
coordinates or a postal code, optionally carriers and a radius). It takes a slot of the account's *read*
budget (a GET: never a write), and caches each answer for ``SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS`` per
account and query, so a checkout asking the same question for every visitor costs Sendcloud one request.
The cache is a help, not a need: when it cannot be reached the search asks Sendcloud.

:func:`set_service_point` changes the point of an order that has no label yet (the admin).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from sendcloud_integration.exceptions import (
    InvalidShippingData,
    SendcloudRefused,
    SendcloudUnavailable,
    ShippingDataLocked,
)
from sendcloud_integration.models import OrderShipment
from sendcloud_integration.push.services import ready_integration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import ServicePointInfo
from sendcloud_integration.shipping.locks import Lock, lock_of
from webshop.models import Order, Shop

logger = logging.getLogger(__name__)

#: Sendcloud's limits for the search (spec v3/service-points): ``radius`` in metres, ``limit`` of results.
MIN_RADIUS_M, MAX_RADIUS_M = 100, 50_000
MAX_LIMIT = 200
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class ServicePointQuery:
    """One search: a country, and a reference point as coordinates or a postal code (and city)."""

    country: str
    postal_code: str = ""
    city: str = ""
    latitude: float | None = None
    longitude: float | None = None
    carriers: tuple[str, ...] = ()
    radius_m: int | None = None
    limit: int = DEFAULT_LIMIT

    def params(self) -> dict[str, str | list[str]]:
        """The query of ``GET /v3/service-points``: exactly one kind of reference point, one carrier scope."""
        params: dict[str, str | list[str]] = {"country_code": self.country, "limit": str(self.limit)}
        if self.carriers:
            params["carrier_code"] = list(self.carriers)
        else:
            params["use_integration_carriers"] = "true"
        if self.latitude is not None and self.longitude is not None:
            params["latitude"] = repr(self.latitude)
            params["longitude"] = repr(self.longitude)
        else:
            params["address_postal_code"] = self.postal_code
            if self.city:
                params["address_city"] = self.city
        if self.radius_m is not None:
            params["radius"] = str(self.radius_m)
        return params


@dataclass(frozen=True)
class ServicePointSearch:
    points: list[ServicePointInfo]
    #: True when the answer came from the cache (Sendcloud was not asked).
    cached: bool


def _cache_key(public_key: str, query: ServicePointQuery) -> str:
    """Per account (the key's hash, never the key) and per query."""
    digest = hashlib.sha256(json.dumps(query.params(), sort_keys=True).encode()).hexdigest()[:32]
    return f"sendcloud:service-points:{budget.account_key(public_key)}:{digest}"


def _cached(key: str) -> list[ServicePointInfo] | None:
    try:
        raw = cache.get(key)
    except Exception:  # the cache is an optimisation: a broken one must not break the search
        logger.warning("service point cache unreadable; asking Sendcloud", exc_info=True)
        return None
    if not isinstance(raw, list):
        return None
    try:
        return [ServicePointInfo(**item) for item in raw]
    except TypeError:  # written by another version of this code
        return None


def _store(key: str, points: list[ServicePointInfo]) -> None:
    try:
        cache.set(key, [asdict(point) for point in points], timeout=settings.SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS)
    except Exception:
        logger.warning("service point cache not writable", exc_info=True)


def find_service_points(*, shop: Shop, query: ServicePointQuery) -> ServicePointSearch:
    """The service points Sendcloud lists for the query, nearest first, from the cache when it has them.

    Raises ``IntegrationUnavailable`` (no usable integration), :class:`SendcloudUnavailable` (the read budget
    is spent, or Sendcloud did not answer) or :class:`SendcloudRefused` (it refused the keys or the query).
    """
    integration = ready_integration(shop)
    key = _cache_key(integration.public_key, query)
    hit = _cached(key)
    if hit is not None:
        return ServicePointSearch(points=hit, cached=True)
    wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.SAFE)
    if wait:
        raise SendcloudUnavailable(budget.spent_message(wait))
    call_log = CallLog(shop_id=shop.pk)
    try:
        points = build_client(integration, call_log).service_points(query.params())
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        raise SendcloudRefused(f"Sendcloud refused the credentials: {exc.message}") from exc
    except TransientError as exc:
        raise SendcloudUnavailable(f"Sendcloud did not answer the service point search: {exc.message}") from exc
    except SendcloudError as exc:
        raise SendcloudRefused(f"Sendcloud refused the service point search: {exc.message}") from exc
    finally:
        call_log.flush()
    integration.mark_connected(only_if_changed=True)
    _store(key, points)
    return ServicePointSearch(points=points, cached=False)


def set_service_point(*, order: Order, point_id: str, carrier_point_id: str = "", post_number: str = "") -> Order:
    """Give the order another service point (all blank: deliver to its address). Refused while a batch
    works on the order or once it has a label (:class:`ShippingDataLocked`); the next push sends it."""
    point_id, carrier_point_id, post_number = point_id.strip(), carrier_point_id.strip(), post_number.strip()
    if point_id and not point_id.isdigit():
        raise InvalidShippingData("A service point id is Sendcloud's number, e.g. 1000001.", field="service_point_id")
    if post_number and not (point_id or carrier_point_id):
        raise InvalidShippingData("A post number needs a service point.", field="service_point_post_number")
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        lock = lock_of(OrderShipment.objects.filter(order=locked).only("state", "labelled_at", "cancelled_at").first())
        if lock is Lock.IN_FLIGHT:
            raise ShippingDataLocked("A batch is working on this order; change its service point when it is done.")
        if lock is Lock.LABELLED:
            raise ShippingDataLocked(
                "The order has a label; cancel the label first to change its service point (then push it with labels)."
            )
        if lock is Lock.CANCELLING:
            raise ShippingDataLocked(
                "The order's label is being cancelled; change its service point once Sendcloud confirmed it."
            )
        locked.service_point_id = point_id
        locked.service_point_carrier_id = carrier_point_id
        locked.service_point_post_number = post_number
        locked.save(update_fields=["service_point_id", "service_point_carrier_id", "service_point_post_number"])
    logger.info("order=%s service point set to %r", order.pk, point_id or carrier_point_id or "(none)")
    return locked


def describe(point: ServicePointInfo) -> dict[str, Any]:
    """A point as the API and the admin show it."""
    return {
        "id": point.id,
        "name": point.name,
        "carrier": {"code": point.carrier_code, "name": point.carrier_name},
        "carrier_service_point_id": point.carrier_service_point_id,
        "type": point.shop_type,
        "address": {
            "street": point.street,
            "house_number": point.house_number,
            "postal_code": point.postal_code,
            "city": point.city,
            "country": point.country_code,
        },
        "latitude": point.latitude,
        "longitude": point.longitude,
        "distance": point.distance_m,
        "is_open_tomorrow": point.is_open_tomorrow,
        "opening_times": point.opening_times,
    }
