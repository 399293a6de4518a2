"""What Sendcloud's parcel statuses mean for staff: each status id, its v3 code, and its kind.

Webhooks name a status by id and message (``parcel.status.id``, v2 numbering, e.g. 11 "Delivered");
``GET /v3/shipments`` by code (``status.code``, e.g. ``READY_TO_SEND``). The v3 spec shows the codes
ANNOUNCING, READY_TO_SEND, ANNOUNCEMENT_FAILED and CANCELLED; the others here are the upper-case form of
Sendcloud's status names, used when only one of id or code is known. An id or code not in the table is
stored as it came and reads as :attr:`Kind.UNKNOWN`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Kind(enum.StrEnum):
    """The few things a status can mean for an order, as staff read it."""

    PENDING = "pending"  # the label is being made
    READY = "ready"  # a label exists; the carrier has not picked the parcel up yet
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # the carrier could not deliver, or needs someone to act
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Status:
    id: int
    code: str
    message: str
    kind: Kind


STATUSES: Final[tuple[Status, ...]] = (
    Status(1, "ANNOUNCED", "Announced", Kind.IN_TRANSIT),
    Status(3, "EN_ROUTE_TO_SORTING_CENTER", "En route to sorting center", Kind.IN_TRANSIT),
    Status(4, "DELIVERY_DELAYED", "Delivery delayed", Kind.EXCEPTION),
    Status(5, "SORTED", "Sorted", Kind.IN_TRANSIT),
    Status(6, "NOT_SORTED", "Not sorted", Kind.EXCEPTION),
    Status(7, "BEING_SORTED", "Being sorted", Kind.IN_TRANSIT),
    Status(8, "DELIVERY_ATTEMPT_FAILED", "Delivery attempt failed", Kind.EXCEPTION),
    Status(11, "DELIVERED", "Delivered", Kind.DELIVERED),
    Status(12, "AWAITING_CUSTOMER_PICKUP", "Awaiting customer pickup", Kind.IN_TRANSIT),
    Status(13, "ANNOUNCED_NOT_COLLECTED", "Announced: not collected", Kind.EXCEPTION),
    Status(15, "ERROR_COLLECTING", "Error collecting", Kind.EXCEPTION),
    Status(22, "SHIPMENT_PICKED_UP_BY_DRIVER", "Shipment picked up by driver", Kind.IN_TRANSIT),
    Status(80, "UNABLE_TO_DELIVER", "Unable to deliver", Kind.EXCEPTION),
    Status(91, "PARCEL_EN_ROUTE", "Parcel en route", Kind.IN_TRANSIT),
    Status(92, "DRIVER_EN_ROUTE", "Driver en route", Kind.IN_TRANSIT),
    Status(93, "SHIPMENT_COLLECTED_BY_CUSTOMER", "Shipment collected by customer", Kind.DELIVERED),
    Status(999, "NO_LABEL", "No label", Kind.PENDING),
    Status(1000, "READY_TO_SEND", "Ready to send", Kind.READY),
    Status(1001, "ANNOUNCING", "Being announced", Kind.PENDING),
    Status(1002, "ANNOUNCEMENT_FAILED", "Announcement failed", Kind.EXCEPTION),
    Status(1999, "CANCELLATION_REQUESTED", "Cancellation requested", Kind.CANCEL_REQUESTED),
    Status(2000, "CANCELLED", "Cancelled", Kind.CANCELLED),
    Status(2001, "BEING_CANCELLED", "Submitting cancellation request", Kind.CANCEL_REQUESTED),
)
BY_ID: Final = {status.id: status for status in STATUSES}
BY_CODE: Final = {status.code: status for status in STATUSES}

#: Kinds after which a parcel's status no longer changes: the polling fallback stops reading it.
FINAL_KINDS: Final = frozenset({Kind.DELIVERED, Kind.CANCELLED})
EXCEPTION_IDS: Final = frozenset(s.id for s in STATUSES if s.kind is Kind.EXCEPTION)
EXCEPTION_CODES: Final = frozenset(s.code for s in STATUSES if s.kind is Kind.EXCEPTION)


def kind_of(status_id: int | None, code: str = "") -> Kind:
    """The kind of a status known by id (webhooks) or code (polling)."""
    status = BY_ID.get(status_id) if status_id is not None else None
    if status is None and code:
        status = BY_CODE.get(code.upper())
    return status.kind if status is not None else Kind.UNKNOWN


def complete(status_id: int | None, code: str) -> tuple[int | None, str]:
    """Fill in the code from the id or the id from the code, when the table knows it."""
    if status_id is not None and not code and status_id in BY_ID:
        return status_id, BY_ID[status_id].code
    if status_id is None and code and code.upper() in BY_CODE:
        return BY_CODE[code.upper()].id, code.upper()
    return status_id, code.upper()
