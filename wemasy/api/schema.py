"""drf-spectacular hooks: document the headers our middleware adds to every API response."""

from __future__ import annotations

from typing import Any

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window after this one.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-Request-ID": {"description": "The id to quote when reporting a problem.", "schema": {"type": "string"}},
}
RETRY_AFTER = {"description": "Seconds until the window resets.", "schema": {"type": "integer", "minimum": 1}}
RETRY_AFTER_UNAVAILABLE = {
    "description": "Seconds until the request is worth trying again.",
    "schema": {"type": "integer", "minimum": 1},
}


def add_rate_limit_headers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for code, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                headers.update(RATE_LIMIT_HEADERS)
                if str(code) == "429":
                    headers["Retry-After"] = RETRY_AFTER
                elif str(code) == "503":
                    headers["Retry-After"] = RETRY_AFTER_UNAVAILABLE
    return result
