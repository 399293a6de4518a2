"""The base class of every API view: the conventions of docs/api.md in one place."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from webshop.authentication import BearerTokenAuthentication
from webshop.permissions import HasTokenScope
from wemasy.api.exceptions import BadRequest
from wemasy.api.ratelimit import ApiRateThrottle, count_request


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, with the failures of hostile bodies turned into a 400 instead of a 500.

    Python's decoder recurses per level of nesting: a body of a few thousand ``[`` raises
    ``RecursionError``, which DRF does not catch. Such a body is refused as malformed, with a message
    that says why.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("The request body is nested too deeply to be read.") from None


class AnyContentTypeJSONParser(StrictJSONParser):
    """Reads every body as JSON, so a client that forgets ``Content-Type`` gets a clear 400 or 422."""

    media_type = "*/*"


class ApiView(APIView):
    """Bearer auth (401) → scope and shop (403) → rate limit (429) → the view's own validation.

    Anonymous requests and bad tokens are counted per client IP before they are refused, so guessing
    tokens is rate limited too.
    """

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasTokenScope]
    throttle_classes = [ApiRateThrottle]
    parser_classes = [StrictJSONParser, AnyContentTypeJSONParser]
    required_scope: str | None = None

    def perform_authentication(self, request: Request) -> None:
        try:
            request.user  # noqa: B018 - evaluating it runs the authenticators
        except exceptions.AuthenticationFailed:
            self._count_anonymous(request)
            raise
        if request.auth is None:
            self._count_anonymous(request)

    def _count_anonymous(self, request: Request) -> None:
        usage = count_request(request._request, token=None)
        if usage.exceeded:
            raise exceptions.Throttled(wait=usage.reset_in)

    @staticmethod
    def json_object(request: Request) -> dict[str, Any]:
        """The body as a JSON object, or a 400 that says what is wrong with it."""
        if request.META.get("CONTENT_LENGTH") in (None, "", "0"):
            raise BadRequest("The request body is empty; send a JSON object.")
        data = request.data
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data
