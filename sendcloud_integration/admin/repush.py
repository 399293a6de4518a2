"""The re-push flow for staff: an admin action with a confirmation page (a dry run), the push, a result page.

Only translation happens here: ``push.repush.repush_orders`` does the work, with ``push_orders`` per shop.
The result is kept in the session until shown (post/redirect/get), so a reload never pushes again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from sendcloud_integration.models import PushBatch
from sendcloud_integration.push.repush import RepushPlan, repush_orders
from sendcloud_integration.push.services import Actor
from webshop.models import Order

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django.contrib.auth.models import User


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
    plan = repush_orders(
        order_ids=order_ids,
        create_label=create_label,
        actor=Actor.staff(cast("User", request.user)),
        dry_run=not confirmed,
    )
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
