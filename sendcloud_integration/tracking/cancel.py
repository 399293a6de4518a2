"""Cancelling labels: ``POST /v3/shipments/{id}/cancel`` per order, and what the answer means here.

Sendcloud answers 200 (cancelled: the shipment moves LABELLED → CANCELLED), 202 (queued: LABELLED →
CANCEL_REQUESTED, and the parcel's status confirms it later, see ``events._settle_cancellation``) or 409
(refused: the carrier has the parcel, it was delivered, the window has passed — Sendcloud's own words are
kept in ``cancel_message`` and shown as they are). States move only through ``OrderShipmentQuerySet.move``.

Nothing here buys a label: a cancelled order gets a new one only when someone pushes it again with
``create_label`` (``push/classification.py`` classifies that as a retry).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from sendcloud_integration.models import (
    CANCELLABLE_STATES,
    IN_FLIGHT_STATES,
    OrderShipment,
    SendcloudIntegration,
    ShipmentState,
    integration_problem,
)
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    SendcloudError,
    TransientError,
)
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.tracking.errors import TrackingUnavailable
from webshop.models import Order, Shop

logger = logging.getLogger(__name__)

#: Order ids one cancel request takes: each is one POST of the account's 100 a minute.
MAX_CANCEL_ORDER_IDS = 20


@dataclass(frozen=True)
class CancelOutcome:
    order_id: int
    order_number: str
    message: str  # Sendcloud's words, or ours when Sendcloud was not asked


@dataclass
class CancelSummary:
    requested: int
    cancelled: list[CancelOutcome] = field(default_factory=list)
    cancellation_requested: list[CancelOutcome] = field(default_factory=list)
    refused: list[CancelOutcome] = field(default_factory=list)

    @property
    def message(self) -> str:
        parts = [f"{len(self.cancelled)} cancelled"]
        if self.cancellation_requested:
            parts.append(f"{len(self.cancellation_requested)} cancellation requested")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return f"{self.requested} order(s): {', '.join(parts)}."


def _integration(shop: Shop) -> SendcloudIntegration:
    integration = SendcloudIntegration.objects.filter(shop=shop).first()
    problem = integration_problem(integration)
    if problem is not None or integration is None:
        reason = problem.value if problem is not None else "missing"
        raise TrackingUnavailable(f"This shop has no usable Sendcloud integration ({reason}); nothing was cancelled.")
    return integration


def refusal(shipment: OrderShipment | None) -> str | None:
    """Why an order's label cannot be asked to be cancelled now (None: it can)."""
    if shipment is None or (not shipment.sendcloud_shipment_id and shipment.state not in IN_FLIGHT_STATES):
        return "it has no label"
    if shipment.state in IN_FLIGHT_STATES:
        return f"batch {shipment.batch_id} is working on it; cancel it once that batch is done"
    if shipment.state == ShipmentState.CANCELLED:
        return "its label is already cancelled"
    if shipment.state == ShipmentState.CANCEL_REQUESTED:
        return "its cancellation is already requested; Sendcloud confirms it with the parcel's status"
    if shipment.state not in CANCELLABLE_STATES:
        return "it has no label"
    return None


def cancel_labels(*, shop: Shop, order_ids: Sequence[int]) -> CancelSummary:
    """Ask Sendcloud to cancel the labels of the shop's orders, one request per order, within the budget."""
    ids = list(dict.fromkeys(order_ids))
    if not 1 <= len(ids) <= MAX_CANCEL_ORDER_IDS:
        raise ValueError(f"cancel_labels takes 1 to {MAX_CANCEL_ORDER_IDS} order ids, got {len(ids)}.")
    integration = _integration(shop)
    orders = {o.pk: o for o in Order.objects.filter(shop=shop, pk__in=ids).only("pk", "order_number")}
    shipments = {s.order_id: s for s in OrderShipment.objects.filter(order_id__in=list(orders))}
    summary = CancelSummary(requested=len(ids))
    call_log = CallLog(shop_id=shop.pk)
    client = build_client(integration, call_log)
    stop: str | None = None  # once Sendcloud cannot be asked, the rest is refused with the same reason
    try:
        for order_id in ids:
            order = orders.get(order_id)
            if order is None:
                summary.refused.append(CancelOutcome(order_id, "", "no such order in this shop"))
                continue
            shipment = shipments.get(order_id)
            reason = stop or refusal(shipment)
            if reason is not None or shipment is None:
                summary.refused.append(CancelOutcome(order_id, order.order_number, reason or "it has no label"))
                continue
            call_log.for_orders([order_id])
            stop = _cancel_one(integration, client, order, shipment, summary)
    finally:
        call_log.flush()
    logger.info("cancel shop=%s: %s", shop.slug, summary.message)
    return summary


def _cancel_one(
    integration: SendcloudIntegration,
    client: SendcloudV3Client,
    order: Order,
    shipment: OrderShipment,
    summary: CancelSummary,
) -> str | None:
    """One order's cancellation; returns a reason to refuse the remaining orders with, if any."""
    wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
    if wait:
        reason = f"the Sendcloud request budget is spent; try again in {math.ceil(wait)} s (nothing was changed)"
        summary.refused.append(CancelOutcome(order.pk, order.order_number, reason))
        return reason
    rows = OrderShipment.objects.filter(pk=shipment.pk)
    try:
        answer = client.cancel_shipment(shipment.sendcloud_shipment_id)
    except Conflict as exc:
        words = "; ".join(e.detail for e in exc.errors if e.detail) or exc.message
        rows.update(cancel_message=words)
        summary.refused.append(CancelOutcome(order.pk, order.order_number, words))
        return None
    except NotFound:
        reason = "Sendcloud has no such shipment"
        summary.refused.append(CancelOutcome(order.pk, order.order_number, reason))
        return None
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        reason = f"Sendcloud refused the credentials: {exc.message}"
        summary.refused.append(CancelOutcome(order.pk, order.order_number, reason))
        return reason
    except TransientError as exc:
        reason = f"Sendcloud did not answer ({exc.message}); nothing was changed, try again"
        summary.refused.append(CancelOutcome(order.pk, order.order_number, reason))
        return reason
    except SendcloudError as exc:
        summary.refused.append(CancelOutcome(order.pk, order.order_number, exc.message))
        return None
    integration.mark_connected(only_if_changed=True)
    now = timezone.now()
    outcome = CancelOutcome(order.pk, order.order_number, answer.message)
    if answer.queued:
        rows.move(
            source=[ShipmentState.LABELLED],
            target=ShipmentState.CANCEL_REQUESTED,
            cancel_requested_at=now,
            cancel_message=answer.message,
        )
        summary.cancellation_requested.append(outcome)
    else:
        rows.move(
            source=CANCELLABLE_STATES,
            target=ShipmentState.CANCELLED,
            cancel_requested_at=now,
            cancelled_at=now,
            cancel_message=answer.message,
        )
        summary.cancelled.append(outcome)
    return None
