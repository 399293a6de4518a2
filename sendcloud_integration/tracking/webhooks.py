"""The webhook receiver's service: verify a delivery, store it, hand it to a worker, apply it.

:func:`receive` is the one function every delivery passes through, accepted or rejected (a counter of
deliveries belongs there). A delivery is accepted only with a valid ``Sendcloud-Signature``
(``signatures.py``); then its raw body is committed as a ``WebhookDelivery`` row *before* the answer,
so an event is never lost between Sendcloud and the workers: if the broker does not take the message
(or its parcel is not stored yet), :func:`resend_stale` sends the row again; a worker that dies mid-task
has its message redelivered (``acks_late``). :func:`process_delivery` is idempotent
(the row is locked, and done once ``processed_at`` is set), so a message handled twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sendcloud_integration.models import EventSource, SendcloudIntegration, ShipmentParcel, WebhookDelivery
from sendcloud_integration.pipeline import dispatch
from sendcloud_integration.tracking import events, signatures
from wemasy import metrics
from wemasy.errors import ApplicationError

logger = logging.getLogger(__name__)

APPLY_DELIVERY: Final = "sendcloud_integration.tasks.apply_webhook_delivery"
#: Stale deliveries re-sent per sweep at most (each is one small message).
RESEND_BATCH: Final = 1000


class WebhookRejected(ApplicationError):
    """A delivery that is not stored: unknown URL, or a missing or wrong signature."""

    http_status = 401


class UnknownWebhook(WebhookRejected):
    http_status = 404


@dataclass(frozen=True)
class Receipt:
    delivery_id: int
    queued: bool  # whether the broker took the message (if not, the sweep sends it)


def receive(token: str, body: bytes, signature_header: str | None) -> Receipt:
    """Accept one delivery for the integration behind ``token``, or raise :class:`WebhookRejected`.

    Nothing is stored for a rejected delivery. The row is committed before this returns, and the message
    to the workers is sent after the commit, bounded in time (a broker that is down does not hold the
    answer: the row waits for the sweep).
    """
    integration = (
        SendcloudIntegration.objects.filter(webhook_token=token, is_active=True)
        .only("pk", "secret_key", "webhook_signature_key")
        .first()
    )
    if integration is None:
        metrics.WEBHOOK_DELIVERIES.labels("unknown_webhook").inc()
        raise UnknownWebhook("No such webhook.")
    key = integration.webhook_signature_key or integration.secret_key
    if not signatures.is_valid(body, signature_header, key):
        logger.warning("webhook: integration=%s delivery refused: missing or wrong signature", integration.pk)
        metrics.WEBHOOK_DELIVERIES.labels("bad_signature").inc()
        raise WebhookRejected("Missing or invalid Sendcloud-Signature.")
    delivery = WebhookDelivery.objects.create(integration_id=integration.pk, body=body)
    queued = send(delivery.pk)
    if not queued:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(queued_at=None)
    metrics.WEBHOOK_DELIVERIES.labels("accepted" if queued else "stored_for_the_sweep").inc()
    return Receipt(delivery_id=delivery.pk, queued=queued)


def send(delivery_id: int) -> bool:
    """One message naming the delivery; False when the broker did not take it."""
    try:
        dispatch.publish(APPLY_DELIVERY, (delivery_id,))
    except Exception as exc:  # any failure leaves the durable row for the sweep
        logger.warning(
            "webhook: delivery=%s not queued (%s); the sweep sends it",
            delivery_id,
            type(exc).__name__,
            exc_info=not isinstance(exc, dispatch.BROKER_DOWN_ERRORS),  # a bug gets its traceback
        )
        return False
    return True


def process_delivery(delivery_id: int) -> str:
    """Apply one stored delivery, once. Returns what it did (also stored on the row)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=delivery_id, processed_at__isnull=True)
            .select_related("integration")
            .first()
        )
        if delivery is None:
            return "already processed, or being processed"
        attempts = delivery.attempts + 1
        outcome = _apply(delivery, last_attempt=attempts >= settings.SENDCLOUD_WEBHOOK_MAX_ATTEMPTS)
        done = outcome != events.Outcome.UNKNOWN_PARCEL or attempts >= settings.SENDCLOUD_WEBHOOK_MAX_ATTEMPTS
        changes: dict[str, object] = {"attempts": attempts, "outcome": outcome[:200]}
        if done:
            changes["processed_at"] = timezone.now()
        else:
            changes["queued_at"] = None  # its message is used up: the next sweep sends it again
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**changes)
    return outcome


def _apply(delivery: WebhookDelivery, *, last_attempt: bool) -> str:
    shop_id = delivery.integration.shop_id
    try:
        event = events.parse(bytes(delivery.body))
    except events.UnreadablePayload as exc:
        logger.warning("webhook: delivery=%s unreadable: %s", delivery.pk, exc)
        return f"unreadable: {exc}"
    if isinstance(event, events.OtherAction):
        return f"ignored: {event.action}"
    if isinstance(event, events.ReturnCreated):
        return events.record_return(shop_id, event, delivery_id=delivery.pk)
    parcel = (
        ShipmentParcel.objects.filter(shipment__shop_id=shop_id, sendcloud_parcel_id=event.parcel_id)
        .order_by("-pk")
        .first()
    )
    if parcel is None:
        # The label phase may not have stored the parcel yet (the webhook can beat it): try again later.
        if last_attempt:
            logger.warning("webhook: delivery=%s: parcel %s unknown to shop=%s", delivery.pk, event.parcel_id, shop_id)
        return events.Outcome.UNKNOWN_PARCEL
    return events.apply_status(parcel, event, source=EventSource.WEBHOOK, delivery_id=delivery.pk)


def resend_stale() -> int:
    """Send again the pending deliveries that have no message on its way: the broker did not take it, or
    it waits for its parcel, or it was sent longer than ``SENDCLOUD_WEBHOOK_RETRY_SECONDS`` ago (a message
    lost with the broker's data). A delivery whose message is merely queued behind a burst is left alone,
    so a backlog is not multiplied. Returns how many were sent."""
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.SENDCLOUD_WEBHOOK_RETRY_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(processed_at__isnull=True)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=overdue))
        .order_by("received_at")
        .values_list("pk", flat=True)[:RESEND_BATCH]
    )
    sent = 0
    for delivery_id in ids:
        if not send(delivery_id):
            break
        WebhookDelivery.objects.filter(pk=delivery_id, processed_at__isnull=True).update(queued_at=timezone.now())
        sent += 1
    if ids:
        logger.info("webhook sweep: re-sent %d of %d pending deliveries", sent, len(ids))
    return sent


def webhook_path(integration: SendcloudIntegration) -> str:
    """The receiver's path for an integration (it names no shop: a random token)."""
    return f"/webhooks/sendcloud/{integration.webhook_token}"
