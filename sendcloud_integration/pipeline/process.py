"""Processing one chunk of a push batch: what the ``process_chunk`` task does, start to end.

A chunk is claimed with a conditional update, so only one worker works on it at a time; a worker
that dies leaves the chunk RUNNING, and once its claim is older than ``SENDCLOUD_STALE_AFTER_SECONDS``
a redelivered message or the sweep may claim it again. Orders are sent with one ``POST /v3/orders``
per chunk; Sendcloud rejects such a request whole when one order is invalid, so the invalid ones are
failed with Sendcloud's own words and the rest are sent again. Transient trouble (5xx, timeouts,
429, "still processing") hands the chunk back with a delay, a bounded number of times; a spent
request budget hands it back too, without counting an attempt. Every order leaves in a terminal
state or back in QUEUED for the next attempt: nothing is left half-done.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from sendcloud_integration.models import (
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    Phase,
    PushBatch,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline.labels import work as labels
from sendcloud_integration.push.services import fail_shipments
from sendcloud_integration.sendcloud import budget, payloads
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import AuthenticationError, OrdersRejected, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import UpsertedOrder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkOutcome:
    """What the task reports. ``retry_in`` set means: run this chunk again after that many seconds."""

    pushed: int = 0
    labelled: int = 0
    failed: int = 0
    retry_in: float | None = None
    counts_attempt: bool = True

    def as_dict(self) -> dict[str, int]:
        return {"pushed": self.pushed, "labelled": self.labelled, "failed": self.failed}


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least what Sendcloud asked for."""
    cap = min(settings.SENDCLOUD_RETRY_MAX_SECONDS, settings.SENDCLOUD_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    delay = random.uniform(cap / 2, cap) if cap > 0 else 0.0
    return max(delay, retry_after or 0.0)


def spread(wait: float) -> float:
    """A budget wait plus up to a second of jitter, so chunks that wait together do not all wake together."""
    return wait + random.uniform(0, min(1.0, wait))


def claim_chunk(*, batch_id: uuid.UUID, chunk_number: int) -> PushChunk | None:
    """Take the chunk for this worker, or None when it is done or another live worker has it."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SENDCLOUD_STALE_AFTER_SECONDS)
    claimed = (
        PushChunk.objects.filter(batch_id=batch_id, number=chunk_number)
        .filter(Q(status=ChunkStatus.PENDING) | Q(status=ChunkStatus.RUNNING, claimed_at__lt=stale))
        .update(status=ChunkStatus.RUNNING, claimed_at=now)
    )
    if not claimed:
        return None
    PushBatch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED).update(status=BatchStatus.RUNNING, started_at=now)
    return PushChunk.objects.select_related("batch__shop").get(batch_id=batch_id, number=chunk_number)


def release_chunk(chunk: PushChunk, *, counts_attempt: bool, error: str = "") -> None:
    """Hand the chunk back for a later attempt: its in-progress orders return to QUEUED."""
    OrderShipment.objects.filter(batch_id=chunk.batch_id, chunk_number=chunk.number).move(
        source=[ShipmentState.PUSHING], target=ShipmentState.QUEUED
    )
    PushChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.RUNNING).update(
        status=ChunkStatus.PENDING,
        attempts=F("attempts") + (1 if counts_attempt else 0),
        last_error=error[:2000] if error else F("last_error"),
    )


def complete_chunk(chunk: PushChunk) -> None:
    PushChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.RUNNING).update(
        status=ChunkStatus.DONE, finished_at=timezone.now()
    )


def process_chunk(*, batch_id: uuid.UUID, chunk_number: int) -> ChunkOutcome:
    chunk = claim_chunk(batch_id=batch_id, chunk_number=chunk_number)
    if chunk is None:
        logger.info("batch=%s chunk=%d already done or taken; nothing to do", batch_id, chunk_number)
        return ChunkOutcome()
    batch = chunk.batch
    call_log = CallLog(shop_id=batch.shop_id, batch_id=batch.pk, chunk_number=chunk_number)
    try:
        outcome = _work(chunk, call_log)
    except Exception as exc:
        # A bug, a storage error, an order that cannot be encoded: none of these may leave the
        # chunk's orders in flight forever. It is retried like a passing error, and failed when the
        # attempts run out. The traceback goes to the log; the orders get a sentence.
        logger.exception("batch=%s chunk=%d failed unexpectedly", batch_id, chunk_number)
        outcome = _unexpected_failure(chunk, exc)
    finally:
        call_log.flush()

    if outcome.retry_in is not None:
        release_chunk(chunk, counts_attempt=outcome.counts_attempt)
        logger.info("batch=%s chunk=%d handed back; again in %.1fs", batch_id, chunk_number, outcome.retry_in)
    else:
        complete_chunk(chunk)
        logger.info(
            "batch=%s chunk=%d done: pushed=%d labelled=%d failed=%d",
            batch_id,
            chunk_number,
            outcome.pushed,
            outcome.labelled,
            outcome.failed,
        )
    return outcome


def _work(chunk: PushChunk, call_log: CallLog) -> ChunkOutcome:
    """The push phase, then (for batches that create labels) the label phase."""
    batch = chunk.batch
    integration = SendcloudIntegration.objects.filter(shop_id=batch.shop_id).first()
    problem = _integration_problem(integration)
    if problem or integration is None:
        outcome = _fail_chunk(chunk, problem or "No SendCloud integration.")
        if batch.create_label:
            # Label work left from an earlier run cannot go on either; it must not stay in flight.
            failed = labels.fail_label_rows(chunk=chunk, error=problem or "No SendCloud integration.")
            outcome = replace(outcome, failed=outcome.failed + failed)
    else:
        client = build_client(integration, call_log)
        outcome = _push_phase(chunk, integration, client, call_log)
        if outcome.retry_in is None and batch.create_label:
            label_outcome = labels.label_phase(chunk=chunk, integration=integration, client=client, call_log=call_log)
            outcome = replace(
                label_outcome,
                pushed=outcome.pushed,
                failed=outcome.failed + label_outcome.failed,
            )
    return outcome


def _unexpected_failure(chunk: PushChunk, exc: Exception) -> ChunkOutcome:
    attempt = chunk.attempts + 1
    if attempt < settings.SENDCLOUD_MAX_ATTEMPTS:
        PushChunk.objects.filter(pk=chunk.pk).update(last_error=f"Unexpected {type(exc).__name__}")
        return ChunkOutcome(retry_in=backoff_seconds(attempt), counts_attempt=True)
    error = (
        f"Gave up after {attempt} attempts: an unexpected {type(exc).__name__} while processing this order "
        "(the details are in the worker's log)."
    )
    failed = _fail_chunk(chunk, error).failed
    if chunk.batch.create_label:
        failed += labels.fail_label_rows(chunk=chunk, error=error)
    return ChunkOutcome(failed=failed)


def _integration_problem(integration: SendcloudIntegration | None) -> str:
    if integration is None:
        return "The shop's SendCloud integration was removed before this order was sent."
    if not integration.is_active:
        return "The shop's SendCloud integration was deactivated before this order was sent."
    if not integration.has_credentials:
        return "The shop's SendCloud integration lacks API credentials."
    return ""


def _fail_chunk(chunk: PushChunk, error: str) -> ChunkOutcome:
    ids = list(
        OrderShipment.objects.filter(
            batch_id=chunk.batch_id, chunk_number=chunk.number, state__in=[ShipmentState.QUEUED, ShipmentState.PUSHING]
        ).values_list("pk", flat=True)
    )
    failed = fail_shipments(
        shipment_ids=ids, phase=Phase.PUSH, error=error, source=[ShipmentState.QUEUED, ShipmentState.PUSHING]
    )
    return ChunkOutcome(failed=failed)


def _push_phase(
    chunk: PushChunk, integration: SendcloudIntegration, client: SendcloudV3Client, call_log: CallLog
) -> ChunkOutcome:
    in_chunk = OrderShipment.objects.filter(
        batch_id=chunk.batch_id,
        chunk_number=chunk.number,
        state__in=[ShipmentState.QUEUED, ShipmentState.PUSHING],
    )
    needs_upsert = in_chunk.exclude(
        state=ShipmentState.QUEUED, create_label=True, pushed_at__isnull=False, failed_phase=""
    )
    # Look at the budget before loading and mapping a hundred orders: while it is spent, dozens of
    # waiting chunks wake up and go back to sleep, and each of those turns must cost a Redis call,
    # not a chunk's worth of queries and payload building. The slot itself is taken just before
    # sending (below), so the time spent preparing never sits between grant and request.
    if needs_upsert.exists():
        wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE, consume=False)
        if wait:
            return ChunkOutcome(retry_in=spread(wait), counts_attempt=False)
    rows = list(
        in_chunk.select_related("order__shipping_address", "order__shop")
        .prefetch_related("order__lines")
        .order_by("pk")
    )
    if not rows:
        return ChunkOutcome()
    # Orders already in Sendcloud that only want a label skip the upsert. One whose last label attempt
    # failed is sent again first: the shop may have fixed what the carrier refused (the address, say).
    label_only = [r for r in rows if _label_only(r)]
    to_push = [r for r in rows if r not in label_only]
    if label_only:
        OrderShipment.objects.filter(pk__in=[r.pk for r in label_only]).move(
            source=[ShipmentState.QUEUED], target=ShipmentState.LABEL_QUEUED
        )
    OrderShipment.objects.filter(pk__in=[r.pk for r in to_push]).move(
        source=[ShipmentState.QUEUED], target=ShipmentState.PUSHING
    )

    failed = 0
    pending: dict[str, tuple[OrderShipment, dict[str, object]]] = {}
    for row in to_push:
        problems = payloads.precheck(row.order)
        if problems:
            failed += fail_shipments(
                shipment_ids=[row.pk], phase=Phase.PUSH, error=" ".join(problems), source=[ShipmentState.PUSHING]
            )
            continue
        pending[payloads.sendcloud_order_id(row.order)] = (row, payloads.build_order(row.order, integration))

    pushed = 0
    while pending:
        wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            return ChunkOutcome(pushed=pushed, failed=failed, retry_in=spread(wait), counts_attempt=False)
        batch_rows = list(pending.values())
        # ``attempts`` counts the times an order was really sent, so it moves only now.
        OrderShipment.objects.filter(pk__in=[row.pk for row, _ in batch_rows]).update(attempts=F("attempts") + 1)
        call_log.for_orders([row.order_id for row, _ in batch_rows])
        try:
            accepted = client.upsert_orders([payload for _, payload in batch_rows])
        except OrdersRejected as exc:
            if not exc.errors_by_index:
                failed += _fail_rows([row for row, _ in batch_rows], f"Sendcloud refused the orders: {exc.message}")
                break
            for index, messages in sorted(exc.errors_by_index.items()):
                if 0 <= index < len(batch_rows):
                    row, _ = batch_rows[index]
                    failed += _fail_rows([row], "Sendcloud refused this order: " + "; ".join(messages))
                    pending.pop(payloads.sendcloud_order_id(row.order), None)
            continue
        except AuthenticationError as exc:
            _disconnect(integration, exc.message)
            failed += _fail_rows([row for row, _ in batch_rows], exc.message)
            break
        except TransientError as exc:
            attempt = chunk.attempts + 1
            if attempt >= settings.SENDCLOUD_MAX_ATTEMPTS:
                error = f"Gave up after {attempt} attempts; last error: {exc.message}"
                failed += _fail_rows([row for row, _ in batch_rows], error)
                break
            PushChunk.objects.filter(pk=chunk.pk).update(last_error=exc.message[:2000])
            return ChunkOutcome(
                pushed=pushed, failed=failed, retry_in=backoff_seconds(attempt, exc.retry_after), counts_attempt=True
            )
        except SendcloudError as exc:
            failed += _fail_rows([row for row, _ in batch_rows], exc.message)
            break
        pushed += _mark_pushed(batch_rows, accepted)
        _mark_connected(integration)
        break
    return ChunkOutcome(pushed=pushed, failed=failed)


def _label_only(row: OrderShipment) -> bool:
    return row.state == ShipmentState.QUEUED and row.create_label and row.pushed_at is not None and not row.failed_phase


def _fail_rows(rows: list[OrderShipment], error: str) -> int:
    return fail_shipments(
        shipment_ids=[row.pk for row in rows], phase=Phase.PUSH, error=error, source=[ShipmentState.PUSHING]
    )


def _mark_pushed(batch_rows: list[tuple[OrderShipment, dict[str, object]]], accepted: list[UpsertedOrder]) -> int:
    by_order_id = {item.order_id: item.sendcloud_id for item in accepted}
    now = timezone.now()
    rows = [row for row, _ in batch_rows]
    moved = OrderShipment.objects.filter(pk__in=[row.pk for row in rows]).move(
        source=[ShipmentState.PUSHING], target=ShipmentState.PUSHED, pushed_at=now, last_error="", failed_phase=""
    )
    for row in rows:
        row.sendcloud_order_id = by_order_id.get(payloads.sendcloud_order_id(row.order), "")
    OrderShipment.objects.bulk_update([row for row in rows if row.sendcloud_order_id], ["sendcloud_order_id"])
    return moved


def _disconnect(integration: SendcloudIntegration, error: str) -> None:
    SendcloudIntegration.objects.filter(pk=integration.pk).update(
        is_connected=False, connection_error=error[:2000], connection_checked_at=timezone.now()
    )
    logger.warning("shop=%s Sendcloud refused the credentials; integration marked not connected", integration.shop_id)


def _mark_connected(integration: SendcloudIntegration) -> None:
    if not integration.is_connected:
        SendcloudIntegration.objects.filter(pk=integration.pk).update(
            is_connected=True, connection_error="", connection_checked_at=timezone.now()
        )
        integration.is_connected = True
