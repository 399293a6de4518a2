"""How the admin pages show things: badges, the progress bar, times, links to filtered order lists."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from sendcloud_integration.models import (
    BatchStatus,
    OrderShipment,
    ShipmentState,
)
from sendcloud_integration.selectors import dashboard
from webshop.models import Order
from wemasy.errors import ApplicationError

ERROR_EXCERPT = 80

#: Colours from the admin's own CSS variables, so badges follow the light and dark themes.
TONES = {
    "ok": "var(--message-success-bg)",
    "bad": "var(--message-error-bg)",
    "busy": "var(--message-warning-bg)",
    "idle": "var(--darkened-bg)",
}
STATE_TONES = {
    ShipmentState.QUEUED: "busy",
    ShipmentState.PUSHING: "busy",
    ShipmentState.LABEL_QUEUED: "busy",
    ShipmentState.LABELLING: "busy",
    ShipmentState.PUSHED: "ok",
    ShipmentState.LABELLED: "ok",
    ShipmentState.FAILED: "bad",
}
BATCH_TONES = {
    BatchStatus.QUEUED: "busy",
    BatchStatus.RUNNING: "busy",
    BatchStatus.COMPLETED: "ok",
    BatchStatus.COMPLETED_WITH_ERRORS: "bad",
    BatchStatus.FAILED: "bad",
}


def badge(text: str, tone: str) -> SafeString:
    """A small coloured label: readable without JavaScript or a stylesheet of our own."""
    return format_html(
        '<span class="sc-badge" style="background:{};color:var(--body-fg);padding:1px 6px;'
        'border-radius:8px;white-space:nowrap">{}</span>',
        TONES.get(tone, TONES["idle"]),
        text,
    )


def progress_bar(progress: dashboard.BatchProgress) -> SafeString:
    """The batch progress bar, from the same template the dashboard uses."""
    return SafeString(render_to_string("sendcloud_integration/admin/_progress.html", {"progress": progress}))


def shipment_of(order: Order) -> OrderShipment | None:
    try:
        return order.shipment
    except ObjectDoesNotExist:
        return None


def when(moment: datetime | None) -> str:
    """A timestamp as the admin shows dates elsewhere (local time, the active locale's format)."""
    return formats.localize(timezone.localtime(moment)) if moment else ""


def orders_url(**filters: str) -> str:
    """The order list filtered with the parameters of the filters below."""
    url = reverse("admin:webshop_order_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def show_error(request: HttpRequest, exc: ApplicationError) -> None:
    """A service's refusal as an admin message: the one place the admin maps ``ApplicationError``.

    Nothing there yet (the error's HTTP meaning is 404) is a warning; any other refusal is an error.
    """
    level = messages.WARNING if exc.http_status == 404 else messages.ERROR
    messages.add_message(request, level, exc.message)
