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


#: Every operation can answer 503 when its rate limit cannot be checked (wemasy/api/ratelimit.py).
RATE_LIMIT_UNAVAILABLE = "The rate limit cannot be checked right now (its counters are unreachable); see Retry-After."


def add_rate_limit_headers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            unavailable = responses.get("503")
            if unavailable is None:
                responses["503"] = {
                    "description": RATE_LIMIT_UNAVAILABLE,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            elif RATE_LIMIT_UNAVAILABLE not in unavailable.get("description", ""):
                unavailable["description"] = (
                    f"{unavailable.get('description', '')} Or: {RATE_LIMIT_UNAVAILABLE}".strip()
                )
            for code, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(RATE_LIMIT_HEADERS)
                if str(code) == "429":
                    headers["Retry-After"] = RETRY_AFTER
                elif str(code) == "503":
                    headers["Retry-After"] = RETRY_AFTER_UNAVAILABLE
    return result
