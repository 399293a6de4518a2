"""JSON:API error objects in the exact shape Sendcloud's v3 API answers with.

v3 errors are ``{"errors": [{"status": "400", "code": "...", "detail": "...", "source": {...}}]}``
with ``status`` as a *string*; clients parse ``source.pointer`` to learn which order of a batch was
rejected, so every error the sandbox emits goes through here to keep that shape identical.
"""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]


def error_object(
    status: int,
    code: str,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    title: str | None = None,
) -> JsonDict:
    """One JSON:API error object; ``pointer`` names a body location, ``parameter`` a query one."""
    error: JsonDict = {"status": str(status), "code": code}
    if title is not None:
        error["title"] = title
    error["detail"] = detail
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    elif parameter is not None:
        error["source"] = {"parameter": parameter}
    return error


def error_document(errors: list[JsonDict]) -> JsonDict:
    """The top-level error document."""
    return {"errors": errors}


class ApiError(Exception):
    """Raised by handlers to answer with a JSON:API error document and an HTTP status."""

    def __init__(self, status: int, errors: list[JsonDict]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors

    @classmethod
    def single(
        cls,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        title: str | None = None,
    ) -> ApiError:
        """An ApiError carrying one error object."""
        return cls(
            status,
            [error_object(status, code, detail, pointer=pointer, parameter=parameter, title=title)],
        )


def not_found(detail: str = "The page you have requested could not be found.") -> ApiError:
    """The 404 of the v3 specs (unknown page or object)."""
    return ApiError.single(404, "not_found", detail, title="Not found")


STILL_PROCESSING_DETAIL = "We are still processing a previous request. Please try again in a moment."


def still_processing() -> ApiError:
    """The Orders API's transient conflict: another request is processing one of these orders."""
    return ApiError.single(400, "invalid", STILL_PROCESSING_DETAIL, pointer="/data")


def rate_limited() -> ApiError:
    """429 in the v3 error shape (Sendcloud documents no Retry-After or rate-limit headers)."""
    return ApiError.single(429, "hit_rate_limit", "Rate limit exceeded", title="Rate limit exceeded")
