"""Per-client request limits for the API, counted atomically in the shared cache.

Authenticated calls are counted per token, anonymous ones (and bad tokens) per client IP. The
counting itself is django-ratelimit's fixed window (``cache.add`` + ``cache.incr``, atomic on Redis),
so the limit is exact across every web process on every machine. The outcome of the count is kept on
the request, where ``RateLimitHeadersMiddleware`` turns it into ``X-RateLimit-*`` headers on every
response, errors included.

When the cache cannot be reached (Redis down or hung), a request cannot be counted, and it is refused:
503 with ``Retry-After`` and the usual error body, before the view does anything (see docs/api.md,
"Errors"). A limit that cannot be enforced is not silently lifted: that is exactly when a client
retrying in a loop would hurt most. The cache's own timeouts (``REDIS_REQUEST_TIMEOUT``) keep the
refusal quick, and the request is not counted a second time by the middleware.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle

from webshop.models import ApiToken
from wemasy.api.clientip import client_ip

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes: keep this import type-only
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
USAGE_ATTR = "api_rate_usage"
#: ``Retry-After`` of a request refused because the counters could not be reached.
UNAVAILABLE_RETRY_AFTER = 5
#: What an unreachable cache raises: redis-py's errors (connection refused, timeouts), or the file cache's.
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


@dataclass(frozen=True)
class Usage:
    limit: int
    remaining: int
    reset_in: int
    exceeded: bool
    #: False when the request could not be counted (the cache was unreachable); it is then refused.
    counted: bool = True


class RateLimitUnavailable(exceptions.APIException):
    """The request could not be counted: 503, ``Retry-After`` (from ``wait``), the error body."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        f"The service cannot check its rate limit right now. Please try again in {UNAVAILABLE_RETRY_AFTER} seconds."
    )
    default_code = "rate_limit_unavailable"
    wait = UNAVAILABLE_RETRY_AFTER


def client_key(request: HttpRequest, token: ApiToken | None) -> str:
    if token is not None:
        return f"token:{token.pk}"
    return f"ip:{client_ip(request)}"


def count_request(request: HttpRequest, token: ApiToken | None) -> Usage:
    """Count this request against its client's window once, and remember the outcome on it.

    Raises :class:`RateLimitUnavailable` when the cache cannot be reached (every time it is asked
    again for the same request, without trying the cache a second time).
    """
    existing: Usage | None = getattr(request, USAGE_ATTR, None)
    if existing is not None:
        if not existing.counted:
            raise RateLimitUnavailable()
        return existing
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    key = client_key(request, token)
    try:
        usage = get_usage(
            request,
            group="api",
            key=lambda _group, _request: key,
            rate=f"{limit}/{WINDOW_SECONDS}s",
            increment=True,
        )
    except CACHE_ERRORS as exc:
        logger.warning("rate limit: the cache is unreachable (%s: %s); answering 503", type(exc).__name__, exc)
        unavailable = Usage(limit=limit, remaining=0, reset_in=UNAVAILABLE_RETRY_AFTER, exceeded=True, counted=False)
        setattr(request, USAGE_ATTR, unavailable)
        raise RateLimitUnavailable() from exc
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
