"""Authorisation: a token may act only within its scopes, and only while its shop is enabled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

from webshop.models import ApiToken

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class HasTokenScope(BasePermission):
    """Grants access when the token has the view's ``required_scope`` and its shop is active."""

    message = "This API token may not perform this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if not token.shop.is_active:
            self.message = "This shop is disabled."
            return False
        scope: str | None = getattr(view, "required_scope", None)
        if scope and not token.has_scope(scope):
            self.message = f"This API token lacks the {scope} scope."
            return False
        return True
