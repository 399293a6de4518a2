"""Staff pages for the shop domain: shops and their API tokens.

Tokens are issued and revoked through ``webshop.services`` — the same functions the
``create_api_token`` command uses — so the rules (known scopes, revoking keeps the first time) hold
here too. A token's raw value exists only in the response to its creation; its hash is never shown.

Orders are registered by ``sendcloud_integration.admin``: what staff need on an order page is its
Sendcloud history, and this app does not import that one.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from webshop.models import ApiToken, Scope, Shop
from webshop.services import create_api_token, revoke_api_token

logger = logging.getLogger(__name__)

#: How long a new token's raw value waits in the cache for the page that shows it (deleted when shown).
_SHOWN_WITHIN = 120


def _cache_key(key: str) -> str:
    return f"webshop:issued-token:{key}"


#: Where the raw value of a token issued in this request waits for ``response_add`` (this request only).
_ISSUED_TOKEN = "webshop.issued_token"  # noqa: S105 - a META key, not a secret


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active", "created_at", "links")
    list_filter = ("is_active",)
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="see")
    def links(self, shop: Shop) -> str:
        orders = reverse("admin:webshop_order_changelist") + "?" + urlencode({"shop__id__exact": shop.pk})
        tokens = reverse("admin:webshop_apitoken_changelist") + "?" + urlencode({"shop__id__exact": shop.pk})
        return format_html('<a href="{}">orders</a> · <a href="{}">tokens</a>', orders, tokens)


class ApiTokenForm(forms.ModelForm):
    """Scopes as checkboxes of the known scopes: a misspelt scope would grant nothing, silently."""

    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.SHIPMENTS_PUSH.value],
    )

    class Meta:
        model = ApiToken
        fields = ("shop", "name", "scopes")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("prefix_display", "name", "shop", "scope_list", "created_at", "last_used_at", "revoked")
    list_select_related = ("shop",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "shop")
    search_fields = ("prefix", "name", "shop__slug")
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("shop", "name", "scopes")
        return ("shop", "name", "scopes", "prefix_display", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # The hash is not listed anywhere: it is no use to a person and only helps an attacker.
        return ("shop", "prefix_display", "created_at", "last_used_at", "revoked_at")

    def save_form(self, request: HttpRequest, form: forms.ModelForm[Any], change: bool) -> Any:
        """On add, the token is issued here by the service; ``response_add`` shows its raw value, once."""
        if change:
            return super().save_form(request, form, change)
        issued = create_api_token(
            shop=form.cleaned_data["shop"], name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        # Held on this request only, for ``response_add`` to show: never in a message, which would keep it
        # in the session (the database) until the next page is shown, and for weeks if it never is.
        request.META[_ISSUED_TOKEN] = issued.raw
        return issued.token

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        """Redirect to a page that shows the raw token once (post/redirect/get: a reload issues no new token).

        The value waits for that page in the cache under a random single-use key, for at most
        ``_SHOWN_WITHIN`` seconds, and is deleted when shown; it is never in a message or the session.
        """
        raw = request.META.pop(_ISSUED_TOKEN, None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        key = secrets.token_urlsafe(24)
        try:
            cache.set(_cache_key(key), (request.user.pk, obj.pk, raw), timeout=_SHOWN_WITHIN)
        except Exception:  # the cache is down: show it on this answer rather than lose it
            logger.warning("token %s created; the cache is unavailable, so it is shown without a redirect", obj.prefix)
            return self._created_page(request, obj, raw)
        return HttpResponseRedirect(reverse("admin:webshop_apitoken_created", args=[key]))

    def created_view(self, request: HttpRequest, key: str) -> HttpResponse:
        """The raw value of a token just created by this user, once; afterwards only a note that it was shown."""
        stored = cache.get(_cache_key(key))
        cache.delete(_cache_key(key))
        if stored is None or stored[0] != request.user.pk:
            messages.warning(request, "That token was already shown once; its value cannot be shown again.")
            return HttpResponseRedirect(reverse("admin:webshop_apitoken_changelist"))
        _, token_pk, raw = stored
        return self._created_page(request, ApiToken.objects.select_related("shop").get(pk=token_pk), raw)

    def _created_page(self, request: HttpRequest, obj: ApiToken, raw: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "subtitle": None,
            "opts": self.opts,
            "token": obj,
            "raw_token": raw,
            "changelist_url": reverse("admin:webshop_apitoken_changelist"),
        }
        response = TemplateResponse(request, "webshop/admin/token_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self) -> list[URLPattern]:
        created = path(
            "created/<str:key>/",
            self.admin_site.admin_view(self.created_view),
            name="webshop_apitoken_created",
        )
        return [created, *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm[Any], change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        # On add, ``save_form`` already stored it through the service.

    def save_related(self, request: HttpRequest, form: forms.ModelForm[Any], formsets: Any, change: bool) -> None:
        if change:  # a token has no many-to-many fields or inlines; on add the form never saved anything
            super().save_related(request, form, formsets, change)

    @admin.display(description="prefix", ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes or [])

    @admin.display(description="revoked", boolean=True, ordering="revoked_at")
    def revoked(self, token: ApiToken) -> bool:
        return token.is_revoked

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            revoke_api_token(token=token)
        self.message_user(
            request,
            f"Revoked {len(tokens)} token{'s' if len(tokens) != 1 else ''}; requests with them are now refused (401).",
            messages.SUCCESS,
        )
