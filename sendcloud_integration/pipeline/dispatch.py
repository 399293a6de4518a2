"""Sending a batch's work to the workers: the only place below the doors that starts Celery tasks.

Tasks are sent **by name** (``sendcloud_integration.tasks.*``), so nothing here imports the tasks module
and the layers stay one-way: the doors (``tasks.py`` among them) call down into the pipeline, never the
other way round.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Final

from celery import chord, group, signature

from sendcloud_integration.models import PushBatch

logger = logging.getLogger(__name__)

START_BATCH: Final = "sendcloud_integration.tasks.start_batch"
PROCESS_CHUNK: Final = "sendcloud_integration.tasks.process_chunk"
FINISH_BATCH: Final = "sendcloud_integration.tasks.finish_batch"


def start_batch(batch_id: uuid.UUID) -> None:
    """Called after the push commits: one small message that makes a worker send the chord.

    A batch of 10,000 orders has 100 chunk tasks; sending them from the request would make the
    client wait for 100 broker round trips, so the request sends one and a worker sends the rest.
    If the broker is down, ``on_commit(robust=True)`` logs the error and the batch stays QUEUED:
    the sweep dispatches it later, so a push is never lost between the database and the broker.
    """
    signature(START_BATCH, args=(str(batch_id),)).apply_async()


def dispatch_batch(batch_id: uuid.UUID, chunk_numbers: Sequence[int] | None = None) -> None:
    """Send the batch's chord: every chunk task, then ``finish_batch`` once they are all done.

    Sending it twice (a redelivered ``start_batch``, the sweep) is harmless: a chunk task that finds
    its chunk claimed or done does nothing, and ``finish_batch`` finishes a batch once.
    """
    batch = PushBatch.objects.only("total_chunks").get(pk=batch_id)
    numbers = list(chunk_numbers) if chunk_numbers is not None else list(range(1, batch.total_chunks + 1))
    header = group(signature(PROCESS_CHUNK, args=(str(batch_id), number), immutable=True) for number in numbers)
    chord(header, signature(FINISH_BATCH, args=(str(batch_id),), immutable=True)).apply_async()
    logger.info("dispatched batch=%s chunks=%s", batch_id, numbers)
