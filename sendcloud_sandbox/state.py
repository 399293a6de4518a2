"""The sandbox's in-memory store of orders, shipments and parcels.

One lock guards everything so a batch upsert is all-or-nothing even under concurrent requests, and
indexes keep look-ups O(1) when benchmarks push tens of thousands of orders. Parcel statuses are not
advanced by a background thread: each shipment stores when its announcement finishes and the status
is computed on read, which keeps the server simple and the timing exact.

The store also answers the question the sandbox exists for: did any order get more than one label?
Sendcloud itself happily creates a second shipment when asked twice, so the sandbox does too, and
counts.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sendcloud_sandbox.jsonapi import ApiError, JsonDict, error_object
from sendcloud_sandbox.parcels import ParcelContents
from sendcloud_sandbox.tracking import Step, status_at, timeline

ANNOUNCING = "ANNOUNCING"
READY_TO_SEND = "READY_TO_SEND"
ANNOUNCEMENT_FAILED = "ANNOUNCEMENT_FAILED"
STATUS_MESSAGES = {
    ANNOUNCING: "Being announced",
    READY_TO_SEND: "Ready to send",
    ANNOUNCEMENT_FAILED: "Announcement Failed",
}

_FIRST_ORDER_ID = 10_000_001
_FIRST_SHIPMENT_ID = 20_000_001
_FIRST_PARCEL_ID = 30_000_001


@dataclass
class StoredOrder:
    """An order as Sendcloud holds it: the last payload sent plus bookkeeping."""

    id: int
    integration_id: int
    order_id: str
    order_number: str
    payload: JsonDict
    created_at: float
    modified_at: float
    times_upserted: int
    visible_at: float

    def visible(self, now: float) -> bool:
        """Orders are saved asynchronously: invisible to GET and labels until ``visible_at``."""
        return now >= self.visible_at


@dataclass
class StoredParcel:
    """One parcel (one label) of a shipment."""

    id: int
    tracking_number: str
    contents: ParcelContents


@dataclass
class StoredShipment:
    """A shipment created for an order by ``create-labels-async``."""

    id: str
    integration_id: int
    order_pk: int
    order_id: str
    order_number: str
    to_address: JsonDict
    from_address: JsonDict
    ship_with: JsonDict
    total_order_price: JsonDict | None
    parcels: list[StoredParcel]
    created_at: float
    ready_at: float
    failure_message: str | None
    #: The parcels leave the EU customs and VAT area: each has a customs declaration (CN23) once announced.
    customs_declaration: bool = False
    #: The order's ``customs_details`` and items as they were when the label was made (for the declaration).
    customs: JsonDict | None = None
    #: ``tracking_progression`` as it was when the label was made: (seconds after ready, status id) pairs.
    progression: tuple[tuple[float, int], ...] = ()
    cancel_requested_at: float | None = None
    #: When the cancellation takes effect (None: not cancelled; later than the request: queued).
    cancelled_at: float | None = None
    #: Steps of the timeline already handed to the webhook deliverer.
    webhooks_emitted: int = 0

    def status(self, now: float) -> str:
        """ANNOUNCING until the label delay has passed, then READY_TO_SEND or ANNOUNCEMENT_FAILED, then
        the tracking progression or a cancellation (``tracking.py``)."""
        return status_at(self, now).code

    def status_message(self, now: float) -> str:
        return status_at(self, now).message

    def has_label(self, now: float) -> bool:
        """Whether the label exists at ``now`` (announced, whatever happened to the parcel since)."""
        return self.status(now) not in (ANNOUNCING, ANNOUNCEMENT_FAILED)

    @property
    def is_label(self) -> bool:
        """Whether this shipment yields (or will yield) a paid-for label: it did not fail and was not cancelled."""
        return self.failure_message is None and self.cancel_requested_at is None


@dataclass(frozen=True)
class OrderWrite:
    """One validated order of a batch, ready to upsert."""

    index: int
    integration_id: int
    order_id: str
    order_number: str
    payload: JsonDict
    explicit_id: str | None


@dataclass(frozen=True)
class NewShipment:
    """What ``create_shipment`` needs besides the order."""

    to_address: JsonDict
    from_address: JsonDict
    ship_with: JsonDict
    total_order_price: JsonDict | None
    parcels: list[ParcelContents]
    ready_at: float
    failure_message: str | None
    customs_declaration: bool = False
    customs: JsonDict | None = None
    progression: tuple[tuple[float, int], ...] = ()


@dataclass
class _Indexes:
    """Look-up tables kept in step with the orders and shipments."""

    order_by_key: dict[tuple[int, str], int] = field(default_factory=dict)
    orders_by_number: dict[tuple[int, str], set[int]] = field(default_factory=dict)
    parcel_to_shipment: dict[int, str] = field(default_factory=dict)
    shipments_by_number: dict[str, list[str]] = field(default_factory=dict)


def _tracking_number(parcel_id: int) -> str:
    """A unique, deterministic, carrier-looking tracking number."""
    return f"3SBOX{parcel_id:010d}"


class CancelRefused(Exception):
    """Sendcloud's 409 for a cancellation: ``detail`` is its message."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SandboxState:
    """Thread-safe store; every public method takes the lock once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order_ids = itertools.count(_FIRST_ORDER_ID)
        self._shipment_ids = itertools.count(_FIRST_SHIPMENT_ID)
        self._parcel_ids = itertools.count(_FIRST_PARCEL_ID)
        self._orders: dict[int, StoredOrder] = {}
        self._shipments: dict[str, StoredShipment] = {}
        self._index = _Indexes()
        self._in_flight: set[tuple[int, str]] = set()
        self._service_points_since: float | None = None
        #: Per integration: (webhook_active, webhook_url), as set with ``PATCH /integrations/{id}``.
        self._webhooks: dict[int, tuple[bool, str | None]] = {}

    def service_points_age(self, now: float) -> float:
        """Seconds since the sandbox first answered about service points (the clock their closing follows)."""
        with self._lock:
            if self._service_points_since is None:
                self._service_points_since = now
            return now - self._service_points_since

    def clear(self) -> None:
        """Forget every order and shipment; ids keep counting so stale ids never resolve again."""
        with self._lock:
            self._webhooks.clear()
            self._orders.clear()
            self._shipments.clear()
            self._index = _Indexes()
            self._in_flight.clear()
            self._service_points_since = None

    # ----- orders -------------------------------------------------------------------------

    def claim(self, keys: Collection[tuple[int, str]]) -> bool:
        """Mark orders as being processed; False when another request is processing one of them.

        This reproduces Sendcloud's "We are still processing a previous request" conflict for a
        retry that arrives while the first attempt is still running (e.g. after a client timeout).
        """
        with self._lock:
            if any(key in self._in_flight for key in keys):
                return False
            self._in_flight.update(keys)
            return True

    def release(self, keys: Collection[tuple[int, str]]) -> None:
        """End the processing started by :meth:`claim`."""
        with self._lock:
            self._in_flight.difference_update(keys)

    def upsert_orders(
        self, writes: list[OrderWrite], *, integration_ids: Collection[int], now: float, visible_at: float
    ) -> list[StoredOrder]:
        """Create or update a batch atomically; a 400 ApiError leaves the store untouched.

        Orders match on (integration id, order_id), or on the Sendcloud ``id`` when one is given,
        in which case ``order_id`` may not change.
        """
        with self._lock:
            errors: list[JsonDict] = []
            for write in writes:
                if write.explicit_id is None:
                    continue
                pointer = f"/data/attributes/[{write.index}]"
                target = self._orders.get(int(write.explicit_id)) if write.explicit_id.isdigit() else None
                if target is None or target.integration_id not in integration_ids:
                    detail = f"Order with id {write.explicit_id} does not exist"
                    errors.append(error_object(400, "invalid", detail, pointer=f"{pointer}/id"))
                elif target.order_id != write.order_id:
                    detail = f"Order id {target.order_id} cannot be changed"
                    errors.append(error_object(400, "invalid", detail, pointer=f"{pointer}/order_id"))
            if errors:
                raise ApiError(400, errors)
            return [self._upsert_one(write, now=now, visible_at=visible_at) for write in writes]

    def _upsert_one(self, write: OrderWrite, *, now: float, visible_at: float) -> StoredOrder:
        key = (write.integration_id, write.order_id)
        if write.explicit_id is not None:
            existing: StoredOrder | None = self._orders[int(write.explicit_id)]
        else:
            pk = self._index.order_by_key.get(key)
            existing = None if pk is None else self._orders[pk]
        if existing is None:
            order = StoredOrder(
                id=next(self._order_ids),
                integration_id=write.integration_id,
                order_id=write.order_id,
                order_number=write.order_number,
                payload=write.payload,
                created_at=now,
                modified_at=now,
                times_upserted=1,
                visible_at=visible_at,
            )
            self._orders[order.id] = order
            self._index.order_by_key[key] = order.id
            self._index_number(order)
            return order
        self._unindex_number(existing)
        if existing.integration_id != write.integration_id:
            self._index.order_by_key.pop((existing.integration_id, existing.order_id), None)
            existing.integration_id = write.integration_id
            self._index.order_by_key[key] = existing.id
        existing.order_number = write.order_number
        existing.payload = write.payload
        existing.modified_at = now
        existing.times_upserted += 1
        existing.visible_at = min(existing.visible_at, visible_at)
        self._index_number(existing)
        return existing

    def _index_number(self, order: StoredOrder) -> None:
        key = (order.integration_id, order.order_number.lower())
        self._index.orders_by_number.setdefault(key, set()).add(order.id)

    def _unindex_number(self, order: StoredOrder) -> None:
        key = (order.integration_id, order.order_number.lower())
        ids = self._index.orders_by_number.get(key)
        if ids is not None:
            ids.discard(order.id)
            if not ids:
                del self._index.orders_by_number[key]

    def get_order(self, pk: int, *, integration_ids: Collection[int], now: float) -> StoredOrder | None:
        """A visible order of the account's integrations."""
        with self._lock:
            order = self._orders.get(pk)
            if order is None or order.integration_id not in integration_ids or not order.visible(now):
                return None
            return order

    def delete_order(self, pk: int, *, integration_ids: Collection[int], now: float) -> bool:
        """Delete a visible order; False when there is none."""
        with self._lock:
            order = self._orders.get(pk)
            if order is None or order.integration_id not in integration_ids or not order.visible(now):
                return False
            del self._orders[pk]
            self._index.order_by_key.pop((order.integration_id, order.order_id), None)
            self._unindex_number(order)
            return True

    def list_orders(
        self,
        *,
        integration_ids: Collection[int],
        now: float,
        order_id: str | None = None,
        order_number: str | None = None,
        status: str | None = None,
    ) -> list[StoredOrder]:
        """Visible orders matching the filters (case-insensitive), newest first like ``sort=-pk``."""
        with self._lock:
            if order_number is not None:
                candidates: Iterable[StoredOrder] = (
                    self._orders[pk]
                    for integration in integration_ids
                    for pk in self._index.orders_by_number.get((integration, order_number.lower()), ())
                )
            else:
                candidates = self._orders.values()
            result = [
                order
                for order in candidates
                if order.integration_id in integration_ids
                and order.visible(now)
                and (order_id is None or order.order_id.lower() == order_id.lower())
                and (status is None or _order_status(order).lower() == status.lower())
            ]
        result.sort(key=lambda order: order.id, reverse=True)
        return result

    def find_order(
        self, *, integration_id: int, order_id: str | None, order_number: str | None, now: float
    ) -> StoredOrder | None:
        """The visible order a label request names, by order_id or else by order_number."""
        with self._lock:
            if order_id is not None:
                pk = self._index.order_by_key.get((integration_id, order_id))
                order = None if pk is None else self._orders[pk]
            elif order_number is not None:
                pks = self._index.orders_by_number.get((integration_id, order_number.lower()), set())
                exact = [self._orders[pk] for pk in pks if self._orders[pk].order_number == order_number]
                order = max(exact, key=lambda o: o.id) if exact else None
            else:
                order = None
            if order is None or not order.visible(now):
                return None
            return order

    # ----- shipments ----------------------------------------------------------------------

    def create_shipment(self, order: StoredOrder, new: NewShipment, *, now: float) -> StoredShipment:
        """Store a shipment with one parcel per entry of ``new.parcels``."""
        with self._lock:
            shipment_id = str(next(self._shipment_ids))
            parcels = []
            for contents in new.parcels:
                parcel_id = next(self._parcel_ids)
                parcels.append(
                    StoredParcel(id=parcel_id, tracking_number=_tracking_number(parcel_id), contents=contents)
                )
                self._index.parcel_to_shipment[parcel_id] = shipment_id
            shipment = StoredShipment(
                id=shipment_id,
                integration_id=order.integration_id,
                order_pk=order.id,
                order_id=order.order_id,
                order_number=order.order_number,
                to_address=new.to_address,
                from_address=new.from_address,
                ship_with=new.ship_with,
                total_order_price=new.total_order_price,
                parcels=parcels,
                created_at=now,
                ready_at=new.ready_at,
                failure_message=new.failure_message,
                customs_declaration=new.customs_declaration,
                customs=new.customs,
                progression=new.progression,
            )
            self._shipments[shipment_id] = shipment
            self._index.shipments_by_number.setdefault(order.order_number.lower(), []).append(shipment_id)
            return shipment

    def get_shipment(self, shipment_id: str, *, integration_ids: Collection[int]) -> StoredShipment | None:
        """A shipment of the account's integrations."""
        with self._lock:
            shipment = self._shipments.get(shipment_id)
            if shipment is None or shipment.integration_id not in integration_ids:
                return None
            return shipment

    def find_parcel(
        self, parcel_id: int, *, integration_ids: Collection[int]
    ) -> tuple[StoredShipment, StoredParcel] | None:
        """A parcel and its shipment, for document downloads."""
        with self._lock:
            shipment_id = self._index.parcel_to_shipment.get(parcel_id)
            shipment = None if shipment_id is None else self._shipments.get(shipment_id)
            if shipment is None or shipment.integration_id not in integration_ids:
                return None
            for parcel in shipment.parcels:
                if parcel.id == parcel_id:
                    return shipment, parcel
            return None

    def list_shipments(
        self,
        *,
        integration_ids: Collection[int],
        now: float,
        order_number: str | None = None,
        external_reference_id: str | None = None,
        tracking_number: str | None = None,
        parcel_status: str | None = None,
        shipment_ids: Collection[str] | None = None,
        parcel_ids: Collection[int] | None = None,
    ) -> list[StoredShipment]:
        """Shipments matching every filter given, newest first.

        ``shipment_ids`` and ``parcel_ids`` (the ``shipment_uuids`` and ``ids`` filters) are looked up
        directly, so polling a hundred shipments does not scan the whole store.
        """
        with self._lock:
            candidates: Iterable[StoredShipment]
            if shipment_ids is not None:
                candidates = (self._shipments[i] for i in set(shipment_ids) if i in self._shipments)
            elif parcel_ids is not None:
                owners = {self._index.parcel_to_shipment.get(p) for p in parcel_ids} - {None}
                candidates = (self._shipments[i] for i in owners if i is not None and i in self._shipments)
            elif order_number is not None:
                ids = self._index.shipments_by_number.get(order_number.lower(), [])
                candidates = (self._shipments[i] for i in ids if i in self._shipments)
            else:
                candidates = self._shipments.values()
            wanted_parcels = None if parcel_ids is None else set(parcel_ids)
            result = [
                shipment
                for shipment in candidates
                if shipment.integration_id in integration_ids
                and (shipment_ids is None or shipment.id in shipment_ids)
                and (wanted_parcels is None or any(p.id in wanted_parcels for p in shipment.parcels))
                and (order_number is None or shipment.order_number == order_number)
                # Shipments made from orders carry no external_reference_id, like on Sendcloud.
                and external_reference_id is None
                and (tracking_number is None or any(p.tracking_number == tracking_number for p in shipment.parcels))
                and (parcel_status is None or shipment.status(now) == parcel_status.upper())
            ]
        result.sort(key=lambda shipment: int(shipment.id), reverse=True)
        return result

    # ----- integrations' webhooks ---------------------------------------------------------

    def webhook(self, integration_id: int) -> tuple[bool, str | None]:
        """(webhook_active, webhook_url) of an integration; off and without a URL until set."""
        with self._lock:
            return self._webhooks.get(integration_id, (False, None))

    def set_webhook(self, integration_id: int, *, active: bool | None, url: str | None) -> None:
        """Change what is given; a 400 ApiError when it would be on without a URL (the spec's rule)."""
        with self._lock:
            old_active, old_url = self._webhooks.get(integration_id, (False, None))
            new_active = old_active if active is None else active
            new_url = old_url if url is None else url
            if new_active and not new_url:
                raise ApiError.single(
                    400, "invalid", "Webhook URL required when enable webhook is set to true", title="Invalid"
                )
            self._webhooks[integration_id] = (new_active, new_url)

    def active_webhooks(self) -> dict[int, str]:
        """Integration id → URL for the integrations whose webhook is on."""
        with self._lock:
            return {i: url for i, (active, url) in self._webhooks.items() if active and url}

    def cancel_shipment(
        self, shipment: StoredShipment, *, now: float, window_seconds: float, confirm_seconds: float
    ) -> bool:
        """Cancel by Sendcloud's rules; True when done at once (200), False when queued (202).

        Refused (409) when already cancelled or being cancelled, once delivered, once the parcel is on its way
        (the carrier has it), or past the cancellation window after the label was made.
        """
        with self._lock:
            status = shipment.status(now)
            if shipment.cancel_requested_at is not None:
                raise CancelRefused("This shipment is already being cancelled.")
            if status == ANNOUNCEMENT_FAILED:
                raise CancelRefused("This shipment has no label to cancel.")
            if status == "DELIVERED":
                raise CancelRefused("This shipment has been delivered and can no longer be cancelled.")
            if now - shipment.ready_at > window_seconds:
                raise CancelRefused("The cancellation period for this shipment has expired.")
            if status not in (ANNOUNCING, READY_TO_SEND):
                raise CancelRefused("The carrier does not accept the cancellation of a parcel that is on its way.")
            shipment.cancel_requested_at = now
            shipment.cancelled_at = now + confirm_seconds
            return confirm_seconds <= 0

    def take_webhook_steps(
        self, *, now: float, integration_ids: Collection[int]
    ) -> list[tuple[StoredShipment, list[Step]]]:
        """The timeline steps that happened since the last call, per shipment of the given integrations."""
        taken: list[tuple[StoredShipment, list[Step]]] = []
        with self._lock:
            for shipment in self._shipments.values():
                if shipment.integration_id not in integration_ids:
                    continue
                steps = [step for step in timeline(shipment) if step.at <= now]
                # The first step (ANNOUNCING, when the shipment was made) is not a change: never sent.
                fresh = steps[max(shipment.webhooks_emitted, 1) :]
                if fresh:
                    shipment.webhooks_emitted = len(steps)
                    taken.append((shipment, fresh))
        return taken

    # ----- inspection ---------------------------------------------------------------------

    def snapshot(self, *, now: float, include_items: bool = True) -> JsonDict:
        """Everything a test asserts on, including the duplicate-label detector."""
        with self._lock:
            orders = list(self._orders.values())
            shipments = list(self._shipments.values())
            in_flight = len(self._in_flight)
        labels: Counter[str] = Counter()
        attempts: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        cancelled: Counter[str] = Counter()
        for shipment in shipments:
            attempts[shipment.order_id] += 1
            statuses[shipment.status(now)] += 1
            if shipment.is_label:
                labels[shipment.order_id] += 1
            elif shipment.cancel_requested_at is not None:
                cancelled[shipment.order_id] += 1
        duplicates = sorted(order_id for order_id, count in labels.items() if count > 1)
        result: JsonDict = {
            "orders": {"count": len(orders), "upserts": sum(o.times_upserted for o in orders)},
            "shipments": {"count": len(shipments), "by_status": dict(statuses)},
            "labels_per_order": dict(labels),
            "shipments_per_order": dict(attempts),
            "cancelled_labels_per_order": dict(cancelled),
            "duplicate_labels": len(duplicates),
            "orders_with_duplicate_labels": duplicates,
            "in_flight_orders": in_flight,
        }
        if include_items:
            result["orders"]["items"] = [_order_summary(order, now) for order in orders]
            result["shipments"]["items"] = [_shipment_summary(shipment, now) for shipment in shipments]
        return result


def _order_status(order: StoredOrder) -> str:
    details = order.payload.get("order_details")
    status = details.get("status") if isinstance(details, Mapping) else None
    code = status.get("code") if isinstance(status, Mapping) else None
    return code if isinstance(code, str) else ""


def _order_summary(order: StoredOrder, now: float) -> dict[str, Any]:
    return {
        "id": order.id,
        "order_id": order.order_id,
        "order_number": order.order_number,
        "integration": order.integration_id,
        "times_upserted": order.times_upserted,
        "visible": order.visible(now),
    }


def _shipment_summary(shipment: StoredShipment, now: float) -> dict[str, Any]:
    status = shipment.status(now)
    return {
        "id": shipment.id,
        "order_id": shipment.order_id,
        "order_number": shipment.order_number,
        "integration_id": shipment.integration_id,
        "status": status,
        "parcels": [
            {"id": parcel.id, "tracking_number": parcel.tracking_number if shipment.has_label(now) else ""}
            for parcel in shipment.parcels
        ],
    }
