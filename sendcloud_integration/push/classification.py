"""Deciding, per order, whether a push queues it (new or retry) or skips it, and why.

Pure functions over plain facts read in one query: no queries and no model instances here, so the
rule table of docs/api.md reads as code, is unit-testable without a database, and classifying
10,000 orders costs microseconds each.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sendcloud_integration.models import IN_FLIGHT_STATES, ShipmentState, holds_label
from webshop.models import Order


class Category(enum.StrEnum):
    NEW = "new"
    RETRY = "retry"
    SKIPPED = "skipped"


class OrderFacts(NamedTuple):
    """What classification needs to know about one order (one row of ``lock_objects``' read)."""

    id: int
    order_number: str
    type: str
    status: str
    address_id: int | None
    shipment_state: str | None
    batch_id: uuid.UUID | None
    labelled_at: datetime | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class Verdict:
    category: Category
    reason: str = ""


#: The verdicts without a reason, made once: a push of 10,000 orders asks for them 10,000 times.
QUEUE_NEW = Verdict(Category.NEW)
QUEUE_RETRY = Verdict(Category.RETRY)


def classify(order: OrderFacts, *, create_label: bool) -> Verdict:
    """The rule table of docs/api.md, first match wins."""
    if order.type != Order.Type.CHECKOUT:
        return Verdict(Category.SKIPPED, "quote orders cannot be shipped")
    if order.status not in Order.SHIPPABLE_STATUSES:
        return Verdict(Category.SKIPPED, f"order status is {order.status}")
    if order.address_id is None:
        return Verdict(Category.SKIPPED, "no shipping address")
    state = order.shipment_state
    if state is None:
        return QUEUE_NEW
    if state in IN_FLIGHT_STATES:
        return Verdict(Category.SKIPPED, f"already queued in batch {order.batch_id}")
    if state == ShipmentState.CANCEL_REQUESTED:
        return Verdict(Category.SKIPPED, "its label's cancellation is waiting for Sendcloud's confirmation")
    if state == ShipmentState.CANCELLED:
        # The one way to a new label after a cancelled one: asked for, by a person or a client.
        if not create_label:
            return Verdict(Category.SKIPPED, "its label was cancelled; push it with create_label for a new one")
        return Verdict(Category.RETRY)
    if state == ShipmentState.LABELLED or holds_label(labelled_at=order.labelled_at, cancelled_at=order.cancelled_at):
        return Verdict(Category.SKIPPED, "label already created")
    if state == ShipmentState.PUSHED:
        if not create_label:
            return Verdict(Category.SKIPPED, "already pushed to SendCloud")
        return QUEUE_NEW  # in Sendcloud without a label: label work only
    if state == ShipmentState.FAILED:
        return QUEUE_RETRY
    return QUEUE_NEW
