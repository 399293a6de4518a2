"""The errors the Sendcloud client raises, and how a non-2xx answer maps to them.

Every failure is typed so that the caller can decide what to do next: :class:`TransientError` is worth
trying again later (and says whether Sendcloud may already have acted: ``outcome_uncertain``),
:class:`AuthenticationError` disconnects the integration, :class:`OrdersRejected` names the orders of a
batch that Sendcloud refused, :class:`Conflict` carries an existing shipment. HTTP only: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from sendcloud_integration.sendcloud.types import ApiError, ShipmentInfo, parse_shipment

#: The Orders API answers this 400 when another request is still working on one of the batch's order ids.
#: The whole batch was rolled back, so it is safe — and necessary — to send it again later.
STILL_PROCESSING_MARKER: Final = "still processing a previous request"


class SendcloudError(Exception):
    """Base of every error the client raises. ``message`` is meant for people (staff, logs)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: Iterable[ApiError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors: list[ApiError] = list(errors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"


class TransientError(SendcloudError):
    """Worth trying again later: 5xx, timeouts, dropped connections, malformed answers, processing conflicts.

    ``outcome_uncertain`` is True when Sendcloud may have acted on the request although we did not get a usable
    answer (the request was sent and then the answer timed out, the connection dropped, a 5xx came back, or a
    2xx body could not be read). For a label request that means: look up existing shipments before asking
    again, never just repeat the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        outcome_uncertain: bool = False,
        errors: Iterable[ApiError] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.retry_after = retry_after
        self.outcome_uncertain = outcome_uncertain


class RateLimited(TransientError):
    """429: over the account's request budget. ``retry_after`` is set when Sendcloud sent ``Retry-After``."""


class OtherFormatServed(TransientError):
    """A 2xx document in another format than asked; ``served`` is the media type it is (``application/zpl``).

    Sendcloud documents that a label a carrier makes natively in ZPL cannot be converted and is always
    served as ZPL: asking that parcel's label as PDF or PNG again will not help. Transient for callers that
    only know :class:`TransientError` (the label phase waits for its PDF); the batch documents treat a ZPL
    answer as final.
    """

    def __init__(self, message: str, *, served: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code, outcome_uncertain=False)
        self.served = served


class AuthenticationError(SendcloudError):
    """401/403: the credentials are wrong or revoked. Retrying cannot help; the integration needs attention."""


class ClientError(SendcloudError):
    """Any other 4xx: the request itself is wrong. Retrying the same request cannot help."""


class OrdersRejected(ClientError):
    """400 on ``POST /v3/orders``: the whole batch was refused because of the orders named here.

    ``errors_by_index`` maps a position in the request list to readable messages such as
    ``"shipping_address.city: Field required"``; ``unattributed`` holds the errors that name no order.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 400,
        errors: Iterable[ApiError] = (),
        errors_by_index: Mapping[int, list[str]] | None = None,
        unattributed: Iterable[str] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.errors_by_index: dict[int, list[str]] = dict(errors_by_index or {})
        self.unattributed: list[str] = list(unattributed)


class NotFound(ClientError):
    """404: the thing asked for does not exist (or is not visible yet — see ``not_found_is_transient``)."""


class Conflict(ClientError):
    """409: for shipments this means "it already exists"; ``body`` holds the existing object. Use it."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 409,
        errors: Iterable[ApiError] = (),
        body: Any = None,
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.body = body

    def shipment(self) -> ShipmentInfo | None:
        """The existing shipment carried by a shipments 409, when the body holds one."""
        data = self.body.get("data", self.body) if isinstance(self.body, dict) else None
        if isinstance(data, dict) and "parcels" in data:
            return parse_shipment(data)
        return None


def field_path(segments: str) -> str:
    """``order_details/order_items/0/quantity`` → ``order_details.order_items[0].quantity``."""
    out = ""
    for part in (s for s in segments.split("/") if s):
        index = re.fullmatch(r"\[?(\d+)\]?", part)
        if index:
            out += f"[{index.group(1)}]"
        else:
            out += f".{part}" if out else part
    return out


def describe(error: ApiError, field_path: str) -> str:
    return f"{field_path}: {error.detail}" if field_path else error.detail


#: ``source.pointer`` of a per-order error in a ``POST /v3/orders`` batch: ``/data/attributes/<index>/<field>``.
ORDER_POINTER: Final = re.compile(r"^/?data/attributes/\[?(\d+)\]?(?:/(.*))?$")


def orders_rejected(
    errors: list[ApiError], batch_size: int, details: str, scrub: Callable[[str], str]
) -> OrdersRejected:
    """Split the 400 of an all-or-nothing order batch into per-order messages by pointer index."""
    by_index: dict[int, list[str]] = {}
    unattributed: list[str] = []
    for error in errors:
        match = ORDER_POINTER.match(error.pointer)
        if match and int(match.group(1)) < batch_size:
            by_index.setdefault(int(match.group(1)), []).append(
                scrub(describe(error, field_path(match.group(2) or "")))
            )
        else:
            unattributed.append(scrub(error.detail))
    if not errors:
        unattributed.append(details or "Sendcloud refused the batch without saying why")
    if by_index:
        message = f"Sendcloud rejected the batch because of {len(by_index)} invalid order(s)."
    else:
        message = f"Sendcloud rejected the batch: {'; '.join(unattributed)}"
    return OrdersRejected(message, errors=errors, errors_by_index=by_index, unattributed=unattributed)


def looks_transient(error: ApiError) -> bool:
    """A per-order label error worth retrying: not found yet after a push, a conflict, a server fault."""
    if STILL_PROCESSING_MARKER in error.detail.lower():
        return True
    if error.code == "not_found" or error.status in {"404", "429"}:
        return True
    return error.status.startswith("5") and error.code != "parcel_announcement_error"
