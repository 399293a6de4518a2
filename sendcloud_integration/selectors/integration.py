"""Reads about a shop's Sendcloud integration, for the status endpoint and the admin."""

from __future__ import annotations

from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from webshop.models import Shop


def integration_of(*, shop: Shop) -> SendcloudIntegration | None:
    """The shop's integration, or None when it has none."""
    return SendcloudIntegration.objects.filter(shop=shop).first()


def shipping_options_of(*, integration: SendcloudIntegration) -> list[ShippingOption]:
    """The integration's whole catalogue as stored (available or not), by local id; no call to Sendcloud."""
    return list(ShippingOption.objects.filter(integration=integration).order_by("id"))
