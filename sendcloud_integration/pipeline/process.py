"""Processing one chunk of a push batch: what the ``process_chunk`` task does, start to end.

Claim the chunk (``chunks``), run the push phase (``push_phase``) and, for batches that create labels,
the label phase (``labels``); then complete the chunk or hand it back with a delay. Every order leaves
in a terminal state or back in QUEUED for the next attempt: nothing is left half-done, not even after an
unexpected error, which is retried like a passing one and fails the orders when the attempts run out.
Redis being unreachable (the request budget lives there) is nobody's failure: the chunk is handed back
without counting an attempt, so an outage never uses up the attempts of the orders it caught mid-chunk.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sendcloud_integration.models import IntegrationProblem, PushChunk, SendcloudIntegration, integration_problem
from sendcloud_integration.pipeline import chunks, labels, release
from sendcloud_integration.pipeline.outcome import ChunkOutcome, backoff_seconds
from sendcloud_integration.pipeline.push_phase import push_phase
from sendcloud_integration.pipeline.shipments import fail_chunk_orders
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.factory import build_client
from wemasy import metrics

logger = logging.getLogger(__name__)

#: Redis down, hung or still loading its data (``BusyLoadingError`` is a ``ConnectionError``).
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

#: Why a chunk's orders cannot be sent, worded for staff reading the order (the push checked it once already).
PROBLEM_MESSAGES = {
    IntegrationProblem.MISSING: "The shop's SendCloud integration was removed before this order was sent.",
    IntegrationProblem.INACTIVE: "The shop's SendCloud integration was deactivated before this order was sent.",
    IntegrationProblem.NO_CREDENTIALS: "The shop's SendCloud integration lacks API credentials.",
}


def process_chunk(*, batch_id: uuid.UUID, chunk_number: int) -> ChunkOutcome:
    chunk = chunks.claim_chunk(batch_id=batch_id, chunk_number=chunk_number)
    if chunk is None:
        logger.info("batch=%s chunk=%d already done or taken; nothing to do", batch_id, chunk_number)
        metrics.record_chunk(outcome="skipped")
        # A duplicate message, or the redelivery of a task that died after completing the chunk: the
        # batch's finish and the account's next release may be what that task did not get to.
        release.chunk_finished(batch_id, account=release.account_of(batch_id))
        return ChunkOutcome()
    outcome = _run(chunk)
    if outcome.retry_in is None:
        # The chunk is done (or another worker owns it now): its place in the account's window is free.
        integration = _claimed_integration(chunk)
        release.chunk_finished(batch_id, account=integration.public_key if integration is not None else None)
    return outcome


def _claimed_integration(chunk: PushChunk) -> SendcloudIntegration | None:
    """The chunk's shop's integration, as the claim loaded it (``chunks.claim_chunk``), or None."""
    try:
        return chunk.batch.shop.sendcloud_integration
    except SendcloudIntegration.DoesNotExist:
        return None


def _run(chunk: PushChunk) -> ChunkOutcome:
    """Work on a claimed chunk, then complete it or hand it back."""
    batch_id, chunk_number = chunk.batch_id, chunk.number
    batch = chunk.batch
    call_log = CallLog(shop_id=batch.shop_id, batch_id=batch.pk, chunk_number=chunk_number)
    try:
        outcome = _work(chunk, call_log)
    except REDIS_UNAVAILABLE as exc:
        # From the request budget, which is asked before every request: that request was not sent. What
        # earlier steps did is in the rows, as after any hand-back (PUSHING goes back to QUEUED).
        logger.warning("batch=%s chunk=%d: Redis is unavailable (%s); handed back", batch_id, chunk_number, exc)
        outcome = ChunkOutcome(retry_in=backoff_seconds(chunk.attempts + 1), counts_attempt=False)
    except Exception as exc:
        # A bug, a storage error, an order that cannot be encoded: none of these may leave the
        # chunk's orders in flight forever. It is retried like a passing error, and failed when the
        # attempts run out. The traceback goes to the log; the orders get a sentence.
        logger.exception("batch=%s chunk=%d failed unexpectedly", batch_id, chunk_number)
        outcome = _unexpected_failure(chunk, exc)
    finally:
        call_log.flush()
    metrics.record_chunk(outcome="done" if outcome.retry_in is None else "handed_back", **outcome.as_dict())

    if outcome.retry_in is not None:
        if not chunks.release_chunk(chunk, counts_attempt=outcome.counts_attempt):
            logger.warning(
                "batch=%s chunk=%d was taken over by another worker; not handed back", batch_id, chunk_number
            )
            return replace(outcome, retry_in=None)
        logger.info("batch=%s chunk=%d handed back; again in %.1fs", batch_id, chunk_number, outcome.retry_in)
    elif not chunks.complete_chunk(chunk):
        logger.warning(
            "batch=%s chunk=%d was taken over by another worker; its owner completes it", batch_id, chunk_number
        )
    else:
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
    integration = _claimed_integration(chunk)
    problem = integration_problem(integration)
    if problem is not None or integration is None:
        error = PROBLEM_MESSAGES[problem or IntegrationProblem.MISSING]
        outcome = ChunkOutcome(
            failed=fail_chunk_orders(batch_id=chunk.batch_id, chunk_number=chunk.number, error=error)
        )
        if batch.create_label:
            # Label work left from an earlier run cannot go on either; it must not stay in flight.
            failed = labels.fail_label_rows(chunk=chunk, error=error)
            outcome = replace(outcome, failed=outcome.failed + failed)
    else:
        client = build_client(integration, call_log)
        outcome = push_phase(chunk, integration, client, call_log)
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
        chunks.record_error(chunk, f"Unexpected {type(exc).__name__}")
        return ChunkOutcome(retry_in=backoff_seconds(attempt), counts_attempt=True)
    error = (
        f"Gave up after {attempt} attempts: an unexpected {type(exc).__name__} while processing this order "
        "(the details are in the worker's log)."
    )
    failed = fail_chunk_orders(batch_id=chunk.batch_id, chunk_number=chunk.number, error=error)
    if chunk.batch.create_label:
        failed += labels.fail_label_rows(chunk=chunk, error=error)
    return ChunkOutcome(failed=failed)
