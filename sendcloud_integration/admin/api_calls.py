"""The Sendcloud call log: every HTTP call made, with what Sendcloud answered (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from sendcloud_integration.admin.display import (
    ERROR_EXCERPT,
    badge,
)
from sendcloud_integration.models import (
    SendcloudApiCall,
)

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
