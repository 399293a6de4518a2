"""Orders with their shipment: state, error, history, the Sendcloud calls made for them, and re-push.

The order admin lives in this app rather than in ``webshop.admin`` because nearly everything it shows
(state, errors, batches, calls) is Sendcloud's; ``webshop`` stays free of imports from this app.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from sendcloud_integration.admin import repush, tracking
from sendcloud_integration.admin.display import (
    ERROR_EXCERPT,
    STATE_TONES,
    badge,
    shipment_of,
    when,
)
from sendcloud_integration.admin.service_points import (
    customs_overview,
    order_service_point_view,
    service_point_overview,
)
from sendcloud_integration.admin.shipping import order_shipping_view
from sendcloud_integration.models import (
    Phase,
    PushBatch,
    SendcloudApiCall,
    ShipmentState,
)
from sendcloud_integration.selectors import dashboard
from sendcloud_integration.selectors.integration import integration_of
from sendcloud_integration.sendcloud.shipping_data import shipping_data
from sendcloud_integration.sendcloud.types import is_web_url
from webshop.models import Order, OrderLine, ShippingAddress

#: How many Sendcloud calls an order page lists (newest first); the call log admin has them all.
ORDER_CALLS_SHOWN = 50

# --- order list filters ------------------------------------------------------------------------------------


class ShipmentStateFilter(admin.SimpleListFilter):
    title = "shipment state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(dashboard.NOT_SENT, "Not sent"), *((state.value, str(state.label)) for state in ShipmentState)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value == dashboard.NOT_SENT:
            return queryset.filter(shipment__isnull=True)
        if value in ShipmentState.values:
            return queryset.filter(shipment__state=value)
        return queryset


class FailedPhaseFilter(admin.SimpleListFilter):
    title = "failure phase"
    parameter_name = "phase"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(phase.value, str(phase.label)) for phase in Phase]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value in Phase.values:
            return queryset.filter(shipment__state=ShipmentState.FAILED, shipment__failed_phase=value)
        return queryset


class BatchFilter(admin.SimpleListFilter):
    """The latest batches as choices; any batch id works in the URL (the links from a batch page)."""

    title = "batch"
    parameter_name = "batch"
    CHOICES = 15

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        recent = list(
            PushBatch.objects.order_by("-created_at").values_list("pk", "created_at", "shop__slug")[: self.CHOICES]
        )
        choices = [(str(pk), f"{str(pk)[:8]} · {shop} · {created:%Y-%m-%d %H:%M}") for pk, created, shop in recent]
        value = self.value()
        if value and value not in {pk for pk, _ in choices} and self._uuid(value):
            choices.insert(0, (value, value[:8]))
        return choices

    @staticmethod
    def _uuid(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return queryset
        batch_id = self._uuid(value)
        return queryset.filter(shipment__batch_id=batch_id) if batch_id else queryset.none()


# --- orders ----------------------------------------------------------------------------------------------------


class ShippingAddressInline(admin.StackedInline):
    model = ShippingAddress
    extra = 0
    max_num = 1
    can_delete = False


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ("position", "sku", "name", "quantity", "unit_price", "weight_kg", "hs_code", "origin_country")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders with where they stand in Sendcloud; the re-push actions live here.

    Orders arrive through the import, so they cannot be added here; editing stays possible because
    fixing an address and re-pushing is exactly how a failed order is mended.
    """

    list_display = (
        "order_number",
        "shop",
        "customer_name",
        "status",
        "created_at",
        "shipment_state",
        "failure_phase",
        "short_error",
        "batch_link",
        "tracking",
    )
    list_select_related = ("shop", "shipment")
    list_filter = (
        ShipmentStateFilter,
        tracking.ParcelStatusFilter,
        FailedPhaseFilter,
        "shop",
        BatchFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("order_number", "customer_name", "customer_email", "customer_company")
    search_help_text = "Order number, customer name, e-mail or company."
    list_per_page = 100
    actions = ("repush_orders", "repush_orders_with_labels", "cancel_labels")
    inlines = (ShippingAddressInline, OrderLineInline)
    readonly_fields = (
        "shop",
        "order_number",
        "created_at",
        "updated_at",
        "shipping_overview",
        "service_point",
        "customs",
        "shipment_overview",
        "tracking_overview",
        "sendcloud_call_log",
    )
    fieldsets = (
        (None, {"fields": ("shop", "order_number", "type", "status", "payment_status", "currency")}),
        ("Sendcloud", {"fields": ("shipping_overview", "service_point", "shipment_overview", "sendcloud_call_log")}),
        ("Tracking", {"fields": ("tracking_overview",)}),
        (
            "Customs",
            {
                "fields": (
                    "customs",
                    "customs_invoice_number",
                    "customs_shipment_type",
                    "customs_export_type",
                    "receiver_vat_number",
                    "receiver_eori_number",
                )
            },
        ),
        ("Customer", {"fields": ("customer_name", "customer_email", "customer_phone", "customer_company")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # -- columns

    @admin.display(description="shipment", ordering="shipment__state")
    def shipment_state(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None:
            return badge("not sent", "idle")
        return badge(shipment.get_state_display(), STATE_TONES.get(ShipmentState(shipment.state), "idle"))

    @admin.display(description="failed in")
    def failure_phase(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None or shipment.state != ShipmentState.FAILED:
            return ""
        return shipment.get_failed_phase_display()

    @admin.display(description="last error")
    def short_error(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None or not shipment.last_error:
            return ""
        return format_html(
            '<span title="{}">{}</span>',
            shipment.last_error,
            Truncator(shipment.last_error).chars(ERROR_EXCERPT),
        )

    @admin.display(description="batch")
    def batch_link(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None or shipment.batch_id is None:
            return ""
        url = reverse("admin:sendcloud_integration_pushbatch_change", args=[shipment.batch_id])
        return format_html('<a href="{}">{}</a>', url, str(shipment.batch_id)[:8])

    @admin.display(description="tracking")
    def tracking(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None or not shipment.tracking_number:
            return ""
        if is_web_url(shipment.tracking_url):  # stored before this check existed, or by hand
            return format_html(
                '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
                shipment.tracking_url,
                shipment.tracking_number,
            )
        return shipment.tracking_number

    # -- detail

    @admin.display(description="shipping")
    def shipping_overview(self, order: Order) -> str:
        """How the order ships (method, weight, parcels), with the link to change it before a re-push."""
        data = shipping_data(order, integration_of(shop=order.shop))
        parcels = ", ".join(f"{p.weight_kg:.3f} kg" for p in data.parcels)
        method = data.option_code or "Sendcloud's default"
        if data.option_code and not data.option_chosen:
            method += " (the shop's default)"
        link = format_html(
            '<a class="sc-change-shipping" href="{}">Change shipping data</a>',
            reverse("admin:webshop_order_shipping", args=[order.pk]),
        )
        return format_html(
            '<table class="sc-history"><tr><th>Method</th><td>{}</td></tr><tr><th>Weight</th><td>{} kg</td></tr>'
            "<tr><th>Parcels</th><td>{} ({})</td></tr></table>{}",
            method,
            f"{data.weight_kg:.3f}",
            data.parcel_count,
            parcels,
            link,
        )

    @admin.display(description="service point")
    def service_point(self, order: Order) -> str:
        return service_point_overview(order)

    @admin.display(description="customs data")
    def customs(self, order: Order) -> str:
        return customs_overview(order)

    @admin.display(description="shipment")
    def shipment_overview(self, order: Order) -> str:
        shipment = shipment_of(order)
        if shipment is None:
            return "Never sent to Sendcloud."
        batch = ""
        if shipment.batch_id:
            url = reverse("admin:sendcloud_integration_pushbatch_change", args=[shipment.batch_id])
            batch = format_html('<a href="{}">{}</a> (chunk {})', url, shipment.batch_id, shipment.chunk_number or "-")
        rows: list[tuple[str, Any]] = [
            ("State", self.shipment_state(order)),
            ("Failed in", shipment.get_failed_phase_display() if shipment.state == ShipmentState.FAILED else ""),
            ("Last error", shipment.last_error),
            ("Attempts", shipment.attempts),
            ("Batch", batch),
            ("Labels requested", "yes" if shipment.create_label else "no"),
            ("Sendcloud order", shipment.sendcloud_order_id),
            ("Sendcloud shipment", shipment.sendcloud_shipment_id),
            ("Parcel", shipment.sendcloud_parcel_id),
            ("Parcels", self._parcels(shipment)),
            ("Carrier", shipment.carrier),
            ("Tracking", self.tracking(order)),
            ("Queued at", when(shipment.queued_at)),
            ("Pushed at", when(shipment.pushed_at)),
            ("Labelled at", when(shipment.labelled_at)),
            ("State changed at", when(shipment.state_changed_at)),
        ]
        body = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((label, value) for label, value in rows if value != "")
        )
        return format_html('<table class="sc-history">{}</table>', body)

    @staticmethod
    def _parcels(shipment: Any) -> str:
        parcels = list(shipment.parcels.order_by("position"))
        if not parcels:
            return ""
        return format_html_join(
            mark_safe("<br>"),
            "{}. parcel {} · {}",
            ((p.position, p.sendcloud_parcel_id, p.tracking_number or "no tracking number") for p in parcels),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/shipping/",
                self.admin_site.admin_view(order_shipping_view(self)),
                name="webshop_order_shipping",
            ),
            path(
                "<path:object_id>/service-point/",
                self.admin_site.admin_view(order_service_point_view(self)),
                name="webshop_order_service_point",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Sendcloud calls")
    def sendcloud_call_log(self, order: Order) -> str:
        calls = list(
            SendcloudApiCall.objects.filter(orders=order)
            .order_by("-created_at")
            .only("created_at", "method", "path", "status_code", "duration_ms", "error", "batch_id", "chunk_number")[
                :ORDER_CALLS_SHOWN
            ]
        )
        if not calls:
            return "No calls to Sendcloud for this order yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    when(call.created_at),
                    call.method,
                    call.path,
                    call.status_code or "no answer",
                    call.duration_ms,
                    self._batch_cell(call.batch_id, call.chunk_number),
                    call.error,
                )
                for call in calls
            ),
        )
        return format_html(
            '<table class="sc-calls"><thead><tr><th>When</th><th>Request</th><th>Status</th><th>Took</th>'
            "<th>Batch</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @staticmethod
    def _batch_cell(batch_id: uuid.UUID | None, chunk: int | None) -> str:
        if batch_id is None:
            return ""
        url = reverse("admin:sendcloud_integration_pushbatch_change", args=[batch_id])
        return format_html('<a href="{}">{}</a> #{}', url, str(batch_id)[:8], chunk or "-")

    # -- re-push

    def has_repush_permission(self, request: HttpRequest) -> bool:
        return repush.can_repush(request.user)

    @admin.action(description="Re-push to Sendcloud", permissions=["repush"])
    def repush_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return repush.repush_action(self, request, queryset, create_label=False)

    @admin.action(description="Re-push to Sendcloud and create labels", permissions=["repush"])
    def repush_orders_with_labels(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return repush.repush_action(self, request, queryset, create_label=True)

    # -- after the label

    @admin.action(description="Cancel labels in Sendcloud", permissions=["repush"])
    def cancel_labels(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return tracking.cancel_action(self, request, queryset)

    @admin.display(description="parcels")
    def tracking_overview(self, order: Order) -> str:
        return tracking.tracking_overview(order)
