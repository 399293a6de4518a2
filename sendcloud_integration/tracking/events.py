"""Applying what Sendcloud says about a parcel: the one writer of a parcel's status and its history.

A status reaches us from a webhook (``parcel_status_changed``, with Sendcloud's timestamp) or from the
polling fallback (with the time it was read). Either way :func:`apply_status`:

1. records the event in the parcel's history once (``ParcelEvent.dedup_key``: a duplicate delivery adds
   nothing and changes nothing);
2. moves the parcel's current status only when the event is newer than the one applied, in one
   conditional ``UPDATE … WHERE status_changed_at < %s`` (events applied out of order, even by two
   workers at once, end at the newest);
3. lets the status settle a cancellation: all parcels cancelled → the shipment is CANCELLED; a parcel
   that moves on while a cancellation was queued → back to LABELLED, with the reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sendcloud_integration.models import (
    CANCELLABLE_STATES,
    EventSource,
    OrderShipment,
    ParcelEvent,
    ShipmentParcel,
    ShipmentState,
)
from sendcloud_integration.tracking import statuses
from sendcloud_integration.tracking.statuses import Kind

logger = logging.getLogger(__name__)

PARCEL_STATUS_CHANGED = "parcel_status_changed"
RETURN_CREATED = "return_created"


class UnreadablePayload(ValueError):
    """A signed body that is not a webhook we can read (not JSON, no action, no parcel id)."""


@dataclass(frozen=True)
class StatusUpdate:
    """One parcel's status at a moment, as Sendcloud gave it."""

    parcel_id: str
    status_id: int | None
    status_code: str
    message: str
    timestamp: float

    @property
    def kind(self) -> Kind:
        return statuses.kind_of(self.status_id, self.status_code)


@dataclass(frozen=True)
class ReturnCreated:
    return_id: str
    order_number: str
    timestamp: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OtherAction:
    action: str


Event = StatusUpdate | ReturnCreated | OtherAction


def occurred_at(timestamp: float) -> datetime:
    """Sendcloud's unix timestamp as a time; milliseconds (the spec's examples) and seconds both read."""
    seconds = timestamp / 1000 if timestamp > 100_000_000_000 else timestamp
    return datetime.fromtimestamp(seconds, tz=UTC)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadablePayload(f"{what} is not a number")
    return float(value)


def parse(body: bytes) -> Event:
    """A webhook body (spec ``v3/webhooks``) as one of the events above; :class:`UnreadablePayload` if unreadable."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadablePayload("the body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        raise UnreadablePayload("the body has no action")
    action = payload["action"]
    if action == PARCEL_STATUS_CHANGED:
        parcel = payload.get("parcel")
        if not isinstance(parcel, dict) or parcel.get("id") in (None, ""):
            raise UnreadablePayload("parcel_status_changed without a parcel id")
        raw_status = parcel.get("status")
        status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        raw_id = status.get("id")
        status_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        status_id, code = statuses.complete(status_id, "")
        return StatusUpdate(
            parcel_id=str(parcel["id"]),
            status_id=status_id,
            status_code=code,
            message=str(status.get("message") or "")[:300],
            timestamp=_number(payload.get("timestamp"), "timestamp"),
        )
    if action == RETURN_CREATED:
        data = payload.get("data")
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            raise UnreadablePayload("return_created without a return id")
        kept = {key: data[key] for key in ("id", "order_number", "return_reason_id", "refund_type") if key in data}
        return ReturnCreated(
            return_id=str(data["id"]),
            order_number=str(data.get("order_number") or ""),
            timestamp=_number(payload.get("timestamp"), "timestamp"),
            data=kept,
        )
    return OtherAction(action=action)


class Outcome:
    """What applying an event did, in the words stored on the delivery (``WebhookDelivery.outcome``)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate: already recorded"
    OLDER = "recorded: older than the status already applied"
    UNKNOWN_PARCEL = "unknown parcel"
    NO_SHIPMENT = "recorded: no shipment of this shop has that order number"


def poll_delay(parcel_created_at: datetime, *, now: datetime) -> timedelta:
    """How long until the polling fallback reads a parcel again: doubling with its age, within the bounds."""
    low = settings.SENDCLOUD_TRACKING_POLL_MIN_SECONDS
    high = settings.SENDCLOUD_TRACKING_POLL_MAX_SECONDS
    age = max((now - parcel_created_at).total_seconds(), 0.0)
    return timedelta(seconds=min(high, max(low, age / 4)))


