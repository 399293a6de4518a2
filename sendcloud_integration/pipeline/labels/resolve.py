"""Step 1 of a label run: rows with evidence of an earlier request are resolved before anything is asked.

A known shipment id is read directly; otherwise the order's shipments are looked up, but only once the
grace period after the request has passed (Sendcloud saves asynchronously, and a request whose answer
timed out may still be running). A live shipment is adopted; only when none exists is the evidence
cleared, so that the order may be requested again.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings

from sendcloud_integration.models import OrderShipment, Phase, ShipmentState
from sendcloud_integration.pipeline.labels.poll import apply
from sendcloud_integration.pipeline.labels.rows import current, fail, is_live, requeue
from sendcloud_integration.pipeline.labels.run import LabelRun, Skip
from sendcloud_integration.pipeline.outcome import gave_up
from sendcloud_integration.sendcloud.errors import NotFound
from sendcloud_integration.sendcloud.types import ShipmentInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")


def resolve(run: LabelRun, row: OrderShipment) -> bool:
    """Adopt the shipment an earlier request left, if any. True when the order may be requested anew.

    A known shipment id (from an earlier batch) is read directly; otherwise the order's shipments are
    looked up, but only once the grace period after the request has passed.
    """
    found: ShipmentInfo | None
    if row.sendcloud_shipment_id:
        try:
            found = run.safe(row, partial(run.client.get_shipment, row.sendcloud_shipment_id))
        except NotFound:
            found = None
        except Skip:
            return False
        if found is not None and not is_live(found):
            found = None
    else:
        if row.label_requested_at is not None:
            waited = (run.now - row.label_requested_at).total_seconds()
            grace = float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS)
            if waited < grace:
                run.wait_for(grace - waited)
                return False
        try:
            found = look_up(run, row)
        except Skip:
            return False
    if found is not None:
        adopt(run, row, found)
        return False
    return forget(run, row)


def look_up(run: LabelRun, row: OrderShipment) -> ShipmentInfo | None:
    """The order's live shipment at Sendcloud (being announced or ready), preferring a ready one."""
    number = row.order.order_number
    if not number:  # nothing to look up by: never guess, keep the evidence for staff
        run.count_failed(fail([row], "The label request's outcome is unknown and the order has no number."))
        raise Skip
    try:
        shipments = run.safe(row, lambda: run.client.find_shipments(order_number=number))
    except NotFound:
        shipments = []
    live = [s for s in shipments if is_live(s) and (not s.order_number or s.order_number == number)]
    live.sort(key=lambda s: not s.is_ready)
    if len(live) > 1:
        logger.warning(
            "batch=%s order=%s has %d live shipments at Sendcloud; adopting %s",
            row.batch_id,
            row.order_id,
            len(live),
            live[0].shipment_id,
            extra={"order_id": row.order_id},
        )
    return live[0] if live else None


def adopt(run: LabelRun, row: OrderShipment, info: ShipmentInfo) -> None:
    """Make ``info`` the row's shipment instead of asking for a label, then act on its state."""
    parcel_id = info.parcels[0].parcel_id if info.parcels else ""
    ids = {"sendcloud_shipment_id": info.shipment_id[:64], "sendcloud_parcel_id": parcel_id[:64]}
    if row.state == ShipmentState.LABELLING:
        changed = current(row).update(**ids, updated_at=run.now)
    else:
        # A shipment from an earlier batch: the wait for its label starts now.
        changed = OrderShipment.objects.filter(pk=row.pk).move(
            source=[ShipmentState.LABEL_QUEUED],
            target=ShipmentState.LABELLING,
            label_requested_at=run.now,
            last_error="",
            failed_phase="",
            **ids,
        )
        if changed:
            row.state, row.label_requested_at = ShipmentState.LABELLING, run.now
    if not changed:
        return
    row.sendcloud_shipment_id, row.sendcloud_parcel_id = ids["sendcloud_shipment_id"], ids["sendcloud_parcel_id"]
    logger.info(
        "batch=%s order=%s adopted existing Sendcloud shipment %s instead of requesting a label",
        row.batch_id,
        row.order_id,
        info.shipment_id,
        extra={"order_id": row.order_id},
    )
    apply(run, row, info)


def forget(run: LabelRun, row: OrderShipment) -> bool:
    """No label exists for the row's earlier request: clear the evidence so it may be requested."""
    if not run.may_request or run.spent:
        reason = (
            gave_up(run.attempt - 1, run.last_error())
            if run.may_request
            else "The label request was interrupted and its batch has ended"
        )
        run.count_failed(
            current(row).move(
                source=[row.state],
                target=ShipmentState.FAILED,
                failed_phase=Phase.LABEL,
                last_error=f"{reason}. Sendcloud has no label for this order; re-push it to try again."[:2000],
                label_requested_at=None,
            )
        )
        return False
    if row.state == ShipmentState.LABELLING:
        changed = requeue([row])
    else:
        changed = OrderShipment.objects.filter(pk=row.pk, state=ShipmentState.LABEL_QUEUED).update(
            label_requested_at=None, sendcloud_shipment_id="", sendcloud_parcel_id="", updated_at=run.now
        )
    if not changed:
        return False
    row.state = ShipmentState.LABEL_QUEUED
    row.label_requested_at = None
    row.sendcloud_shipment_id = row.sendcloud_parcel_id = ""
    logger.info(
        "batch=%s order=%s has no label at Sendcloud; it may be requested again",
        row.batch_id,
        row.order_id,
        extra={"order_id": row.order_id},
    )
    return True
