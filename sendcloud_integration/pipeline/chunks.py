"""The only writer of ``PushChunk.status``: claim, hand back, complete, heartbeat, and the sweep's reopening.

A chunk is claimed with a conditional update, so only one worker works on it at a time; a worker
that dies leaves the chunk RUNNING, and once its claim is older than ``SENDCLOUD_STALE_AFTER_SECONDS``
a redelivered message or the sweep may claim it again. A long run refreshes its claim (the heartbeat),
so it is never taken for a dead one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sendcloud_integration.models import BatchStatus, ChunkStatus, OrderShipment, PushChunk, ShipmentState
from sendcloud_integration.pipeline import batches


def stale_before(now: datetime) -> datetime:
    """Claims older than this belong to a worker that is presumed dead."""
    return now - timedelta(seconds=settings.SENDCLOUD_STALE_AFTER_SECONDS)


def claim_chunk(*, batch_id: uuid.UUID, chunk_number: int) -> PushChunk | None:
    """Take the chunk for this worker, or None when it is done or another live worker has it."""
    now = timezone.now()
    claimed = (
        PushChunk.objects.filter(batch_id=batch_id, number=chunk_number)
        .filter(Q(status=ChunkStatus.PENDING) | Q(status=ChunkStatus.RUNNING, claimed_at__lt=stale_before(now)))
        # A chunk a worker holds counts as released (sent by an older release, or run by hand).
        .update(status=ChunkStatus.RUNNING, claimed_at=now, released_at=Coalesce(F("released_at"), Value(now)))
    )
    if not claimed:
        return None
    batches.mark_running(batch_id=batch_id, now=now)
    # With the shop's integration (or its absence): the run needs it, and its account's window after.
    return PushChunk.objects.select_related("batch__shop__sendcloud_integration").get(
        batch_id=batch_id, number=chunk_number
    )


def _still_mine(chunk: PushChunk) -> QuerySet[PushChunk]:
    """The chunk, if it is still RUNNING on the claim this worker holds (its ``claimed_at``).

    A worker presumed dead may come back after another one took its chunk over; what it then says about
    the chunk (done, handed back) must not overrule the new owner, who is still working on it.
    """
    return PushChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.RUNNING, claimed_at=chunk.claimed_at)


def release_chunk(chunk: PushChunk, *, counts_attempt: bool, error: str = "") -> bool:
    """Hand the chunk back for a later attempt: its in-progress orders return to QUEUED.

    Returns False when another worker holds the chunk now; its orders are then left to that worker. One
    transaction: the chunk's update holds its row lock until the orders are back in QUEUED, so a takeover
    (whose claim updates the same row) waits, and then finds the orders ready to send.
    """
    with transaction.atomic():
        released = _still_mine(chunk).update(
            status=ChunkStatus.PENDING,
            attempts=F("attempts") + (1 if counts_attempt else 0),
            last_error=error[:2000] if error else F("last_error"),
        )
        if released:
            OrderShipment.objects.filter(batch_id=chunk.batch_id, chunk_number=chunk.number).move(
                source=[ShipmentState.PUSHING], target=ShipmentState.QUEUED
            )
    return bool(released)


def complete_chunk(chunk: PushChunk) -> bool:
    """The chunk is done. Returns False (and changes nothing) when another worker holds the chunk now."""
    return bool(_still_mine(chunk).update(status=ChunkStatus.DONE, finished_at=timezone.now()))


def record_error(chunk: PushChunk, message: str) -> None:
    """Keep the last passing error on the chunk (while it is this worker's), for staff and a later give-up."""
    _still_mine(chunk).update(last_error=message[:2000])
    chunk.last_error = message[:2000]


def heartbeat(chunk: PushChunk) -> bool:
    """Refresh the chunk's claim, so the sweep does not take a long run for a dead worker.

    Returns False when the claim was taken over meanwhile (the chunk is then another worker's).
    """
    now = timezone.now()
    refreshed = _still_mine(chunk).update(claimed_at=now)
    if refreshed:
        chunk.claimed_at = now
    return bool(refreshed)


def abandoned_chunks(*, now: datetime) -> dict[uuid.UUID, list[int]]:
    """Chunks of open batches no live worker has: stale claims, and released chunks nobody took in time.

    A PENDING chunk never claimed counts once its release (``released_at``, see ``pipeline.release``) is
    older than the staleness threshold: the broker was down when it was sent, or the sender died before
    sending it. One handed back or released by the sweep counts once that is. A chunk not released yet is
    not abandoned: it waits for its account's turn.
    """
    stale = stale_before(now)
    open_batches = [BatchStatus.QUEUED, BatchStatus.RUNNING]
    found: dict[uuid.UUID, list[int]] = {}
    rows = (
        PushChunk.objects.filter(batch__status__in=open_batches)
        .filter(
            Q(status=ChunkStatus.RUNNING, claimed_at__lt=stale)
            | Q(status=ChunkStatus.PENDING, claimed_at__isnull=True, released_at__lt=stale)
            | Q(status=ChunkStatus.PENDING, claimed_at__lt=stale)
        )
        .values_list("batch_id", "number")
    )
    for batch_id, number in rows:
        found.setdefault(batch_id, []).append(number)
    return found


def release_abandoned(*, batch_id: uuid.UUID, numbers: Sequence[int], now: datetime) -> None:
    """Release abandoned claims and stamp them now, so the next sweep does not dispatch them again
    before a worker had a chance to take them (``claim_chunk`` takes any PENDING chunk)."""
    PushChunk.objects.filter(
        batch_id=batch_id, number__in=list(numbers), status__in=[ChunkStatus.PENDING, ChunkStatus.RUNNING]
    ).filter(Q(status=ChunkStatus.PENDING) | Q(claimed_at__lt=stale_before(now))).update(
        status=ChunkStatus.PENDING, claimed_at=now, released_at=now
    )


def reopen_done(*, batch_id: uuid.UUID, numbers: Sequence[int], now: datetime) -> int:
    """DONE chunks that still have label work in flight become PENDING again; returns how many."""
    return PushChunk.objects.filter(batch_id=batch_id, number__in=list(numbers), status=ChunkStatus.DONE).update(
        status=ChunkStatus.PENDING, claimed_at=now, released_at=now, finished_at=None
    )
