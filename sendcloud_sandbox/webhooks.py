"""Signed webhook deliveries, as Sendcloud sends them: one ``parcel_status_changed`` per status change.

A background thread looks every ``interval`` seconds for the status changes that happened
(``SandboxState.take_webhook_steps``) on integrations whose webhook is on (``PATCH /integrations/{id}``)
and posts each, signed with the account's secret key (``Sendcloud-Signature``: hex HMAC-SHA256 of the
body), to the integration's ``webhook_url``. A delivery without a 2xx is tried again after
``webhook_retry_seconds`` (doubling), up to ``webhook_max_attempts``, like Sendcloud's own retries.

The config makes the deliveries as unruly as a real network: ``webhook_duplicate_rate`` sends a copy
twice, ``webhook_reorder`` shuffles the events that fell due together, ``webhook_max_delay_seconds``
holds each back by a random time (events then overtake each other), and ``webhook_bad_signature_rate``
sends a forged copy with a wrong signature first. Counters for the tests are in :meth:`counters`.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sendcloud_sandbox.state import StoredShipment
from sendcloud_sandbox.tracking import Step

if TYPE_CHECKING:
    from sendcloud_sandbox.app import SandboxApp

SIGNATURE_HEADER = "Sendcloud-Signature"


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def parcel_status_changed(shipment: StoredShipment, step: Step, parcel_index: int) -> dict[str, Any]:
    """The spec's ``ParcelStatusChangedWebhook`` for one parcel of a shipment at one step."""
    parcel = shipment.parcels[parcel_index]
    millis = int(step.at * 1000)
    return {
        "action": "parcel_status_changed",
        "timestamp": millis,
        "carrier_status_change_timestamp": millis,
        "parcel": {
            "id": parcel.id,
            "name": str(shipment.to_address.get("name", "")),
            "tracking_number": parcel.tracking_number,
            "weight": str(parcel.contents.weight.get("value", "")),
            "status": {"id": step.status.id, "message": step.status.message},
            "order_number": shipment.order_number,
            "shipment_uuid": shipment.id,
            "external_order_id": shipment.order_id,
        },
    }


@dataclass
class _Delivery:
    event: int  # which status change it carries (copies and retries share it)
    url: str
    body: bytes
    signature: str
    attempt: int = 1
    forged: bool = False


class WebhookDeliverer:
    """The sending side of the sandbox's webhooks; started and stopped with the server."""

    def __init__(self, app: SandboxApp, *, interval: float = 0.05) -> None:
        self._app = app
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._random = random.Random(app.config.seed)
        #: Deliveries held back (a delay, a retry's wait), by when they are due: a heap of (due, seq, delivery).
        self._waiting: list[tuple[float, int, _Delivery]] = []
        self._sequence = itertools.count()
        self._events = itertools.count(1)
        self._delivered_events: set[int] = set()
        self._in_flight = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._pool = ThreadPoolExecutor(self._app.config.webhook_concurrency, thread_name_prefix="sandbox-webhook")
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def counters(self) -> dict[str, int]:
        """``events`` (status changes to send), ``events_delivered`` (of those, answered 2xx at least once),
        ``sent`` (requests made: copies, forgeries and retries included), ``delivered`` (genuine requests
        answered 2xx), ``refused`` (genuine requests without a 2xx), ``forged``, ``given_up`` and
        ``in_flight`` (requests held back or being sent)."""
        keys = ("events", "sent", "delivered", "refused", "forged", "given_up")
        with self._lock:
            result = {key: self._counts[key] for key in keys}
            result["events_delivered"] = len(self._delivered_events)
            result["in_flight"] = self._in_flight
            return result

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._waiting.clear()
            self._delivered_events.clear()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.tick()

    def tick(self) -> None:
        """Hand every status change that happened since the last tick, and every held-back delivery now due,
        to the senders."""
        self._release_due()
        app = self._app
        targets = app.state.active_webhooks()
        if not targets:
            return
        config = app.config
        deliveries: list[_Delivery] = []
        for shipment, steps in app.state.take_webhook_steps(now=app.clock(), integration_ids=targets.keys()):
            secret = app.accounts.secret_for_integration(shipment.integration_id)
            if secret is None:
                continue
            for step in steps:
                for index in range(len(shipment.parcels)):
                    body = json.dumps(parcel_status_changed(shipment, step, index)).encode("utf-8")
                    url = targets[shipment.integration_id]
                    deliveries.append(_Delivery(next(self._events), url, body, sign(body, secret)))
        self._count("events", len(deliveries))
        copies: list[_Delivery] = []
        for delivery in deliveries:
            if self._random.random() < config.webhook_bad_signature_rate:
                forged = sign(delivery.body, "not-the-key")
                copies.append(_Delivery(delivery.event, delivery.url, delivery.body, forged, forged=True))
            copies.append(delivery)
            if self._random.random() < config.webhook_duplicate_rate:
                copies.append(_Delivery(delivery.event, delivery.url, delivery.body, delivery.signature))
        if config.webhook_reorder:
            self._random.shuffle(copies)
        for copy in copies:
            delay = self._random.uniform(0, config.webhook_max_delay_seconds) if config.webhook_max_delay_seconds else 0
            self._submit(copy, delay)

    def _submit(self, delivery: _Delivery, delay: float) -> None:
        with self._lock:
            self._in_flight += 1
        self._schedule(delivery, delay)

    def _schedule(self, delivery: _Delivery, delay: float) -> None:
        """Send now (on a sender thread), or hold back until ``delay`` has passed (no thread waits meanwhile)."""
        if delay > 0:
            with self._lock:
                heapq.heappush(self._waiting, (time.monotonic() + delay, next(self._sequence), delivery))
            return
        pool = self._pool
        if pool is not None and not self._stop.is_set():
            pool.submit(self._send, delivery)

    def _release_due(self) -> None:
        now = time.monotonic()
        due: list[_Delivery] = []
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now:
                due.append(heapq.heappop(self._waiting)[2])
        for delivery in due:
            self._schedule(delivery, 0)

    def pending(self) -> int:
        """Deliveries held back and not sent yet."""
        with self._lock:
            return len(self._waiting)

    def _send(self, delivery: _Delivery) -> None:
        try:
            self._attempt(delivery)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _attempt(self, delivery: _Delivery) -> None:
        self._count("sent")
        if delivery.forged:
            self._count("forged")
        status = _post(delivery.url, delivery.body, delivery.signature)
        if delivery.forged:
            return  # a forgery is never retried: Sendcloud did not send it
        if status is not None and 200 <= status < 300:
            with self._lock:
                self._counts["delivered"] += 1
                self._delivered_events.add(delivery.event)
            return
        self._count("refused")
        config = self._app.config
        if delivery.attempt >= config.webhook_max_attempts:
            self._count("given_up")
            return
        retry = _Delivery(delivery.event, delivery.url, delivery.body, delivery.signature, attempt=delivery.attempt + 1)
        self._submit(retry, config.webhook_retry_seconds * 2 ** (delivery.attempt - 1))


def _post(url: str, body: bytes, signature: str) -> int | None:
    """POST one delivery; the status code, or None when no answer came."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=10)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature, "User-Agent": "Sendcloud/1"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
