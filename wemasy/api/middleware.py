"""Middleware for ``/api/``: a request id for every request, and rate-limit headers on every answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from wemasy.api.exceptions import error_body
from wemasy.api.ratelimit import RateLimitUnavailable, count_request, usage_of
from wemasy.logging import request_id_var

API_PREFIX = "/api/"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the caller when it looks safe, or makes one; logs and 500s name it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        reset = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(reset)
        response["X-Request-ID"] = request_id
        return response


class RateLimitHeadersMiddleware:
    """Copies the request's rate-limit usage onto the response, whatever its status.

    Views count the request themselves (after authentication, so a token's own window is used). When
    a request never reached that point — an unknown URL under ``/api/``, say — it is counted here, per
    client IP, so that every API response carries the headers and nothing escapes the count.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX):
            return response
        usage = usage_of(request)
        if usage is None:
            try:
                usage = count_request(request, token=None)
            except RateLimitUnavailable:
                usage = usage_of(request)
                assert usage is not None  # count_request leaves the uncounted outcome on the request
        if not usage.counted:
            # The same JSON 503 whichever path the request took: a view refused it (and may have rendered
            # the error as YAML or HTML, like the schema and docs views), or it was an unknown URL.
            response = JsonResponse(
                error_body(RateLimitUnavailable.default_detail), status=RateLimitUnavailable.status_code
            )
        response["X-RateLimit-Limit"] = str(usage.limit)
        response["X-RateLimit-Remaining"] = str(usage.remaining)
        if response.status_code == 429 or not usage.counted:
            response["Retry-After"] = str(usage.reset_in)
        return response
