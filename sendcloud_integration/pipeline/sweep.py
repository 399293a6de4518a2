"""The safety net run by beat: nothing stays in flight forever.

- Every account with chunks waiting for their turn gets its release window topped up
  (``pipeline.release``): a release chain broken by a crash, or a push whose ``start_batch`` message the
  broker never took, starts again.
- A chunk released but never claimed (the broker was down, or its sender died, before the message was
  sent) is dispatched again once its release is older than ``SENDCLOUD_STALE_AFTER_SECONDS``.
- A chunk RUNNING whose claim is older than ``SENDCLOUD_STALE_AFTER_SECONDS`` lost its worker: it is
  dispatched again (``claim_chunk`` lets the new task take it over).
- A batch whose orders have all left the in-flight states but that is not finished (its chord
  callback never came) is finished.
- Label work no chunk will continue — rows in LABEL_QUEUED or LABELLING whose chunk is DONE, or whose
  batch is finished or gone — is not left in flight: a DONE chunk of a running batch is reopened and
  dispatched again (its label phase carries on with the full duplicate-label guard); rows of a
  finished or deleted batch are reconciled against Sendcloud (``labels.reconcile_orphans``: a ready
  label is stored, anything else fails with a reason), without ever requesting a label.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    PushBatch,
    PushChunk,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches, chunks, dispatch, labels, release

logger = logging.getLogger(__name__)


#: A batch is finished by the sweep only once it is this old: its own chord callback normally comes first.
FINISH_GRACE = timedelta(seconds=30)
#: Orphaned label rows reconciled per sweep at most (each costs a few GETs); the rest wait for the next.
ORPHAN_LABELS_PER_SWEEP = 200


@dataclass(frozen=True)
class SweepReport:
    redispatched_chunks: int = 0
    released_chunks: int = 0
    finished_batches: int = 0
    reopened_label_chunks: int = 0
    reconciled_labels: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep() -> SweepReport:
    now = timezone.now()
    redispatched = 0
    for batch_id, numbers in chunks.abandoned_chunks(now=now).items():
        chunks.release_abandoned(batch_id=batch_id, numbers=numbers, now=now)
        dispatch.dispatch_batch(batch_id, numbers)
        redispatched += len(numbers)
        logger.warning("sweep: re-dispatched batch=%s chunks=%s", batch_id, numbers)

    released = release.top_up_all()
    reopened, reconciled = _orphaned_labels(now=now, stale=chunks.stale_before(now))

    finished = 0
    for batch_id in PushBatch.objects.filter(
        status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING], created_at__lt=now - FINISH_GRACE
    ).values_list("pk", flat=True):
        batch = batches.finish_batch(batch_id=batch_id)
        if batch.is_finished:
            finished += 1
            logger.warning("sweep: finished batch=%s whose callback had not come", batch_id)
    return SweepReport(
        redispatched_chunks=redispatched,
        released_chunks=released,
        finished_batches=finished,
        reopened_label_chunks=reopened,
        reconciled_labels=reconciled,
    )


def _orphaned_labels(*, now: datetime, stale: datetime) -> tuple[int, int]:
    """Label rows no chunk will pick up again: reopen their chunk, or reconcile them here.

    Only rows untouched for ``SENDCLOUD_STALE_AFTER_SECONDS`` count (a polled row's ``updated_at``
    moves), so a worker that is busy with them is never second-guessed.
    """
    chunk_done = PushChunk.objects.filter(
        batch_id=OuterRef("batch_id"), number=OuterRef("chunk_number"), status=ChunkStatus.DONE
    )
    orphans = (
        OrderShipment.objects.filter(
            state__in=[ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING], updated_at__lt=stale
        )
        .filter(
            Q(batch__isnull=True)
            | Q(chunk_number__isnull=True)
            | Q(batch__status__in=FINISHED_BATCH_STATUSES)
            | Exists(chunk_done)
        )
        .values_list("pk", "batch_id", "chunk_number", "batch__status")
        .order_by("pk")
    )
    to_reopen: dict[uuid.UUID, set[int]] = {}
    to_reconcile: list[int] = []
    for pk, batch_id, chunk_number, batch_status in orphans:
        if batch_id is not None and chunk_number is not None and batch_status not in FINISHED_BATCH_STATUSES:
            to_reopen.setdefault(batch_id, set()).add(chunk_number)
        elif len(to_reconcile) < ORPHAN_LABELS_PER_SWEEP:
            to_reconcile.append(pk)

    reopened = 0
    for batch_id, numbers in to_reopen.items():
        reopen = sorted(numbers)
        count = chunks.reopen_done(batch_id=batch_id, numbers=reopen, now=now)
        if count:
            dispatch.dispatch_batch(batch_id, reopen)
            reopened += count
            logger.warning("sweep: reopened batch=%s chunks=%s with label work left in flight", batch_id, reopen)

    reconciled = labels.reconcile_orphans(shipment_ids=to_reconcile) if to_reconcile else 0
    if to_reconcile:
        logger.warning("sweep: reconciled %d of %d orphaned label rows", reconciled, len(to_reconcile))
    return reopened, reconciled
