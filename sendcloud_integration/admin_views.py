"""The custom staff views behind the admin: re-push confirmation and result, connection check,
the dashboard and its progress feed, and the merged labels of a batch.

Like the API views, these only translate: a re-push calls ``services.push_orders`` — the very
function the REST endpoint calls, first with ``dry_run=True`` for the confirmation page and then for
real — so staff see exactly the classification of push-api.md. The URLs are added by the model
admins in ``admin.py`` (``get_urls``) and wrapped in ``admin_site.admin_view``, which requires an
active staff user; each view then checks the model permission it needs.
"""

from __future__ import annotations

import importlib
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from sendcloud_integration import budget, dashboard
from sendcloud_integration.call_log import CallLog
from sendcloud_integration.client import AuthenticationError, SendcloudError
from sendcloud_integration.exceptions import PushRefused
from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.processing import build_client
from sendcloud_integration.services import Actor, PushResult, push_orders
from webshop.models import Order, Shop

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

#: ``app_label.codename`` of the permission that allows re-pushing (migration 0002).
REPUSH_PERMISSION = "sendcloud_integration.repush_ordershipment"

#: How many order numbers of one list a page shows; the counts are always complete.
LIST_DISPLAY_LIMIT = 1000

_SESSION_KEY = "sendcloud_repush_results"
_SESSION_KEEP = 5


