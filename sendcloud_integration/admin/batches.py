"""Push batches: progress, chunks, their orders, the merged labels PDF and the staff dashboard."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from sendcloud_integration.admin import printing, repush
from sendcloud_integration.admin import views as admin_views
from sendcloud_integration.admin.display import (
    BATCH_TONES,
    badge,
    orders_url,
    progress_bar,
)
from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    BatchStatus,
    OrderShipment,
    PushBatch,
    PushChunk,
    ShipmentState,
    StartedBy,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.selectors import dashboard

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
                site.admin_view(repush.repush_result_view(site)),
                name="sendcloud_integration_repush_result",
            ),
            path(
                "<uuid:object_id>/labels/",
                site.admin_view(printing.labels_view(self)),
                name="sendcloud_integration_pushbatch_labels",
            ),
            path(
                "<uuid:object_id>/print/",
                site.admin_view(printing.print_view(self)),
                name="sendcloud_integration_pushbatch_print",
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
        return badge(batch.get_status_display(), BATCH_TONES.get(BatchStatus(batch.status), "idle"))

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
        return format_html(
            '<a class="button" href="{}">Download all labels</a> <a class="button" href="{}">Print…</a>',
            printing.download_url(batch),
            printing.print_url(batch),
        )
