"""Bearer-token authentication for the API: ``Authorization: Bearer wms_<prefix>_<secret>``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from webshop.models import ApiToken, Shop

#: ``last_used_at`` is refreshed at most this often, so a busy client does not cost a write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ShopPrincipal:
    """``request.user`` for an API call: the shop acting through one of its tokens."""

    token: ApiToken

    is_authenticated = True
    is_anonymous = False

    @property
    def shop(self) -> Shop:
        return self.token.shop

    @property
    def pk(self) -> int:
        return self.token.pk

    def __str__(self) -> str:
        return f"token {self.token.prefix} of shop {self.token.shop.slug}"


class BearerTokenAuthentication(BaseAuthentication):
    """Looks the token up by its prefix and compares hashes in constant time.

    No header means "anonymous" (DRF then answers 401 through ``IsAuthenticated``); a header that is
    malformed, unknown or revoked is a 401 straight away. Being first in the list makes DRF send
    ``WWW-Authenticate: Bearer``, which is what turns a refusal into 401 instead of 403.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ShopPrincipal, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            ) from None
        token = self._find(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        self._touch(token)
        return ShopPrincipal(token), token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'

    @staticmethod
    def _find(raw: str) -> ApiToken | None:
        prefix = ApiToken.prefix_of(raw)
        if prefix is None:
            return None
        token = ApiToken.objects.select_related("shop").filter(prefix=prefix).first()
        if token is None or token.is_revoked or not token.matches(raw):
            return None
        return token

    @staticmethod
    def _touch(token: ApiToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