def apply_status(parcel: ShipmentParcel, update: StatusUpdate, *, source: str, delivery_id: int | None = None) -> str:
    """Record ``update`` in the parcel's history once, and make it current if it is the newest. Idempotent."""
    shipment_id = parcel.shipment_id
    shop_id = OrderShipment.objects.filter(pk=shipment_id).values_list("shop_id", flat=True).first()
    if shop_id is None:
        return Outcome.UNKNOWN_PARCEL
    at = occurred_at(update.timestamp)
    key = f"{PARCEL_STATUS_CHANGED}:{update.parcel_id}:{update.timestamp!r}:{update.status_id}:{update.status_code}"
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = ParcelEvent.objects.create(
                    shop_id=shop_id,
                    shipment_id=shipment_id,
                    delivery_id=delivery_id,
                    source=source,
                    action=PARCEL_STATUS_CHANGED,
                    sendcloud_parcel_id=update.parcel_id,
                    status_id=update.status_id,
                    status_code=update.status_code,
                    status_message=update.message,
                    timestamp=update.timestamp,
                    occurred_at=at,
                    dedup_key=key[:200],
                )
        except IntegrityError:
            return Outcome.DUPLICATE
        kind = update.kind
        fields: dict[str, Any] = {
            "status_id": update.status_id,
            "status_code": update.status_code,
            "status_message": update.message or _default_message(update),
            "status_changed_at": at,
            "next_poll_at": None if kind in statuses.FINAL_KINDS else now + poll_delay(parcel.created_at, now=now),
        }
        if kind is Kind.DELIVERED:
            fields["delivered_at"] = at
        if kind is Kind.EXCEPTION:
            fields["exception_at"] = at
        newer = Q(status_changed_at__isnull=True) | Q(status_changed_at__lt=at)
        moved = ShipmentParcel.objects.filter(pk=parcel.pk).filter(newer).update(**fields)
        if not moved:
            return Outcome.OLDER
        ParcelEvent.objects.filter(pk=event.pk).update(applied=True)
        _settle_cancellation(shipment_id, kind, update)
    return Outcome.APPLIED


def _default_message(update: StatusUpdate) -> str:
    known = statuses.BY_ID.get(update.status_id) if update.status_id is not None else None
    return known.message if known is not None else update.status_code


def _settle_cancellation(shipment_id: int, kind: Kind, update: StatusUpdate) -> None:
    """A status that decides a cancellation moves the shipment (through ``move``, the one owner of states)."""
    rows = OrderShipment.objects.filter(pk=shipment_id)
    if kind is Kind.CANCELLED:
        kinds = {
            statuses.kind_of(status_id, code)
            for status_id, code in ShipmentParcel.objects.filter(shipment_id=shipment_id).values_list(
                "status_id", "status_code"
            )
        }
        if kinds == {Kind.CANCELLED}:
            now = timezone.now()
            if rows.move(source=CANCELLABLE_STATES, target=ShipmentState.CANCELLED, cancelled_at=now):
                logger.info("shipment=%s cancelled (parcel %s: %s)", shipment_id, update.parcel_id, update.message)
    elif kind in (Kind.IN_TRANSIT, Kind.DELIVERED, Kind.EXCEPTION):
        moved = rows.move(
            source=[ShipmentState.CANCEL_REQUESTED],
            target=ShipmentState.LABELLED,
            cancel_message=f"Sendcloud did not cancel the label: the parcel is {update.message or kind.value}.",
        )
        if moved:
            logger.info("shipment=%s cancellation did not happen (parcel %s moved on)", shipment_id, update.parcel_id)


def record_return(shop_id: int, event: ReturnCreated, *, delivery_id: int | None = None) -> str:
    """A ``return_created`` in the history of the shipment with that order number (once)."""
    shipment = (
        OrderShipment.objects.filter(shop_id=shop_id, order__order_number=event.order_number)
        .only("pk", "sendcloud_parcel_id")
        .first()
        if event.order_number
        else None
    )
    try:
        with transaction.atomic():
            ParcelEvent.objects.create(
                shop_id=shop_id,
                shipment=shipment,
                delivery_id=delivery_id,
                source=EventSource.WEBHOOK,
                action=RETURN_CREATED,
                sendcloud_parcel_id=shipment.sendcloud_parcel_id if shipment else "",
                status_message="Return created",
                timestamp=event.timestamp,
                occurred_at=occurred_at(event.timestamp),
                applied=shipment is not None,
                data=event.data,
                dedup_key=f"{RETURN_CREATED}:{event.return_id}"[:200],
            )
    except IntegrityError:
        return Outcome.DUPLICATE
    return Outcome.APPLIED if shipment is not None else Outcome.NO_SHIPMENT
