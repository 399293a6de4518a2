"""The safety net run by beat: nothing stays in flight forever.

- A batch still QUEUED with no chunk ever started (the broker was down when it was dispatched) is
  dispatched again.
- A chunk RUNNING whose claim is older than ``SENDCLOUD_STALE_AFTER_SECONDS`` lost its worker: it is
  dispatched again (``claim_chunk`` lets the new task take it over).
- A batch whose orders have all left the in-flight states but that is not finished (its chord
  callback never came) is finished.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from sendcloud_integration import services
from sendcloud_integration.models import BatchStatus, ChunkStatus, PushBatch, PushChunk

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    redispatched_chunks: int = 0
    finished_batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep() -> SweepReport:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SENDCLOUD_STALE_AFTER_SECONDS)
    redispatched = 0

    abandoned = (
        PushChunk.objects.filter(batch__status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING])
        .filter(
            Q(status=ChunkStatus.RUNNING, claimed_at__lt=stale)
            | Q(status=ChunkStatus.PENDING, claimed_at__isnull=True, batch__created_at__lt=stale)
            | Q(status=ChunkStatus.PENDING, claimed_at__lt=stale)
        )
        .values_list("batch_id", "number")
    )
    by_batch: dict[uuid.UUID, list[int]] = {}
    for batch_id, number in abandoned:
        by_batch.setdefault(batch_id, []).append(number)
    for batch_id, numbers in by_batch.items():
        # Touch the claims first so the next sweep does not dispatch them again straight away.
        PushChunk.objects.filter(batch_id=batch_id, number__in=numbers, status=ChunkStatus.PENDING).update(
            claimed_at=now
        )
        services.dispatch_batch(batch_id, numbers)
        redispatched += len(numbers)
        logger.warning("sweep: re-dispatched batch=%s chunks=%s", batch_id, numbers)

    finished = 0
    for batch_id in PushBatch.objects.filter(
        status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING], created_at__lt=now - timedelta(seconds=30)
    ).values_list("pk", flat=True):
        batch = services.finish_batch(batch_id=batch_id)
        if batch.is_finished:
            finished += 1
            logger.warning("sweep: finished batch=%s whose callback had not come", batch_id)
    return SweepReport(redispatched_chunks=redispatched, finished_batches=finished)
