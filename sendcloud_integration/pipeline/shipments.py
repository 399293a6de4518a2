"""Failing shipment rows: the one way the pipeline records that an order will not get further."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sendcloud_integration.models import OrderShipment, Phase, ShipmentState


def fail_shipments(*, shipment_ids: Sequence[int], phase: Phase, error: str, source: Sequence[str]) -> int:
    """Move shipments to FAILED, keeping the phase and the error a person will read."""
    return OrderShipment.objects.filter(pk__in=shipment_ids).move(
        source=source, target=ShipmentState.FAILED, failed_phase=phase, last_error=error[:2000]
    )


def fail_chunk_orders(*, batch_id: uuid.UUID, chunk_number: int, error: str) -> int:
    """Fail the chunk's orders that are still waiting to be pushed (queued or pushing)."""
    waiting = [ShipmentState.QUEUED, ShipmentState.PUSHING]
    ids = list(
        OrderShipment.objects.filter(batch_id=batch_id, chunk_number=chunk_number, state__in=waiting).values_list(
            "pk", flat=True
        )
    )
    return fail_shipments(shipment_ids=ids, phase=Phase.PUSH, error=error, source=waiting)
