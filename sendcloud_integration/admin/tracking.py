"""Staff pages after the label: parcel statuses on an order, the parcel-status filter, cancelling labels
(an action with a confirmation page), and the integration's webhook (on, off, read back).

Only translation happens here: the work is ``tracking.cancel``, ``tracking.setup`` and ``tracking.shipment``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from sendcloud_integration.admin import repush
from sendcloud_integration.admin.display import badge, show_error, when
from sendcloud_integration.models import CANCELLABLE_STATES, SendcloudIntegration
from sendcloud_integration.tracking import cancel, setup, statuses
from sendcloud_integration.tracking.shipment import order_tracking
from webshop.models import Order
from wemasy.errors import ApplicationError

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

_TONES = {
    statuses.Kind.DELIVERED: "ok",
    statuses.Kind.EXCEPTION: "bad",
    statuses.Kind.CANCELLED: "muted",
    statuses.Kind.CANCEL_REQUESTED: "warn",
}


class ParcelStatusFilter(admin.SimpleListFilter):
    """Orders by what their parcels' carrier said last (``ShipmentParcel.status_*``)."""

    title = "parcel status"
    parameter_name = "parcel"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [
            ("exception", "Exception (the carrier reports a problem)"),
            ("delivered", "Delivered"),
            ("on_its_way", "Labelled, not delivered yet"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        exception = Q(shipment__parcels__status_id__in=statuses.EXCEPTION_IDS) | Q(
            shipment__parcels__status_code__in=statuses.EXCEPTION_CODES
        )
        if self.value() == "exception":
            return queryset.filter(exception).distinct()
        if self.value() == "delivered":
            return queryset.filter(shipment__parcels__delivered_at__isnull=False).distinct()
        if self.value() == "on_its_way":
            return queryset.filter(
                shipment__state__in=CANCELLABLE_STATES, shipment__parcels__delivered_at__isnull=True
            ).distinct()
        return None


def status_badge(status_id: int | None, code: str, message: str) -> str:
    kind = statuses.kind_of(status_id, code)
    if kind is statuses.Kind.UNKNOWN and not message:
        return "no status yet"
    return badge(message or code or str(status_id), _TONES.get(kind, "info"))


def tracking_overview(order: Order) -> str:
    """Each parcel's current status, the history of what Sendcloud said, and the return portal link."""
    tracking = order_tracking(shop=order.shop, order_id=order.pk)
    if tracking is None or tracking.shipment is None:
        return "Never sent to Sendcloud."
    shipment = tracking.shipment
    parcels = format_html_join(
        "",
        "<tr><th>Parcel {}</th><td>{} {}</td></tr>",
        (
            (
                p.position,
                status_badge(p.status_id, p.status_code, p.status_message),
                f"since {when(p.status_changed_at)}" if p.status_changed_at else "",
            )
            for p in tracking.parcels
        ),
    )
    history = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                when(e.occurred_at),
                e.status_message or e.action,
                e.get_source_display(),
                "" if e.applied else "older than the status shown: recorded only",
            )
            for e in tracking.history
        ),
    )
    rows = [parcels]
    if shipment.cancel_message:
        rows.append(format_html("<tr><th>Cancellation</th><td>{}</td></tr>", shipment.cancel_message))
    if tracking.return_portal_url:
        rows.append(
            format_html(
                '<tr><th>Returns</th><td><a href="{}" rel="noopener" target="_blank">return portal</a></td></tr>',
                tracking.return_portal_url,
            )
        )
    table = format_html('<table class="sc-history">{}</table>', format_html_join("", "{}", ((r,) for r in rows)))
    if not tracking.history:
        return table
    return format_html(
        '{}<table class="sc-history"><tr><th>When</th><th>Status</th><th>From</th><th></th></tr>{}</table>',
        table,
        history,
    )


# --- cancelling labels: confirmation, then the requests -------------------------------------------------


def cancel_action(
    modeladmin: ModelAdmin[Order], request: HttpRequest, queryset: QuerySet[Order]
) -> HttpResponse | None:
    """Confirmation page first (what would be asked, what is refused already), the cancellation on confirm."""
    if not repush.can_repush(request.user):
        raise PermissionDenied("You may not cancel labels.")
    orders = list(queryset.select_related("shop", "shipment").order_by("pk")[: cancel.MAX_CANCEL_ORDER_IDS + 1])
    if len(orders) > cancel.MAX_CANCEL_ORDER_IDS:
        modeladmin.message_user(
            request,
            f"Select at most {cancel.MAX_CANCEL_ORDER_IDS} orders per cancellation (each is one request to Sendcloud).",
            messages.ERROR,
        )
        return None
    by_shop: dict[Any, list[Order]] = defaultdict(list)
    for order in orders:
        by_shop[order.shop].append(order)
    if request.POST.get("post") != "yes":
        rows = [(order, cancel.refusal(getattr(order, "shipment", None))) for order in orders]
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Cancel these labels?",
            "opts": modeladmin.model._meta,
            "rows": rows,
            "askable": sum(1 for _, reason in rows if reason is None),
            "action": request.POST.get("action", ""),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": modeladmin.media,
        }
        request.current_app = modeladmin.admin_site.name
        return TemplateResponse(request, "sendcloud_integration/admin/cancel_confirmation.html", context)
    for shop, shop_orders in by_shop.items():
        try:
            summary = cancel.cancel_labels(shop=shop, order_ids=[o.pk for o in shop_orders])
        except ApplicationError as exc:
            show_error(request, exc)
            continue
        for outcome in summary.cancelled:
            modeladmin.message_user(request, f"{outcome.order_number}: {outcome.message}", messages.SUCCESS)
        for outcome in summary.cancellation_requested:
            modeladmin.message_user(
                request,
                f"{outcome.order_number}: {outcome.message} (Sendcloud confirms it with the parcel's status)",
                messages.INFO,
            )
        for outcome in summary.refused:
            modeladmin.message_user(
                request, f"{outcome.order_number}: not cancelled: {outcome.message}", messages.ERROR
            )
    return None


# --- the integration's webhook --------------------------------------------------------------------------


def webhook_badge(integration: SendcloudIntegration) -> str:
    if integration.webhook_configured_at is None:
        return badge("never set", "muted")
    if integration.webhook_active:
        return format_html('<span title="{}">{}</span>', integration.webhook_url, badge("on", "ok"))
    return badge("off (polling)", "warn")


def set_webhook_action(
    modeladmin: ModelAdmin[SendcloudIntegration],
    request: HttpRequest,
    queryset: QuerySet[SendcloudIntegration],
    *,
    active: bool | None,
) -> None:
    """``active`` True/False sets the webhook, None only reads it back from Sendcloud."""
    for integration in queryset.select_related("shop"):
        try:
            state = (
                setup.webhook_status(integration) if active is None else setup.set_webhook(integration, active=active)
            )
        except ApplicationError as exc:
            show_error(request, exc)
            continue
        where = f" at {state.url}" if state.url else ""
        note = "" if state.ours or not state.active else " — not this service's receiver URL"
        modeladmin.message_user(
            request,
            f"{integration.shop}: the webhook is {'on' if state.active else 'off'}{where}{note}.",
            messages.SUCCESS if state.ours or not state.active else messages.WARNING,
        )
