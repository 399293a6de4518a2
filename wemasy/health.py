"""``GET /healthz``: for load balancers and process managers. Checks the database, nothing else."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not healthy"; the detail goes to the log
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
