"""Parcel statuses after the label: the progression over time, cancellations, and their timeline.

A shipment's statuses are computed from times, like the label's readiness (``state.py``): ANNOUNCING
until ``ready_at``, then READY_TO_SEND (or ANNOUNCEMENT_FAILED), then the configured
``tracking_progression`` — ``[seconds after ready, status id]`` pairs, e.g. en route (3) after 1 s,
delivered (11) after 2 s. A cancellation replaces what follows: CANCELLATION_REQUESTED (1999) from the
request and CANCELLED (2000) once confirmed. Each step of the timeline is one webhook
(``webhooks.py``). Ids are Sendcloud's parcel status ids (the webhooks' ``parcel.status.id``), codes
the v3 shipments API's ``status.code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sendcloud_sandbox.state import StoredShipment


@dataclass(frozen=True)
class Status:
    id: int
    code: str
    message: str


_TABLE: Final = (
    Status(1, "ANNOUNCED", "Announced"),
    Status(3, "EN_ROUTE_TO_SORTING_CENTER", "En route to sorting center"),
    Status(4, "DELIVERY_DELAYED", "Delivery delayed"),
    Status(5, "SORTED", "Sorted"),
    Status(7, "BEING_SORTED", "Being sorted"),
    Status(8, "DELIVERY_ATTEMPT_FAILED", "Delivery attempt failed"),
    Status(11, "DELIVERED", "Delivered"),
    Status(12, "AWAITING_CUSTOMER_PICKUP", "Awaiting customer pickup"),
    Status(80, "UNABLE_TO_DELIVER", "Unable to deliver"),
    Status(91, "PARCEL_EN_ROUTE", "Parcel en route"),
    Status(92, "DRIVER_EN_ROUTE", "Driver en route"),
    Status(1000, "READY_TO_SEND", "Ready to send"),
    Status(1001, "ANNOUNCING", "Being announced"),
    Status(1002, "ANNOUNCEMENT_FAILED", "Announcement Failed"),
    Status(1999, "CANCELLATION_REQUESTED", "Cancellation requested"),
    Status(2000, "CANCELLED", "Cancelled"),
)
BY_ID: Final = {status.id: status for status in _TABLE}
BY_CODE: Final = {status.code: status for status in _TABLE}
ANNOUNCING: Final = BY_ID[1001]
READY_TO_SEND: Final = BY_ID[1000]
ANNOUNCEMENT_FAILED: Final = BY_ID[1002]
CANCELLATION_REQUESTED: Final = BY_ID[1999]
CANCELLED: Final = BY_ID[2000]
DELIVERED: Final = BY_ID[11]


@dataclass(frozen=True)
class Step:
    """The shipment's parcels took ``status`` at ``at`` (the sandbox's clock, seconds)."""

    at: float
    status: Status


def timeline(shipment: StoredShipment) -> list[Step]:
    """Every status the shipment's parcels take, in order, including future ones."""
    steps = [Step(shipment.created_at, ANNOUNCING)]
    if shipment.failure_message is not None:
        steps.append(Step(shipment.ready_at, ANNOUNCEMENT_FAILED))
        return steps
    steps.append(Step(shipment.ready_at, READY_TO_SEND))
    stop = shipment.cancel_requested_at
    for delay, status_id in shipment.progression:
        at = shipment.ready_at + delay
        if stop is not None and at >= stop:
            break
        steps.append(Step(at, BY_ID[status_id]))
    if stop is not None:
        confirmed = shipment.cancelled_at
        if confirmed is None or confirmed > stop:
            steps.append(Step(stop, CANCELLATION_REQUESTED))
        if confirmed is not None:
            steps.append(Step(confirmed, CANCELLED))
    return steps


def status_at(shipment: StoredShipment, now: float) -> Status:
    """The parcels' status at ``now``."""
    current = ANNOUNCING
    for step in timeline(shipment):
        if step.at > now:
            break
        current = step.status
    return current
