"""Label rows and the optimistic guard: every write to a row in LABELLING is conditional on what was read.

The evidence that a label may exist (``label_requested_at``, a shipment id) lives on the row; these
helpers read it, and move rows only while they are still in the state and on the request they were read
with (:func:`current`), so a worker holding an outdated view can neither forget nor overwrite a newer
request. See ``docs/architecture.md`` ("Why an order can never get a second label").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sendcloud_integration.models import (
    OrderShipment,
    OrderShipmentQuerySet,
    Phase,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.sendcloud.types import ShipmentInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

#: The states of a row whose label work is not finished.
LABEL_STATES = (ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING)


def has_evidence(row: OrderShipment) -> bool:
    """A label may exist for this row: a request was recorded or a shipment is known."""
    return row.label_requested_at is not None or bool(row.sendcloud_shipment_id) or row.state == ShipmentState.LABELLING


def known_current(row: OrderShipment) -> bool:
    """LABELLING with its shipment known: this attempt's shipment, to be polled."""
    return row.state == ShipmentState.LABELLING and bool(row.sendcloud_shipment_id)


def is_live(info: ShipmentInfo) -> bool:
    """Being announced or announced: a label exists or is on its way (not refused, not cancelled)."""
    return info.failed_message is None and not info.is_cancelled


def current(row: OrderShipment) -> OrderShipmentQuerySet:
    """The row, if it is still in the state and on the request we read it with (optimistic guard)."""
    return OrderShipment.objects.filter(pk=row.pk, state=row.state, label_requested_at=row.label_requested_at)


def requeue(rows: Iterable[OrderShipment]) -> int:
    """LABELLING → LABEL_QUEUED with the request forgotten: only when Sendcloud certainly made no label."""
    requeued = 0
    for row in rows:
        moved = current(row).move(
            source=[ShipmentState.LABELLING], target=ShipmentState.LABEL_QUEUED, label_requested_at=None
        )
        if moved:
            row.state, row.label_requested_at = ShipmentState.LABEL_QUEUED, None
        requeued += moved
    return requeued


def fail(rows: Iterable[OrderShipment], error: str, *, clear_request: bool = False) -> int:
    """Fail label rows (phase LABEL) that are still as we read them. ``clear_request`` only when
    Sendcloud certainly made no label for them."""
    failed = 0
    extra: dict[str, datetime | None] = {"label_requested_at": None} if clear_request else {}
    for row in rows:
        moved = current(row).move(
            source=[row.state], target=ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error=error[:2000], **extra
        )
        if moved:
            logger.info(
                "batch=%s order=%s label failed: %s",
                row.batch_id,
                row.order_id,
                error,
                extra={"order_id": row.order_id},
            )
            row.state = ShipmentState.FAILED
        failed += moved
    return failed


def ship_with(code: str) -> dict[str, object] | None:
    """A shipping option code in the shape create-labels-async expects; None for "Sendcloud's default"."""
    if not code:
        return None
    return {"type": "shipping_option_code", "properties": {"shipping_option_code": code}}


def shipping_code(row: OrderShipment, integration: SendcloudIntegration) -> str:
    """The option a row's order ships with: its own, else the shop's default (no queries)."""
    own = (row.order.shipping_option_code or "").strip()
    return own or (integration.shipping_option_code or "").strip()
