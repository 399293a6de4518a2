"""Celery tasks: thin wrappers. Ids in, one service call, counts out.

The only module that defines tasks; lower layers send them by name (``pipeline.dispatch``).

Every task here is idempotent (the services move state with conditional updates), which is what
makes ``acks_late`` with ``reject_on_worker_lost`` safe: a message redelivered after a worker died
finds its work done, or its chunk claimed, and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, shared_task

from sendcloud_integration.models import PushBatch
from sendcloud_integration.pipeline import batches, process, release
from sendcloud_integration.pipeline import sweep as sweeping
from sendcloud_integration.printing import builder as document_builder
from sendcloud_integration.printing import documents as batch_documents
from sendcloud_integration.tracking import polling, webhooks
from wemasy.logging import log_context

logger = logging.getLogger(__name__)

TASK_OPTIONS: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**TASK_OPTIONS)
def start_batch(batch_id: str) -> None:
    """Release a freshly committed batch's first chunks to the workers (kept out of the HTTP request's time)."""
    with log_context(batch_id=batch_id):
        release.start_batch(uuid.UUID(batch_id))


@shared_task(bind=True, max_retries=None, **TASK_OPTIONS)
def process_chunk(self: Task, batch_id: str, chunk_number: int) -> dict[str, int]:
    """Send one chunk of a batch to Sendcloud. Retries are counted and bounded in the database."""
    with log_context(batch_id=batch_id, chunk=chunk_number):
        outcome = process.process_chunk(batch_id=uuid.UUID(batch_id), chunk_number=chunk_number)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.as_dict()


@shared_task(**TASK_OPTIONS)
def finish_batch(batch_id: str) -> dict[str, Any]:
    """Sent when a batch's last chunk is done: re-read the batch's rows and store its totals and final status."""
    with log_context(batch_id=batch_id):
        try:
            batch = batches.finish_batch(batch_id=uuid.UUID(batch_id))
        except PushBatch.DoesNotExist:
            logger.warning("finish_batch: batch=%s no longer exists (deleted); nothing to finish", batch_id)
            return {"status": "deleted"}
    return {"status": batch.status, "pushed": batch.pushed_count, "failed": batch.failed_count}


@shared_task(**TASK_OPTIONS)
def sweep() -> dict[str, int]:
    """Periodic (beat): resume abandoned chunks, finish batches whose callback never came."""
    return sweeping.sweep().as_dict()


@shared_task(bind=True, max_retries=None, **TASK_OPTIONS)
def build_batch_document(self: Task, document_id: int) -> dict[str, object]:
    """Build one stored batch document: claim, fetch missing labels, write, store (``printing.builder``).

    After a transient error the builder says when to try again (and stops saying so after its retries).
    """
    outcome = document_builder.build_document(document_id=document_id, attempt=self.request.retries)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.as_dict()


@shared_task(**TASK_OPTIONS)
def start_default_document(batch_id: str) -> dict[str, str]:
    """Sent when a label batch is finished: start its shop's default document (``printing.documents``)."""
    with log_context(batch_id=batch_id):
        try:
            state = batch_documents.build_default_document(batch_id=uuid.UUID(batch_id))
        except PushBatch.DoesNotExist:
            logger.warning("start_default_document: batch=%s no longer exists (deleted)", batch_id)
            return {"status": "deleted"}
    return {"status": state.availability.value if state is not None else "nothing to print"}


@shared_task(**TASK_OPTIONS)
def apply_webhook_delivery(delivery_id: int) -> str:
    """Apply one stored Sendcloud webhook delivery (once; a second run finds it processed)."""
    return webhooks.process_delivery(delivery_id)


@shared_task(**TASK_OPTIONS)
def tracking_sweep() -> dict[str, int]:
    """Periodic (beat): re-send stored deliveries not applied yet; poll parcels of integrations without webhooks."""
    resent = webhooks.resend_stale()
    report = polling.poll_parcels()
    return {"resent": resent, "polled": report.parcels_read, "applied": report.statuses_applied}
