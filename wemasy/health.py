"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness), for load balancers and orchestrators.

``/healthz`` checks the database and nothing else: a process that answers it is alive and should not be
restarted, whatever Redis does. ``/readyz`` reports each component the API needs to do its work — the
database, the cache (rate-limit counters, in Redis) and the broker (Celery, in Redis) — and is 503 when
one of them is down. Each check is bounded (``REDIS_REQUEST_TIMEOUT`` for the Redis ones), so the answer
comes within a second even when Redis hangs. Neither is under ``/api/``: no rate limit applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from sendcloud_integration.pipeline.dispatch import broker_answers
from wemasy.api.ratelimit import CACHE_ERRORS

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"
#: The key the cache check writes (under ``CACHE_KEY_PREFIX``, for a few seconds): the rate limit writes too.
PROBE_KEY = "readyz-probe"


def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any failure means "not healthy"; the detail goes to the log
        logger.exception("health check: the database is unavailable")
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Callable[[], bool]] = {"database": _database, "cache": _cache, "broker": broker_answers}
    components = {name: OK if check() else UNAVAILABLE for name, check in checks.items()}
    ready = all(status == OK for status in components.values())
    body = {"status": OK if ready else UNAVAILABLE, "components": components}
    return JsonResponse(body, status=200 if ready else 503)


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"
        logger.warning("readiness: the database is unavailable (%s: %s)", type(exc).__name__, exc)
        return False
    return True


def _cache() -> bool:
    try:
        cache.set(PROBE_KEY, "1", timeout=5)
    except CACHE_ERRORS as exc:
        logger.warning("readiness: the cache is unavailable (%s: %s)", type(exc).__name__, exc)
        return False
    return True
