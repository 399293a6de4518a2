"""One place that turns every API error into the contract's body shapes (docs/api.md).

- 422: ``{"message": "<first error> (and N more errors)", "errors": {"field.index": ["…"]}}``, Laravel style.
- 400, 401, 403, 404, 409, 429: ``{"error": true, "message": "…"}``, keeping the headers DRF set
  (``WWW-Authenticate`` on 401, ``Retry-After`` on 429).
- a service's :class:`~wemasy.errors.ApplicationError`: its ``http_status`` with that body and its message
  (the one place the API maps them); an :class:`~wemasy.errors.InvalidInput` as a 422 naming its field.
- anything unexpected: a logged traceback and a 500 that names the request id and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from wemasy.errors import ApplicationError, InvalidInput
from wemasy.logging import request_id_var

logger = logging.getLogger("wemasy.api")

ATTRIBUTE_PLACEHOLDER = ":attribute"


class UnprocessableEntity(exceptions.ValidationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than {limit / (1024 * 1024):g} MiB; send fewer order ids.")


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."
    default_code = "bad_request"


def error_body(message: str) -> dict[str, Any]:
    return {"error": True, "message": message}


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"order_ids": {3: ["…"]}}`` → ``{"order_ids.3": ["…"]}``, filling in ``:attribute``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            flat.update(flatten_errors(value, name))
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        field = prefix or "non_field_errors"
        flat[field] = [str(item).replace(ATTRIBUTE_PLACEHOLDER, field) for item in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if value:
                flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    elif detail:
        field = prefix or "non_field_errors"
        flat[field] = [str(detail).replace(ATTRIBUTE_PLACEHOLDER, field)]
    return flat


def validation_body(detail: Any) -> dict[str, Any]:
    errors = flatten_errors(detail)
    messages = [message for field_messages in errors.values() for message in field_messages]
    message = messages[0] if messages else "The given data was invalid."
    more = len(messages) - 1
    if more > 0:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return {"message": message, "errors": errors}


def server_error_body() -> dict[str, Any]:
    return error_body(
        f"Internal server error. Please try again later; if it persists, quote request id {request_id_var.get()}."
    )


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, DjangoValidationError):
        exc = UnprocessableEntity(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, InvalidInput):
        return Response(validation_body({exc.field: [exc.message]}), status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.message), status=exc.http_status)
    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(server_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)  # set by APIView.handle_exception on 401s
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait)))

    if isinstance(exc, exceptions.ValidationError):
        return Response(validation_body(exc.detail), status=status.HTTP_422_UNPROCESSABLE_ENTITY, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        detail = str(exc.detail)
        message = detail if "nested too deeply" in detail else "The request body is not valid JSON."
    elif isinstance(exc, exceptions.Throttled):
        message = f"Too many requests. Try again in {headers.get('Retry-After', '1')} seconds."
    elif isinstance(exc, exceptions.NotAuthenticated):
        message = "Authentication credentials were not provided. Send 'Authorization: Bearer <token>'."
    else:
        message = str(exc.detail) if isinstance(exc.detail, str) else str(exc.default_detail)
    return Response(error_body(message), status=exc.status_code, headers=headers)
