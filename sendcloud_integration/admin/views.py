"""The custom staff views behind the admin: re-push confirmation and result, connection check,
the dashboard and its progress feed, and the merged labels of a batch.

Like the API views, these only translate: a re-push calls ``services.push_orders`` — the very
function the REST endpoint calls, first with ``dry_run=True`` for the confirmation page and then for
real — so staff see exactly the classification of push-api.md. The URLs are added by the model
admins in ``admin.py`` (``get_urls``) and wrapped in ``admin_site.admin_view``, which requires an
active staff user; each view then checks the model permission it needs.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.db.models import FileField, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from pypdf.errors import PdfReadError

from sendcloud_integration.exceptions import PushRefused
from sendcloud_integration.integration.services import CheckOutcome, verify_connection
from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentState
from sendcloud_integration.printing import merge as pdf
from sendcloud_integration.push.services import Actor, PushResult, push_orders
from sendcloud_integration.selectors import batches as selectors
from sendcloud_integration.selectors import dashboard
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

_CHECK_LEVELS = {
    CheckOutcome.CONNECTED: messages.SUCCESS,
    CheckOutcome.WRONG_INTEGRATION: messages.WARNING,
    CheckOutcome.INCONCLUSIVE: messages.WARNING,
    CheckOutcome.REFUSED: messages.ERROR,
}


def verify_connection_view(model_admin: ModelAdmin[SendcloudIntegration]) -> Callable[[HttpRequest, str], HttpResponse]:
    @require_POST
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        integration = get_object_or_404(SendcloudIntegration.objects.select_related("shop"), pk=object_id)
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

#: Above this size the merged PDF is spooled to a temporary file rather than kept in memory.
PDF_SPOOL_MAX_MEMORY = 8 * 1024 * 1024


def batch_labels_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest, str], HttpResponseBase]:
    """All labels of a batch as one PDF, for staff: the API's merge (same files, same order).

    The API route serves the same PDF but only to the shop's Bearer tokens, so staff get their own
    door. The files are opened one at a time and the result is spooled to disk when large (see
    ``sendcloud_integration.pdf``). A label that cannot be read stops the merge with a message:
    a printout silently missing a label is worse than none.
    """

    @require_GET
    def view(request: HttpRequest, object_id: str) -> HttpResponseBase:
        batch = get_object_or_404(PushBatch, pk=object_id)
        if not model_admin.has_view_permission(request, batch):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:sendcloud_integration_pushbatch_change", args=[batch.pk]))
        names = selectors.batch_label_names(batch=batch)
        if not names:
            messages.warning(request, "This batch has no labels yet.")
            return back
        storage = cast(FileField, OrderShipment._meta.get_field("label_file")).storage
        # Not a ``with``: the response streams the file and closes it when it is done.
        output = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=PDF_SPOOL_MAX_MEMORY))  # noqa: SIM115
        try:
            pdf.write_merged_pdf(pdf.iter_stored_files(names, storage=storage), output)
        except (OSError, PdfReadError) as exc:
            output.close()
            logger.warning("batch=%s labels could not be merged: %s", batch.pk, type(exc).__name__)
            messages.error(
                request,
                f"A label of this batch could not be read ({type(exc).__name__}); no merged PDF was made.",
            )
            return back
        except BaseException:
            output.close()
            raise
        output.seek(0)
        return FileResponse(
            output, as_attachment=True, filename=f"labels-{batch.pk}.pdf", content_type="application/pdf"
        )

    return view
