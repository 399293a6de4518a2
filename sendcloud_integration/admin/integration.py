"""The shop's Sendcloud integration: write-only secret, and a "Verify connection" button."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path
from django.utils.html import format_html

from sendcloud_integration.admin import tracking
from sendcloud_integration.admin import views as admin_views
from sendcloud_integration.admin.display import (
    badge,
)
from sendcloud_integration.admin.shipping import shipping_methods_table
from sendcloud_integration.integration.services import configure_sendcloud
from sendcloud_integration.models import (
    SendcloudIntegration,
)
from sendcloud_integration.tracking import setup as tracking_setup
from wemasy.errors import ApplicationError

# --- the integration ------------------------------------------------------------------------------------------


class WriteOnlyField(forms.CharField):
    """A field whose stored value is never sent to the browser; blank means "keep what is stored"."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data)


#: The shop's customs defaults, used by an order that does not say (``sendcloud/shipping_data.customs``).
CUSTOMS_DEFAULTS = ("customs_shipment_type", "customs_export_type", "sender_eori_number", "sender_vat_number")


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
            *CUSTOMS_DEFAULTS,
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
        "webhook",
    )
    list_select_related = ("shop",)
    actions = ("turn_webhook_on", "turn_webhook_off", "read_webhook")
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
        ("Customs defaults (orders leaving the EU customs and VAT area)", {"fields": CUSTOMS_DEFAULTS}),
        ("Connection", {"fields": readonly_fields}),
        ("Webhook", {"fields": ("webhook", "webhook_url", "webhook_configured_at", "receiver_url")}),
        ("Shipping methods", {"fields": ("shipping_methods",)}),
    )

    @admin.display(description="shipping methods")
    def shipping_methods(self, integration: SendcloudIntegration) -> str:
        return shipping_methods_table(integration)

    def get_readonly_fields(self, request: HttpRequest, obj: SendcloudIntegration | None = None) -> tuple[str, ...]:
        webhook = ("webhook", "webhook_url", "webhook_configured_at", "receiver_url")
        fields = (*super().get_readonly_fields(request, obj), "shipping_methods", *webhook)
        if obj is not None and not self.has_change_permission(request, obj):
            fields = (*fields, "secret")
        return ("shop", *fields) if obj is not None else fields  # the integration belongs to its shop for good

    def get_fieldsets(self, request: HttpRequest, obj: SendcloudIntegration | None = None) -> Any:
        """For staff who may only look, the secret's field is replaced by its mask.

        Django renders every field of a view-only page as its value, which for ``secret_key`` would be
        the secret in plain text. Only the write-only form field of a user who may change may stand for it.
        """
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": tuple("secret" if f == "secret_key" else f for f in options["fields"])})
            for name, options in fieldsets
        ]

    @admin.display(description="webhook")
    def webhook(self, integration: SendcloudIntegration) -> str:
        return tracking.webhook_badge(integration)

    @admin.display(description="receiver URL (given to Sendcloud)")
    def receiver_url(self, integration: SendcloudIntegration) -> str:
        try:
            return tracking_setup.receiver_url(integration)
        except ApplicationError as exc:
            return exc.message

    @admin.action(description="Turn the webhook on in Sendcloud (status updates pushed here)")
    def turn_webhook_on(self, request: HttpRequest, queryset: QuerySet[SendcloudIntegration]) -> None:
        tracking.set_webhook_action(self, request, queryset, active=True)

    @admin.action(description="Turn the webhook off in Sendcloud (statuses are polled instead)")
    def turn_webhook_off(self, request: HttpRequest, queryset: QuerySet[SendcloudIntegration]) -> None:
        tracking.set_webhook_action(self, request, queryset, active=False)

    @admin.action(description="Read the webhook settings from Sendcloud")
    def read_webhook(self, request: HttpRequest, queryset: QuerySet[SendcloudIntegration]) -> None:
        tracking.set_webhook_action(self, request, queryset, active=None)

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
