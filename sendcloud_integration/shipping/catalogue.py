"""The shipping-method catalogue of an integration: synced from Sendcloud, read by the doors.

Sendcloud lists shipping options per origin and destination (``POST /v3/shipping-options``), so a sync
asks once per country of ``SENDCLOUD_SHIPPING_COUNTRIES`` (from ``SENDCLOUD_SHIPPING_FROM_COUNTRY``) and
records, per option, the countries it was offered for. Each request takes a slot of the account's *write*
budget first (it is a POST). A sync is all or nothing: it stores the catalogue only when every country was
read, so a failure half-way never makes options look unavailable. Rows are updated by code and never
deleted, so an option keeps its local id (the ``shipping_method_id`` of wemasy clients) for good; one
Sendcloud no longer offers is marked unavailable.

The catalogue is read again when it is older than ``SENDCLOUD_SHIPPING_METHODS_MAX_AGE_SECONDS``, when the
countries setting changed, or when the keys changed (``configure_sendcloud`` clears the sync time). When
Sendcloud cannot be asked, an older catalogue is served as it is, saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sendcloud_integration.exceptions import InvalidShippingData, SendcloudRefused, SendcloudUnavailable
from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from sendcloud_integration.push.services import ready_integration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import ShippingOptionInfo
from webshop.models import Shop

logger = logging.getLogger(__name__)

_CODE_MAX = 200


def wanted_countries() -> list[str]:
    return list(dict.fromkeys(settings.SENDCLOUD_SHIPPING_COUNTRIES))


def is_stale(integration: SendcloudIntegration, *, now: datetime | None = None) -> bool:
    synced = integration.shipping_options_synced_at
    if synced is None:
        return True
    if sorted(integration.shipping_options_countries or []) != sorted(wanted_countries()):
        return True
    age = (now or timezone.now()) - synced
    return age > timedelta(seconds=settings.SENDCLOUD_SHIPPING_METHODS_MAX_AGE_SECONDS)


def sync_catalogue(integration: SendcloudIntegration) -> int:
    """Read the account's shipping options from Sendcloud and store them; returns how many it offers.

    Raises :class:`SendcloudUnavailable` (no answer, server error, budget spent) or :class:`SendcloudRefused`
    (credentials refused: the integration is marked not connected); nothing is stored then.
    """
    countries = wanted_countries()
    call_log = CallLog(shop_id=integration.shop_id)
    client = build_client(integration, call_log)
    found: dict[str, tuple[ShippingOptionInfo, set[str]]] = {}
    try:
        for country in countries:
            wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
            if wait:
                raise SendcloudUnavailable(budget.spent_message(wait))
            for info in client.shipping_options(
                from_country=settings.SENDCLOUD_SHIPPING_FROM_COUNTRY, to_country=country
            ):
                if len(info.code) > _CODE_MAX:
                    logger.warning(
                        "shop=%s skipped a shipping option with a %d-character code",
                        integration.shop_id,
                        len(info.code),
                    )
                    continue
                found.setdefault(info.code, (info, set()))[1].add(country)
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        raise SendcloudRefused(f"Sendcloud refused the credentials: {exc.message}") from exc
    except TransientError as exc:
        raise SendcloudUnavailable(f"Sendcloud did not answer the shipping-options request: {exc.message}") from exc
    except SendcloudError as exc:
        raise SendcloudRefused(f"Sendcloud refused the shipping-options request: {exc.message}") from exc
    finally:
        call_log.flush()
    _store(integration, found, countries)
    integration.mark_connected(only_if_changed=True)
    logger.info(
        "shop=%s shipping options synced: %d options over %d countries", integration.shop_id, len(found), len(countries)
    )
    return len(found)


def _store(
    integration: SendcloudIntegration, found: dict[str, tuple[ShippingOptionInfo, set[str]]], countries: list[str]
) -> None:
    now = timezone.now()
    with transaction.atomic():
        # One sync applies at a time (a concurrent one waits, then writes the same rows again).
        SendcloudIntegration.objects.select_for_update().filter(pk=integration.pk).first()
        existing = {option.code: option for option in ShippingOption.objects.filter(integration=integration)}
        create: list[ShippingOption] = []
        update: list[ShippingOption] = []
        for code, (info, where) in found.items():
            option = existing.get(code) or ShippingOption(integration=integration, code=code)
            option.name = info.name[:300]
            option.carrier_code = info.carrier_code[:100]
            option.carrier_name = info.carrier_name[:200]
            option.min_weight_kg = _fits(info.min_weight_kg)
            option.max_weight_kg = _fits(info.max_weight_kg)
            option.countries = sorted(where)
            option.multicollo = info.multicollo
            option.service_point = info.service_point
            option.is_available = True
            option.synced_at = now
            (update if option.pk else create).append(option)
        ShippingOption.objects.bulk_create(create)
        fields = ["name", "carrier_code", "carrier_name", "min_weight_kg", "max_weight_kg", "countries"]
        ShippingOption.objects.bulk_update(
            update, [*fields, "multicollo", "service_point", "is_available", "synced_at"]
        )
        ShippingOption.objects.filter(integration=integration).exclude(code__in=list(found)).update(
            is_available=False, countries=[], synced_at=now
        )
        SendcloudIntegration.objects.filter(pk=integration.pk).update(
            shipping_options_synced_at=now, shipping_options_countries=sorted(countries)
        )
    integration.shipping_options_synced_at = now
    integration.shipping_options_countries = sorted(countries)


def _fits(value: Decimal | None) -> Decimal | None:
    """A weight the column holds (10 digits, 3 decimals); anything larger reads as "no limit"."""
    return value if value is not None and value < Decimal("10000000") else None


@dataclass(frozen=True)
class Catalogue:
    """What the shipping-methods endpoint answers: the options, and how fresh they are."""

    integration: SendcloudIntegration
    options: list[ShippingOption]
    synced_at: datetime | None
    #: Set when a refresh was due but Sendcloud could not be asked: the options are the older ones.
    stale_because: str = ""


def shipping_methods(
    *, shop: Shop, country: str | None = None, weight_kg: Decimal | None = None, refresh: bool = False
) -> Catalogue:
    """The shop's available shipping methods, refreshed from Sendcloud first when due (or asked).

    ``country`` keeps the methods offered for that destination; ``weight_kg`` those whose range takes a
    parcel of that weight. Raises ``IntegrationUnavailable`` without a usable integration, and
    ``SendcloudUnavailable``/``SendcloudRefused`` only when there is no catalogue at all to fall back on.
    """
    integration = ready_integration(shop)
    stale_because = ""
    if refresh or is_stale(integration):
        try:
            sync_catalogue(integration)
        except (SendcloudUnavailable, SendcloudRefused) as exc:
            if integration.shipping_options_synced_at is None:
                raise
            stale_because = exc.message
    options = [
        option
        for option in ShippingOption.objects.filter(integration=integration, is_available=True).order_by("id")
        if (country is None or option.serves(country)) and (weight_kg is None or option.takes(weight_kg))
    ]
    return Catalogue(
        integration=integration,
        options=options,
        synced_at=integration.shipping_options_synced_at,
        stale_because=stale_because,
    )


def find_option(
    integration: SendcloudIntegration, *, option_id: int | None = None, code: str | None = None
) -> ShippingOption:
    """The integration's catalogue entry by local id, or by code; a 422 naming the field when there is none."""
    queryset = ShippingOption.objects.filter(integration=integration)
    if option_id is not None:
        option = queryset.filter(pk=option_id).first()
        field = "shipping_method_id"
    else:
        option = queryset.filter(code=code or "").first()
        field = "shipping_option_code"
    if option is None:
        raise InvalidShippingData(f"The selected {field} is invalid.", field=field)
    if code is not None and option_id is not None and option.code != code:
        raise InvalidShippingData(
            f"The shipping_option_code {code} is not the shipping method {option_id} ({option.code}).",
            field="shipping_option_code",
        )
    return option
