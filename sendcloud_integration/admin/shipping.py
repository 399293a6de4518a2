"""Staff pages for shipping data: change one order's method, weight and parcels; the shop's shipping methods.

The order form calls ``shipping.orders.update_order_shipping``, the service behind the API's
``update-order``: the same refusals (a label exists, a batch is working on the order), the same checks
against the method, and the same upsert in Sendcloud when the order is already there. The methods come
from the stored catalogue (``selectors.integration``); the form offers the available ones.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from sendcloud_integration.admin.display import show_error
from sendcloud_integration.admin.views import object_or_404
from sendcloud_integration.limits import MAX_PARCELS_PER_SHIPMENT
from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from sendcloud_integration.selectors.integration import integration_of, shipping_options_of
from sendcloud_integration.shipping.orders import update_order_shipping
from webshop.models import Order
from wemasy.errors import ApplicationError

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


class OrderShippingForm(forms.Form):
    shipping_method = forms.ModelChoiceField(queryset=ShippingOption.objects.none(), empty_label=None)
    weight_kg = forms.DecimalField(min_value=Decimal("0.001"), max_digits=10, decimal_places=3, label="Weight (kg)")
    parcels = forms.IntegerField(min_value=1, max_value=MAX_PARCELS_PER_SHIPMENT, label="Number of parcels")

    def __init__(self, *args: Any, options: list[ShippingOption], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["shipping_method"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ShippingOption.objects.filter(pk__in=[o.pk for o in options if o.is_available]).order_by(
            "carrier_code", "code"
        )


def order_shipping_view(model_admin: ModelAdmin[Order]) -> Callable[[HttpRequest, str], HttpResponse]:
    """``<order>/shipping/``: the form; on a valid post, the service, then back to the order with its message."""

    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        order = object_or_404(model_admin, request, object_id)
        if not model_admin.has_change_permission(request, order):
            raise PermissionDenied
        integration = integration_of(shop=order.shop)
        options = shipping_options_of(integration=integration) if integration else []
        change_url = reverse("admin:webshop_order_change", args=[order.pk])
        parcel_count = max(1, order.parcels.count())
        initial = {
            "shipping_method": next(
                (o for o in options if o.code == (order.shipping_option_code or _default(integration))), None
            ),
            "weight_kg": order.weight_kg,
            "parcels": parcel_count,
        }
        form = OrderShippingForm(request.POST or None, options=options, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                update = update_order_shipping(
                    shop=order.shop,
                    order_id=order.pk,
                    option_id=form.cleaned_data["shipping_method"].pk,
                    weight_kg=form.cleaned_data["weight_kg"],
                    parcels=form.cleaned_data["parcels"],
                )
            except ApplicationError as exc:
                show_error(request, exc)
            else:
                messages.success(request, update.message)
                return HttpResponseRedirect(change_url)
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Shipping data of order {order.order_number}",
            "subtitle": None,
            "opts": Order._meta,
            "original": order,
            "form": form,
            "has_catalogue": bool(options),
            "change_url": change_url,
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "sendcloud_integration/admin/order_shipping.html", context)

    return view


def _default(integration: SendcloudIntegration | None) -> str:
    return integration.shipping_option_code if integration is not None else ""


def shipping_methods_table(integration: SendcloudIntegration) -> str:
    """The integration's catalogue as a table for its admin page (no call to Sendcloud)."""
    options = shipping_options_of(integration=integration)
    if not options:
        return "Not read from Sendcloud yet: the shipping-methods endpoint reads it on first use."
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                option.pk,
                option.code,
                option.name,
                option.carrier_name or option.carrier_code,
                _range(option),
                ", ".join(option.countries),
                ("yes" if option.is_available else "no longer offered")
                + (" · default" if option.code == integration.shipping_option_code else ""),
            )
            for option in options
        ),
    )
    return format_html(
        '<table class="sc-shipping-methods"><thead><tr><th>Id</th><th>Code</th><th>Name</th><th>Carrier</th>'
        "<th>Weight</th><th>Ships to</th><th>Available</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _range(option: ShippingOption) -> str:
    low = f"{option.min_weight_kg:.3f}" if option.min_weight_kg is not None else "0"
    high = f"{option.max_weight_kg:.3f}" if option.max_weight_kg is not None else "any"
    return f"{low} to {high} kg"


@admin.register(ShippingOption)
class ShippingOptionAdmin(admin.ModelAdmin):
    """The catalogues, read-only: they are Sendcloud's, synced by the shipping-methods endpoint."""

    list_display = ("id", "code", "name", "carrier_name", "min_weight_kg", "max_weight_kg", "is_available", "shop")
    list_filter = ("is_available", "carrier_code", "integration__shop")
    search_fields = ("code", "name", "integration__shop__slug")
    list_select_related = ("integration__shop",)

    @admin.display(description="shop")
    def shop(self, option: ShippingOption) -> str:
        return str(option.integration.shop)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
