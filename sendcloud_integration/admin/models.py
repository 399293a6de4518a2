"""Staff tooling: orders with their shipment state, re-push, batches, the integration, the call log.

The admin is the second door of design.md: it reads through ``dashboard`` and writes only through
the services the API and the command use (``push_orders``, ``configure_sendcloud``). The views that
are not plain model pages live in ``admin_views``.

The order admin is registered here rather than in ``webshop.admin`` because nearly everything it
shows (state, errors, batches, calls) is Sendcloud's; ``webshop`` stays free of imports from this
app.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from sendcloud_integration.admin import views as admin_views
from sendcloud_integration.integration.services import configure_sendcloud
from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    BatchStatus,
    OrderShipment,
    Phase,
    PushBatch,
    PushChunk,
    SendcloudApiCall,
    SendcloudIntegration,
    ShipmentState,
    StartedBy,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.selectors import dashboard
from webshop.models import Order, OrderLine, ShippingAddress

#: How many Sendcloud calls an order page lists (newest first); the call log admin has them all.
ORDER_CALLS_SHOWN = 50
ERROR_EXCERPT = 80

#: Colours from the admin's own CSS variables, so badges follow the light and dark themes.
_TONES = {
    "ok": "var(--message-success-bg)",
    "bad": "var(--message-error-bg)",
    "busy": "var(--message-warning-bg)",
    "idle": "var(--darkened-bg)",
}
_STATE_TONES = {
    ShipmentState.QUEUED: "busy",
    ShipmentState.PUSHING: "busy",
    ShipmentState.LABEL_QUEUED: "busy",
    ShipmentState.LABELLING: "busy",
    ShipmentState.PUSHED: "ok",
    ShipmentState.LABELLED: "ok",
    ShipmentState.FAILED: "bad",
}
_BATCH_TONES = {
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
        _TONES.get(tone, _TONES["idle"]),
        text,
    )


def progress_bar(progress: dashboard.BatchProgress) -> SafeString:
    """The batch progress bar, from the same template the dashboard uses."""
    return SafeString(render_to_string("sendcloud_integration/admin/_progress.html", {"progress": progress}))


def _shipment(order: Order) -> OrderShipment | None:
    try:
        return order.shipment
    except ObjectDoesNotExist:
        return None


def _when(moment: datetime | None) -> str:
    """A timestamp as the admin shows dates elsewhere (local time, the active locale's format)."""
    return formats.localize(timezone.localtime(moment)) if moment else ""


def orders_url(**filters: str) -> str:
    """The order list filtered with the parameters of the filters below."""
    url = reverse("admin:webshop_order_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


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
        FailedPhaseFilter,
        "shop",
        BatchFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("order_number", "customer_name", "customer_email", "customer_company")
    search_help_text = "Order number, customer name, e-mail or company."
    list_per_page = 100
    actions = ("repush_orders", "repush_orders_with_labels")
    inlines = (ShippingAddressInline, OrderLineInline)
    readonly_fields = ("shop", "order_number", "created_at", "updated_at", "shipment_overview", "sendcloud_call_log")
    fieldsets = (
        (None, {"fields": ("shop", "order_number", "type", "status", "payment_status", "currency")}),
        ("Sendcloud", {"fields": ("shipment_overview", "sendcloud_call_log")}),
        ("Customer", {"fields": ("customer_name", "customer_email", "customer_phone", "customer_company")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # -- columns

    @admin.display(description="shipment", ordering="shipment__state")
    def shipment_state(self, order: Order) -> str:
        shipment = _shipment(order)
        if shipment is None:
            return badge("not sent", "idle")
        return badge(shipment.get_state_display(), _STATE_TONES.get(ShipmentState(shipment.state), "idle"))

    @admin.display(description="failed in")
    def failure_phase(self, order: Order) -> str:
        shipment = _shipment(order)
        if shipment is None or shipment.state != ShipmentState.FAILED:
            return ""
        return shipment.get_failed_phase_display()

    @admin.display(description="last error")
    def short_error(self, order: Order) -> str:
        shipment = _shipment(order)
        if shipment is None or not shipment.last_error:
            return ""
        return format_html(
            '<span title="{}">{}</span>',
            shipment.last_error,
            Truncator(shipment.last_error).chars(ERROR_EXCERPT),
        )

    @admin.display(description="batch")
    def batch_link(self, order: Order) -> str:
        shipment = _shipment(order)
        if shipment is None or shipment.batch_id is None:
            return ""
        url = reverse("admin:sendcloud_integration_pushbatch_change", args=[shipment.batch_id])
        return format_html('<a href="{}">{}</a>', url, str(shipment.batch_id)[:8])

    @admin.display(description="tracking")
    def tracking(self, order: Order) -> str:
        shipment = _shipment(order)
        if shipment is None or not shipment.tracking_number:
            return ""
        if shipment.tracking_url:
            return format_html(
                '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
                shipment.tracking_url,
                shipment.tracking_number,
            )
        return shipment.tracking_number

    # -- detail

    @admin.display(description="shipment")
    def shipment_overview(self, order: Order) -> str:
        shipment = _shipment(order)
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
            ("Carrier", shipment.carrier),
            ("Tracking", self.tracking(order)),
            ("Queued at", _when(shipment.queued_at)),
            ("Pushed at", _when(shipment.pushed_at)),
            ("Labelled at", _when(shipment.labelled_at)),
            ("State changed at", _when(shipment.state_changed_at)),
        ]
        body = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((label, value) for label, value in rows if value != "")
        )
        return format_html('<table class="sc-history">{}</table>', body)

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
                    _when(call.created_at),
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
        return admin_views.can_repush(request.user)

    @admin.action(description="Re-push to Sendcloud", permissions=["repush"])
    def repush_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return admin_views.repush_action(self, request, queryset, create_label=False)

    @admin.action(description="Re-push to Sendcloud and create labels", permissions=["repush"])
    def repush_orders_with_labels(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return admin_views.repush_action(self, request, queryset, create_label=True)


# --- batches -------------------------------------------------------------------------------------------------


class PushChunkInline(admin.TabularInline):
    model = PushChunk
    extra = 0
    can_delete = False
    fields = ("number", "size", "status", "attempts", "last_error", "claimed_at", "finished_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PushChunk]:
        return super().get_queryset(request).select_related("batch")  # each row's title reads its batch

    def has_add_permission(self, request: HttpRequest, obj: PushBatch | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PushBatch | None = None) -> bool:
        return False


@admin.register(PushBatch)
class PushBatchAdmin(admin.ModelAdmin):
    """Batches are written by the pipeline only: here they are read, with live progress."""

    list_display = (
        "short_id",
        "shop",
        "status_badge",
        "progress",
        "queued_orders",
        "pushed",
        "labelled",
        "failed",
        "create_label",
        "started_by",
        "created_at",
    )
    list_select_related = ("shop", "started_by_user", "started_by_token")
    list_filter = ("status", "shop", "started_by_kind", "create_label", ("created_at", admin.DateFieldListFilter))
    list_per_page = 50
    inlines = (PushChunkInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "shop",
                    "status_badge",
                    "progress",
                    "create_label",
                    "started_by_detail",
                    "labels",
                )
            },
        ),
        (
            "Orders",
            {
                "fields": (
                    "order_links",
                    "requested_orders",
                    "new_orders",
                    "retry_orders",
                    "skipped_orders",
                    "queued_orders",
                    "total_chunks",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "started_at", "finished_at")}),
    )
    # A batch is a record of what happened: everything on its page is read-only.
    readonly_fields = tuple(name for _, options in fieldsets for name in cast(tuple[str, ...], options["fields"]))

    def get_queryset(self, request: HttpRequest) -> QuerySet[PushBatch]:
        return batches.with_state_counts(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PushBatch | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PushBatch | None = None) -> bool:
        return False  # the record of what was sent, and by whom

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        return [
            path(
                "dashboard/", site.admin_view(admin_views.dashboard_view(self)), name="sendcloud_integration_dashboard"
            ),
            path(
                "dashboard/progress.json",
                site.admin_view(admin_views.dashboard_progress_view(self)),
                name="sendcloud_integration_dashboard_progress",
            ),
            path(
                "repush/<str:key>/",
                site.admin_view(admin_views.repush_result_view(site)),
                name="sendcloud_integration_repush_result",
            ),
            path(
                "<uuid:object_id>/labels.pdf",
                site.admin_view(admin_views.batch_labels_view(self)),
                name="sendcloud_integration_pushbatch_labels",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, str] | None = None) -> HttpResponse:
        extra = {"dashboard_url": reverse("admin:sendcloud_integration_dashboard"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        batch = self.get_object(request, object_id)
        extra: dict[str, Any] = {
            "dashboard_url": reverse("admin:sendcloud_integration_dashboard"),
            "batch_active": batch is not None and batch.status not in FINISHED_BATCH_STATUSES,
            "refresh_seconds": admin_views.REFRESH_SECONDS,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)

    # -- columns and fields

    @admin.display(description="batch", ordering="created_at")
    def short_id(self, batch: PushBatch) -> str:
        return str(batch.pk)[:8]

    @admin.display(description="status", ordering="status")
    def status_badge(self, batch: PushBatch) -> str:
        return badge(batch.get_status_display(), _BATCH_TONES.get(BatchStatus(batch.status), "idle"))

    @admin.display(description="progress")
    def progress(self, batch: PushBatch) -> str:
        return progress_bar(dashboard.progress_of(batch))

    @admin.display(description="pushed")
    def pushed(self, batch: PushBatch) -> int:
        return dashboard.progress_of(batch).counts.pushed

    @admin.display(description="labelled")
    def labelled(self, batch: PushBatch) -> int:
        return dashboard.progress_of(batch).counts.labelled

    @admin.display(description="failed")
    def failed(self, batch: PushBatch) -> str:
        count = dashboard.progress_of(batch).counts.failed
        if not count:
            return "0"
        return format_html(
            '<a href="{}">{}</a>', orders_url(batch=str(batch.pk), state=ShipmentState.FAILED.value), count
        )

    @admin.display(description="started by")
    def started_by(self, batch: PushBatch) -> str:
        return batch.started_by_label or batch.get_started_by_kind_display()

    @admin.display(description="started by")
    def started_by_detail(self, batch: PushBatch) -> str:
        if batch.started_by_kind == StartedBy.API_TOKEN and batch.started_by_token_id:
            url = reverse("admin:webshop_apitoken_change", args=[batch.started_by_token_id])
            return format_html('<a href="{}">{}</a>', url, batch.started_by_label)
        if batch.started_by_kind == StartedBy.STAFF and batch.started_by_user_id:
            url = reverse("admin:auth_user_change", args=[batch.started_by_user_id])
            return format_html('<a href="{}">{}</a>', url, batch.started_by_label)
        return batch.started_by_label or batch.get_started_by_kind_display()

    @admin.display(description="orders by state")
    def order_links(self, batch: PushBatch) -> str:
        """Links into the order list, filtered on this batch and one state each, with live counts."""
        counts = dict(
            OrderShipment.objects.filter(batch=batch)
            .order_by()
            .values("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        links = [format_html('<a href="{}">all ({})</a>', orders_url(batch=str(batch.pk)), sum(counts.values()))]
        links += [
            format_html(
                '<a href="{}">{} ({})</a>',
                orders_url(batch=str(batch.pk), state=state.value),
                state.label,
                counts[state.value],
            )
            for state in ShipmentState
            if counts.get(state.value)
        ]
        note = ""
        if batch.status in FINISHED_BATCH_STATUSES:
            note = " · orders re-pushed since then are listed under their newer batch"
        return format_html("{}{}", SafeString(" · ".join(links)), note)

    @admin.display(description="labels")
    def labels(self, batch: PushBatch) -> str:
        if not batch.create_label:
            return "No labels were asked for in this batch."
        url = reverse("admin:sendcloud_integration_pushbatch_labels", args=[batch.pk])
        return format_html('<a class="button" href="{}">Download all labels (PDF)</a>', url)


# --- the integration ------------------------------------------------------------------------------------------


class WriteOnlyField(forms.CharField):
    """A field whose stored value is never sent to the browser; blank means "keep what is stored"."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data)


class SendcloudIntegrationForm(forms.ModelForm):
    secret_key = WriteOnlyField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: it is never shown again. Leave blank to keep the stored secret.",
    )
    integration_id = forms.IntegerField(min_value=1, help_text="The Sendcloud shop integration id.")
    sender_address_id = forms.IntegerField(min_value=1, required=False)

    class Meta:
        model = SendcloudIntegration
        fields = (
            "shop",
            "public_key",
            "secret_key",
            "integration_id",
            "sender_address_id",
            "shipping_option_code",
            "is_active",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.pop("secret_key", None)  # not even into the form's initial data
        if not self.instance.pk:
            self.fields["secret_key"].required = True
            self.fields["secret_key"].help_text = "Write-only: it is never shown again."

    def clean_secret_key(self) -> str:
        value: str = self.cleaned_data.get("secret_key") or ""
        if not value and self.instance.pk:
            return self.instance.secret_key
        return value


@admin.register(SendcloudIntegration)
class SendcloudIntegrationAdmin(admin.ModelAdmin):
    form = SendcloudIntegrationForm
    list_display = (
        "shop",
        "integration_id",
        "public_key",
        "secret",
        "is_active",
        "connection",
        "connection_checked_at",
    )
    list_select_related = ("shop",)
    list_filter = ("is_active", "is_connected")
    search_fields = ("shop__slug", "shop__name")
    readonly_fields = ("is_connected", "connection_error", "connection_checked_at", "created_at", "updated_at")

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "shop",
                    "public_key",
                    "secret_key",
                    "integration_id",
                    "sender_address_id",
                    "shipping_option_code",
                    "is_active",
                )
            },
        ),
        ("Connection", {"fields": readonly_fields}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: SendcloudIntegration | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return ("shop", *fields) if obj is not None else fields  # the integration belongs to its shop for good

    @admin.display(description="secret key")
    def secret(self, integration: SendcloudIntegration) -> str:
        return integration.masked_secret

    @admin.display(description="connection", ordering="is_connected")
    def connection(self, integration: SendcloudIntegration) -> str:
        if integration.is_connected:
            return badge("connected", "ok")
        return format_html(
            '<span title="{}">{}</span>', integration.connection_error, badge("credentials refused", "bad")
        )

    def save_model(
        self, request: HttpRequest, obj: SendcloudIntegration, form: forms.ModelForm[Any], change: bool
    ) -> None:
        """Save through ``configure_sendcloud``, which also clears a stale "refused" flag when keys change."""
        integration, _ = configure_sendcloud(
            shop=obj.shop,
            public_key=obj.public_key,
            secret_key=obj.secret_key,
            integration_id=obj.integration_id,
            sender_address_id=obj.sender_address_id,
            shipping_option_code=obj.shipping_option_code,
            active=obj.is_active,
        )
        obj.pk = integration.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/verify/",
                self.admin_site.admin_view(admin_views.verify_connection_view(self)),
                name="sendcloud_integration_sendcloudintegration_verify",
            ),
            *super().get_urls(),
        ]


# --- the call log ----------------------------------------------------------------------------------------------


@admin.register(SendcloudApiCall)
class SendcloudApiCallAdmin(admin.ModelAdmin):
    """Every HTTP call made to Sendcloud, as recorded by the client: read-only."""

    list_display = ("created_at", "method", "path", "status", "duration_ms", "shop", "batch_link", "short_error")
    list_select_related = ("shop",)
    list_filter = ("method", "status_code", "shop", ("created_at", admin.DateFieldListFilter))
    search_fields = ("path", "error")
    list_per_page = 100
    fields = ("created_at", "shop", "batch", "chunk_number", "method", "path", "status_code", "duration_ms", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SendcloudApiCall | None = None) -> bool:
        return False

    @admin.display(description="status", ordering="status_code")
    def status(self, call: SendcloudApiCall) -> str:
        if call.status_code is None:
            return badge("no answer", "bad")
        return badge(str(call.status_code), "ok" if call.status_code < 400 else "bad")

    @admin.display(description="batch")
    def batch_link(self, call: SendcloudApiCall) -> str:
        if call.batch_id is None:
            return ""
        url = reverse("admin:sendcloud_integration_pushbatch_change", args=[call.batch_id])
        return format_html('<a href="{}">{}</a>', url, str(call.batch_id)[:8])

    @admin.display(description="error")
    def short_error(self, call: SendcloudApiCall) -> str:
        return Truncator(call.error).chars(ERROR_EXCERPT) if call.error else ""