def can_repush(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether this user may send orders to Sendcloud from the admin."""
    if not isinstance(user, PermissionsMixin):  # the anonymous user
        return False
    return bool(user.is_active and getattr(user, "is_staff", False) and user.has_perm(REPUSH_PERMISSION))


# --- re-push: confirmation, push, result ---------------------------------------------------------------


@dataclass
class ShopPush:
    """The orders of one shop in a re-push, and what the service made of them."""

    shop: Shop
    order_ids: list[int]
    result: PushResult | None = None
    error: str = ""

    @property
    def new(self) -> list[str]:
        return self.result.new if self.result else []

    @property
    def retry(self) -> list[str]:
        return self.result.retry if self.result else []

    @property
    def skipped(self) -> list[str]:
        return self.result.skipped if self.result else []


@dataclass
class RepushPlan:
    create_label: bool
    shops: list[ShopPush] = field(default_factory=list)

    @property
    def order_ids(self) -> list[int]:
        return [pk for push in self.shops for pk in push.order_ids]

    @property
    def queued_count(self) -> int:
        return sum(len(push.result.queued) for push in self.shops if push.result)

    @property
    def pushable(self) -> bool:
        return any(push.result is not None for push in self.shops)


def group_by_shop(order_ids: Sequence[int]) -> list[ShopPush]:
    """The selected orders grouped per shop (a push belongs to one shop), ids ascending: two queries.

    The order is fixed so that the confirmation's dry run and the push itself see the ids in the same
    order and therefore produce the same lists.
    """
    by_shop: dict[int, list[int]] = {}
    for pk, shop_id in (
        Order.objects.filter(pk__in=list(order_ids)).order_by("shop_id", "pk").values_list("pk", "shop_id")
    ):
        by_shop.setdefault(shop_id, []).append(pk)
    shops = Shop.objects.in_bulk(list(by_shop))
    return [ShopPush(shop=shops[shop_id], order_ids=ids) for shop_id, ids in by_shop.items()]


def _staff_actor(request: HttpRequest) -> Actor:
    return Actor.staff(cast("User", request.user))


def plan_repush(request: HttpRequest, order_ids: Sequence[int], *, create_label: bool, dry_run: bool) -> RepushPlan:
    """Run ``push_orders`` per shop (dry or for real); a shop the service refuses keeps its reason."""
    plan = RepushPlan(create_label=create_label, shops=group_by_shop(order_ids))
    actor = _staff_actor(request)
    for push in plan.shops:
        try:
            push.result = push_orders(
                shop=push.shop, order_ids=push.order_ids, create_label=create_label, actor=actor, dry_run=dry_run
            )
        except PushRefused as exc:  # IntegrationUnavailable, NoOrdersFound
            push.error = exc.message
    return plan


def repush_action(
    modeladmin: ModelAdmin[Order], request: HttpRequest, queryset: QuerySet[Order], *, create_label: bool
) -> HttpResponse | None:
    """The body of both re-push admin actions: confirmation page first, the push on confirm.

    The action is only offered to users with the re-push permission (``allowed_permissions``), and
    Django refuses a POST naming an action that is not offered; the check here is a second lock on
    the same door, for any other way in.
    """
    if not can_repush(request.user):
        raise PermissionDenied("You may not re-push orders to Sendcloud.")
    order_ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: settings.PUSH_MAX_ORDER_IDS + 1])
    if len(order_ids) > settings.PUSH_MAX_ORDER_IDS:
        modeladmin.message_user(
            request,
            f"Select at most {settings.PUSH_MAX_ORDER_IDS} orders per re-push "
            "(the same limit as the API); narrow the selection with the filters.",
            messages.ERROR,
        )
        return None

    confirmed = request.POST.get("post") == "yes"
    plan = plan_repush(request, order_ids, create_label=create_label, dry_run=not confirmed)
    for push in plan.shops:
        if push.error:
            modeladmin.message_user(request, f"{push.shop}: {push.error}", messages.ERROR)

    if confirmed:
        return _finish_repush(modeladmin, request, plan)
    if not plan.pushable:
        return None  # back to the list, where the error messages say why
    return _confirmation_page(modeladmin, request, plan)


def _confirmation_page(modeladmin: ModelAdmin[Order], request: HttpRequest, plan: RepushPlan) -> TemplateResponse:
    opts = modeladmin.model._meta
    action = request.POST.get("action", "")
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Re-push and create labels?" if plan.create_label else "Re-push to Sendcloud?",
        "subtitle": None,
        "opts": opts,
        "plan": plan,
        "action": action,
        "action_checkbox_name": "_selected_action",
        "display_limit": LIST_DISPLAY_LIMIT,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "sendcloud_integration/admin/repush_confirmation.html", context)


def _finish_repush(modeladmin: ModelAdmin[Order], request: HttpRequest, plan: RepushPlan) -> HttpResponse:
    """After the push: one message per batch, the full lists kept for the result page (PRG)."""
    for push in plan.shops:
        if push.result is None:
            continue
        if push.result.batch_id:
            url = reverse("admin:sendcloud_integration_pushbatch_change", args=[push.result.batch_id])
            modeladmin.message_user(
                request,
                format_html(
                    '{}: {} <a href="{}">Batch {}</a>', push.shop, push.result.message, url, push.result.batch_id
                ),
                messages.SUCCESS,
            )
        else:
            modeladmin.message_user(request, f"{push.shop}: {push.result.message}", messages.WARNING)
    if not plan.pushable:
        return HttpResponseRedirect(request.get_full_path())
    key = _remember_result(request, plan)
    return HttpResponseRedirect(reverse("admin:sendcloud_integration_repush_result", args=[key]))


def _remember_result(request: HttpRequest, plan: RepushPlan) -> str:
    """Keep the result in the session so that the result page survives a reload without pushing again."""
    shops: list[dict[str, Any]] = []
    for push in plan.shops:
        result = push.result
        shops.append(
            {
                "shop": str(push.shop),
                "error": push.error,
                "message": result.message if result else "",
                "new": result.new[:LIST_DISPLAY_LIMIT] if result else [],
                "new_count": len(result.new) if result else 0,
                "retry": result.retry[:LIST_DISPLAY_LIMIT] if result else [],
                "retry_count": len(result.retry) if result else 0,
                "skipped": result.skipped[:LIST_DISPLAY_LIMIT] if result else [],
                "skipped_count": len(result.skipped) if result else 0,
                "queued_count": len(result.queued) if result else 0,
                "total_chunks": result.total_chunks if result else 0,
                "batch_id": str(result.batch_id) if result and result.batch_id else None,
            }
        )
    stored: dict[str, Any] = dict(request.session.get(_SESSION_KEY, {}))
    key = uuid.uuid4().hex
    stored[key] = {"create_label": plan.create_label, "at": timezone.now().isoformat(), "shops": shops}
    request.session[_SESSION_KEY] = dict(list(stored.items())[-_SESSION_KEEP:])
    return key


def repush_result_view(admin_site: AdminSite) -> Callable[[HttpRequest, str], HttpResponse]:
    @require_GET
    def view(request: HttpRequest, key: str) -> HttpResponse:
        if not can_repush(request.user):
            raise PermissionDenied
        outcome = request.session.get(_SESSION_KEY, {}).get(key)
        if outcome is None:
            messages.warning(request, "That re-push result is no longer available; see the batches list.")
            return HttpResponseRedirect(reverse("admin:sendcloud_integration_pushbatch_changelist"))
        for shop in outcome["shops"]:
            if shop["batch_id"]:
                shop["batch_url"] = reverse("admin:sendcloud_integration_pushbatch_change", args=[shop["batch_id"]])
        context = {
            **admin_site.each_context(request),
            "title": "Re-push result",
            "subtitle": None,
            "opts": PushBatch._meta,
            "outcome": outcome,
            "orders_url": reverse("admin:webshop_order_changelist"),
        }
        request.current_app = admin_site.name
        return TemplateResponse(request, "sendcloud_integration/admin/repush_result.html", context)

    return view


# --- connection check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of asking Sendcloud whether the stored credentials work, for a person to read."""

    level: int  # a ``django.contrib.messages`` level
    message: str


def verify_connection(integration: SendcloudIntegration) -> ConnectionCheck:
    """Call Sendcloud's cheapest authenticated endpoint with the stored keys and record the answer.

    Only a clear refusal (401/403) marks the integration as not connected, as the chunk worker does;
    a timeout or 5xx says nothing about the keys, so it is reported and the stored state is kept.
    The call goes through the shared request budget and is written to the API-call log like any
    other. The keys stay inside the client: messages and logs carry Sendcloud's answer only.

    (A write, kept here next to its only caller; it belongs with ``integration_services`` once that
    module grows a place for it.)
    """
    wait = budget.take(public_key=integration.public_key, kind=budget.Kind.SAFE)
    if wait:
        return ConnectionCheck(
            messages.WARNING,
            f"The Sendcloud request budget of this account is spent; try again in {math.ceil(wait)} s.",
        )
    call_log = CallLog(shop_id=integration.shop_id)
    client = build_client(integration, call_log)
    now = timezone.now()
    try:
        found = client.list_integrations()
    except AuthenticationError as exc:
        SendcloudIntegration.objects.filter(pk=integration.pk).update(
            is_connected=False, connection_error=exc.message[:2000], connection_checked_at=now
        )
        logger.warning("shop=%s connection check: Sendcloud refused the credentials", integration.shop_id)
        return ConnectionCheck(messages.ERROR, f"Sendcloud refused the credentials: {exc.message}")
    except SendcloudError as exc:
        logger.warning("shop=%s connection check inconclusive: %s", integration.shop_id, exc.message)
        return ConnectionCheck(
            messages.WARNING,
            f"Could not verify the connection (the stored state is unchanged): {exc.message}",
        )
    finally:
        call_log.flush()

    SendcloudIntegration.objects.filter(pk=integration.pk).update(
        is_connected=True, connection_error="", connection_checked_at=now
    )
    listed = {str(item.get("id")): str(item.get("shop_name") or "") for item in found}
    names = ", ".join(f"{pk} ({name})" if name else pk for pk, name in listed.items()) or "none"
    if str(integration.integration_id) not in listed:
        return ConnectionCheck(
            messages.WARNING,
            f"Sendcloud accepted the credentials, but integration {integration.integration_id} is not one of "
            f"this account's integrations: {names}. Orders pushed now will be refused.",
        )
    return ConnectionCheck(
        messages.SUCCESS,
        f"Sendcloud accepted the credentials. Integrations on this account: {names}.",
    )


def verify_connection_view(model_admin: ModelAdmin[SendcloudIntegration]) -> Callable[[HttpRequest, str], HttpResponse]:
    @require_POST
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        integration = get_object_or_404(SendcloudIntegration.objects.select_related("shop"), pk=object_id)
        if not model_admin.has_change_permission(request, integration):
            raise PermissionDenied
        check = verify_connection(integration)
        messages.add_message(request, check.level, check.message)
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


# --- merged labels ----------------------------------------------------------------------------------------

PDF_MODULE = "sendcloud_integration.pdf"


def _merge_pdfs() -> Callable[[list[Any]], Any] | None:
    """``sendcloud_integration.pdf.merge_pdfs`` when the label pipeline provides it, else None."""
    try:
        module = importlib.import_module(PDF_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != PDF_MODULE:
            raise
        return None
    merge = getattr(module, "merge_pdfs", None)
    return merge if callable(merge) else None


def labels_available() -> bool:
    return _merge_pdfs() is not None


def batch_labels_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest, str], HttpResponseBase]:
    """All labels of a batch as one PDF, merged by ``sendcloud_integration.pdf.merge_pdfs``."""

    @require_GET
    def view(request: HttpRequest, object_id: str) -> HttpResponseBase:
        batch = get_object_or_404(PushBatch, pk=object_id)
        if not model_admin.has_view_permission(request, batch):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:sendcloud_integration_pushbatch_change", args=[batch.pk]))
        merge = _merge_pdfs()
        if merge is None:
            messages.warning(
                request,
                "Merged label PDFs are not available yet: this installation has no label merging "
                f"({PDF_MODULE}.merge_pdfs).",
            )
            return back
        files = [
            shipment.label_file
            for shipment in OrderShipment.objects.filter(batch=batch, state=ShipmentState.LABELLED)
            .exclude(label_file="")
            .order_by("chunk_number", "pk")
            .only("pk", "label_file")
        ]
        if not files:
            messages.warning(request, "This batch has no labels yet.")
            return back
        merged = merge(files)
        filename = f"labels-{batch.pk}.pdf"
        if isinstance(merged, bytes | bytearray):
            response = HttpResponse(bytes(merged), content_type="application/pdf")
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        return FileResponse(merged, as_attachment=True, filename=filename, content_type="application/pdf")

    return view
