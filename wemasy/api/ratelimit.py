"""Per-client request limits for the API, counted atomically in the shared cache.

Authenticated calls are counted per token, anonymous ones (and bad tokens) per client IP. The
counting itself is django-ratelimit's fixed window (``cache.add`` + ``cache.incr``, atomic on Redis),
so the limit is exact across every web process on every machine. The outcome of the count is kept on
the request, where ``RateLimitHeadersMiddleware`` turns it into ``X-RateLimit-*`` headers on every
response, errors included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from webshop.models import ApiToken
from wemasy.api.clientip import client_ip

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes: keep this import type-only
    from rest_framework.request import Request
    from rest_framework.views import APIView

WINDOW_SECONDS = 60
USAGE_ATTR = "api_rate_usage"


@dataclass(frozen=True)
class Usage:
    limit: int
    remaining: int
    reset_in: int
    exceeded: bool


def client_key(request: HttpRequest, token: ApiToken | None) -> str:
    if token is not None:
        return f"token:{token.pk}"
    return f"ip:{client_ip(request)}"


def count_request(request: HttpRequest, token: ApiToken | None) -> Usage:
    """Count this request against its client's window once, and remember the outcome on it."""
    existing: Usage | None = getattr(request, USAGE_ATTR, None)
    if existing is not None:
        return existing
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    key = client_key(request, token)
    usage = get_usage(
        request,
        group="api",
        key=lambda _group, _request: key,
        rate=f"{limit}/{WINDOW_SECONDS}s",
        increment=True,
    )
    assert usage is not None  # only None when the method is excluded, and we count every method
    result = Usage(
        limit=limit,
        remaining=max(0, limit - usage["count"]),
        reset_in=max(1, math.ceil(usage["time_left"])),
        exceeded=usage["should_limit"],
    )
    setattr(request, USAGE_ATTR, result)
    return result


def usage_of(request: HttpRequest) -> Usage | None:
    return getattr(request, USAGE_ATTR, None)


class ApiRateThrottle(BaseThrottle):
    """DRF throttle: runs after authentication and permissions, so 401 and 403 come before 429."""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        self.usage = count_request(request._request, token)
        return not self.usage.exceeded

    def wait(self) -> float | None:
        return float(self.usage.reset_in) if self.usage else None
