"""The custom staff views behind the admin: the connection check, the dashboard and its progress feed
(the re-push flow is in ``repush``, a batch's Print page and documents in ``printing``).

Like the API views, these only translate. The URLs are added by the model admins (``get_urls``) and
wrapped in ``admin_site.admin_view``, which requires an active staff user; each view then checks the
model permission it needs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from sendcloud_integration.integration.services import CheckOutcome, verify_connection
from sendcloud_integration.models import PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.selectors import dashboard
from webshop.models import Shop

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Model)


def object_or_404(model_admin: ModelAdmin[M], request: HttpRequest, object_id: object) -> M:
    """The admin's object for an id from the URL, or a 404 — also for an id of the wrong shape.

    The routes take any path segment as the id (as the admin's own do); ``ModelAdmin.get_object``
    treats a malformed one (``abc`` for an integer key) as "no such object" rather than an error.
    """
    obj = model_admin.get_object(request, unquote(str(object_id)))
    if obj is None:
        raise Http404("No such object.")
    return obj


# --- connection check ---------------------------------------------------------------------------------

_CHECK_LEVELS = {
    CheckOutcome.CONNECTED: messages.SUCCESS,
    CheckOutcome.WRONG_INTEGRATION: messages.WARNING,
    CheckOutcome.INCONCLUSIVE: messages.WARNING,
    CheckOutcome.REFUSED: messages.ERROR,
}


def verify_connection_view(model_admin: ModelAdmin[SendcloudIntegration]) -> Callable[[HttpRequest, str], HttpResponse]:
    @require_POST
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        integration = object_or_404(model_admin, request, object_id)
        if not model_admin.has_change_permission(request, integration):
            raise PermissionDenied
        check = verify_connection(integration=integration)
        messages.add_message(request, _CHECK_LEVELS[check.outcome], check.message)
        return HttpResponseRedirect(
            reverse("admin:sendcloud_integration_sendcloudintegration_change", args=[object_id])
        )

    return view


# --- dashboard ----------------------------------------------------------------------------------------------

#: Seconds between two progress reads while a batch runs.
REFRESH_SECONDS = 3


def dashboard_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest], HttpResponse]:
    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        shop_ids: list[int] | None = None
        selected = request.GET.get("shop", "")
        if selected.isdigit():
            shop_ids = [int(selected)]
        overviews = dashboard.shop_overviews(shop_ids=shop_ids)
        active = [str(p.batch.pk) for o in overviews for p in o.batches if p.is_active]
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Sendcloud dashboard",
            "subtitle": None,
            "opts": PushBatch._meta,
            "overviews": overviews,
            "shops": Shop.objects.order_by("name", "slug").values_list("pk", "name"),
            "selected_shop": selected,
            "active_batch_ids": active,
            "refresh_seconds": REFRESH_SECONDS,
            "progress_url": reverse("admin:sendcloud_integration_dashboard_progress"),
            "dashboard_refresh": {
                "ids": active,
                "url": reverse("admin:sendcloud_integration_dashboard_progress"),
                "seconds": REFRESH_SECONDS,
            },
            "orders_url": reverse("admin:webshop_order_changelist"),
            "failed_state": ShipmentState.FAILED.value,
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "sendcloud_integration/admin/dashboard.html", context)

    return view


def dashboard_progress_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest], HttpResponse]:
    """``?id=…&id=…`` → the batches' progress as JSON, for the dashboard to poll while they run."""

    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        ids: list[uuid.UUID] = []
        for raw in request.GET.getlist("id")[:50]:
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                continue
        progress = dashboard.batches_progress(ids) if ids else []
        return JsonResponse({"batches": [p.as_json() for p in progress]})

    return view
