"""``shipping.locks.lock_of``: when an order's shipping data may change, around a label and its cancellation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sendcloud_integration.models import OrderShipment, ShipmentState
from sendcloud_integration.shipping.locks import Lock, lock_of

HOUR = timedelta(hours=1)


def shipment(state: str, *, labelled: bool = False, cancelled_after: bool = False) -> OrderShipment:
    now = timezone.now()
    return OrderShipment(
        state=state,
        labelled_at=now - HOUR if labelled else None,
        cancelled_at=now if cancelled_after else None,
    )


@pytest.mark.parametrize(
    ("row", "lock"),
    [
        (shipment(ShipmentState.LABELLED, labelled=True), Lock.LABELLED),
        (shipment(ShipmentState.CANCEL_REQUESTED, labelled=True), Lock.CANCELLING),
        # The label is gone: fix the order, then push it again with labels.
        (shipment(ShipmentState.CANCELLED, labelled=True, cancelled_after=True), None),
        # Re-pushed after the cancellation and failed: still no label, still changeable.
        (shipment(ShipmentState.FAILED, labelled=True, cancelled_after=True), None),
        # Re-pushed after the cancellation and under way: the batch holds it.
        (shipment(ShipmentState.LABELLING, labelled=True, cancelled_after=True), Lock.IN_FLIGHT),
        # A labelled order whose later re-push failed still has its label.
        (shipment(ShipmentState.FAILED, labelled=True), Lock.LABELLED),
        (shipment(ShipmentState.FAILED), None),
        (None, None),
    ],
)
def test_lock_of(row: OrderShipment | None, lock: Lock | None) -> None:
    assert lock_of(row) is lock
