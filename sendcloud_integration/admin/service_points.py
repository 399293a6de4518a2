"""Staff page to pick or change an order's service point, and the order page's service point and customs rows.

The page searches Sendcloud's points near the order's address (``shipping.service_points.find_service_points``,
the service behind the API's service-point search: the read budget, the short cache) and saves the chosen
one with ``set_service_point`` (refused while a batch works on the order or once it has a label). A point
can also be typed in by its id; clearing every field delivers the order to its address again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from sendcloud_integration.admin.display import show_error
from sendcloud_integration.admin.views import object_or_404
from sendcloud_integration.selectors.integration import integration_of
from sendcloud_integration.sendcloud.shipping_data import customs
from sendcloud_integration.sendcloud.types import ServicePointInfo
from sendcloud_integration.shipping.service_points import ServicePointQuery, find_service_points, set_service_point
from webshop.models import Order
from wemasy.errors import ApplicationError

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


class ServicePointForm(forms.Form):
    service_point_id = forms.CharField(max_length=32, required=False, label="Sendcloud service point id")
    service_point_carrier_id = forms.CharField(max_length=64, required=False, label="Carrier's point id")
    service_point_post_number = forms.CharField(max_length=32, required=False, label="Post number (lockers)")


def _search(request: HttpRequest, order: Order) -> tuple[list[ServicePointInfo], str]:
    """The points near the order's address (or the searched postal code), and a problem to show, if any."""
    try:
        address = order.shipping_address
    except ObjectDoesNotExist:
        return [], "The order has no address to search near."
    postal_code = (request.GET.get("postal_code") or address.postal_code).strip()
    if not postal_code:
        return [], ""
    query = ServicePointQuery(country=address.country.strip().upper(), postal_code=postal_code)
    try:
        return find_service_points(shop=order.shop, query=query).points, ""
    except ApplicationError as exc:
        return [], exc.message


def order_service_point_view(model_admin: ModelAdmin[Order]) -> Callable[[HttpRequest, str], HttpResponse]:
    """``<order>/service-point/``: nearby points to pick from, or the ids typed in; then back to the order."""

    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        order = object_or_404(model_admin, request, object_id)
        if not model_admin.has_change_permission(request, order):
            raise PermissionDenied
        change_url = reverse("admin:webshop_order_change", args=[order.pk])
        initial = {
            "service_point_id": order.service_point_id,
            "service_point_carrier_id": order.service_point_carrier_id,
            "service_point_post_number": order.service_point_post_number,
        }
        form = ServicePointForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                set_service_point(
                    order=order,
                    point_id=form.cleaned_data["service_point_id"],
                    carrier_point_id=form.cleaned_data["service_point_carrier_id"],
                    post_number=form.cleaned_data["service_point_post_number"],
                )
            except ApplicationError as exc:
                show_error(request, exc)
            else:
                messages.success(request, "Service point saved; the next push sends it to Sendcloud.")
                return HttpResponseRedirect(change_url)
        points, problem = _search(request, order) if request.method == "GET" else ([], "")
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Service point of order {order.order_number}",
            "subtitle": None,
            "opts": Order._meta,
            "original": order,
            "form": form,
            "points": points,
            "problem": problem,
            "change_url": change_url,
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "sendcloud_integration/admin/order_service_point.html", context)

    return view


def service_point_overview(order: Order) -> str:
    """The order's service point (or "the address"), with the link to change it."""
    link = format_html(
        '<a class="sc-change-service-point" href="{}">Change service point</a>',
        reverse("admin:webshop_order_service_point", args=[order.pk]),
    )
    if not order.has_service_point:
        return format_html("Delivered to the address. {}", link)
    rows = [
        ("Sendcloud id", order.service_point_id),
        ("Carrier's id", order.service_point_carrier_id),
        ("Post number", order.service_point_post_number),
    ]
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in rows if v))
    return format_html('<table class="sc-history">{}</table>{}', body, link)


def customs_overview(order: Order) -> str:
    """What customs get for this order, with the shop's defaults applied; or why none are needed."""
    declared = customs(order, integration_of(shop=order.shop))
    if declared is None:
        return "No customs data needed (the address is inside the EU customs and VAT area)."
    rows: list[tuple[str, Any]] = [
        ("Destination", declared.destination),
        ("Invoice number", declared.invoice_number or "missing"),
        ("Shipment type", declared.shipment_type or "missing"),
        ("Export type", declared.export_type or "missing"),
        ("Sender EORI / VAT", " / ".join(v for v in (declared.sender_eori, declared.sender_vat) if v) or "none"),
        ("Receiver EORI / VAT", " / ".join(v for v in (declared.receiver_eori, declared.receiver_vat) if v) or "none"),
    ]
    lines = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} kg</td></tr>",
        (
            (
                n,
                line.sku or line.name,
                line.hs_code or "missing",
                line.origin_country or "missing",
                line.unit_price,
                line.weight_kg,
            )
            for n, line in enumerate(order.lines.all(), start=1)
        ),
    )
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    return format_html(
        '<table class="sc-history">{}</table><table class="sc-history"><thead><tr><th>Line</th><th>Item</th>'
        "<th>HS code</th><th>Origin</th><th>Value</th><th>Weight</th></tr></thead><tbody>{}</tbody></table>",
        body,
        lines,
    )
