"""Sending a batch's work to the workers: the only place below the doors that starts Celery tasks.

Tasks are sent **by name** (``sendcloud_integration.tasks.*``), so nothing here imports the tasks module
and the layers stay one-way: the doors (``tasks.py`` among them) call down into the pipeline, never the
other way round.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Final

from celery import current_app, signature
from django.conf import settings
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

#: What a broker that is down or hung raises, besides kombu's OperationalError (which wraps most of it).
BROKER_DOWN_ERRORS: tuple[type[Exception], ...] = (OperationalError, RedisConnectionError, RedisTimeoutError, OSError)

START_BATCH: Final = "sendcloud_integration.tasks.start_batch"
PROCESS_CHUNK: Final = "sendcloud_integration.tasks.process_chunk"
FINISH_BATCH: Final = "sendcloud_integration.tasks.finish_batch"
BUILD_BATCH_DOCUMENT: Final = "sendcloud_integration.tasks.build_batch_document"
START_DEFAULT_DOCUMENT: Final = "sendcloud_integration.tasks.start_default_document"


def start_batch(batch_id: uuid.UUID) -> bool:
    """Called after the push commits: one small message that makes a worker release the batch's chunks.

    A batch of 10,000 orders has 100 chunk tasks; sending them from the request would make the
    client wait for 100 broker round trips, so the request sends one and a worker releases the
    chunks as fast as the shop's Sendcloud account takes them (``pipeline.release``).

    It runs inside a request (or a command), so it never waits for a broker that is down: see
    :func:`publish`. When the broker does not take the message, the batch stays QUEUED and the sweep
    dispatches it once it is older than ``SENDCLOUD_STALE_AFTER_SECONDS``: the rows are the truth, so a
    push is never lost between the database and the broker. Returns whether the broker took the message.
    """
    try:
        publish(START_BATCH, (str(batch_id),))
    except BROKER_DOWN_ERRORS as exc:
        logger.warning(
            "start_batch: the broker did not take batch=%s (%s: %s); it stays queued and the sweep "
            "dispatches it after %ss",
            batch_id,
            type(exc).__name__,
            exc,
            settings.SENDCLOUD_STALE_AFTER_SECONDS,
        )
        return False
    return True


_publisher = threading.local()


def publish(name: str, args: tuple[Any, ...]) -> None:
    """Send one task from a request or a command, on this thread's broker connection, kept between calls.

    Opening a connection for every message cost more than the rest of a small push or a webhook delivery
    (docs/benchmarks.md). The connection is bounded (:func:`publish_transport_options`: a broker that is
    down or hung fails within ``REDIS_REQUEST_TIMEOUT``), there is no result subscription (nobody reads
    these results, and subscribing is what made Celery's result consumer retry for 19 seconds), and no
    retry but one: a kept connection that fails with a broker error (a Redis that restarted since) is
    dropped and the message sent once more on a fresh one. Raises the broker's error when that fails too.
    A Redis that answered too late may have taken the first message too: the tasks sent this way are
    idempotent (``start_batch`` releases what the window has room for, a delivery is applied once).
    """
    kept = getattr(_publisher, "connection", None)
    if kept is not None:
        try:
            _send(name, args, kept)
            return
        except BROKER_DOWN_ERRORS:
            _drop_kept_connection()
        except Exception:
            _drop_kept_connection()
            raise  # not the broker's doing (a message that cannot be encoded): sending again would not help
    connection = current_app.connection_for_write(transport_options=publish_transport_options())
    try:
        _send(name, args, connection)
    except Exception:
        with contextlib.suppress(Exception):  # it is thrown away because it failed
            connection.release()
        raise
    _publisher.connection = connection


def _send(name: str, args: tuple[Any, ...], connection: Any) -> None:
    signature(name, args=args).apply_async(connection=connection, retry=False, ignore_result=True)


def _drop_kept_connection() -> None:
    connection = getattr(_publisher, "connection", None)
    _publisher.connection = None
    if connection is not None:
        with contextlib.suppress(Exception):  # it is thrown away because it failed
            connection.release()


def broker_answers() -> bool:
    """Whether the broker takes a connection now, on the same bounded terms as :func:`start_batch`.

    For the readiness check. Opening a Redis channel sends a PING, so this is a round trip.
    """
    try:
        with current_app.connection_for_write(transport_options=publish_transport_options()) as connection:
            connection.ensure_connection(max_retries=0)
    except BROKER_DOWN_ERRORS as exc:
        logger.warning("readiness: the broker is unavailable (%s: %s)", type(exc).__name__, exc)
        return False
    return True


def publish_transport_options() -> dict[str, Any]:
    """Broker options for a publish that must not hold a request: what really bounds its time.

    With kombu 5.7's Redis transport, ``broker_connection_timeout`` bounds nothing here (the transport
    ignores it; it only caps kombu's reconnect loop) and ``retry=False`` alone still lets kombu retry the
    connect until that timeout. What bounds it: redis-py's ``socket_connect_timeout`` (a host that drops
    packets), ``socket_timeout`` (a Redis that accepts but does not answer; kombu's default is to wait
    forever), and ``max_retries: 0`` (one connection attempt). Other transports ignore these keys.
    """
    timeout = settings.REDIS_REQUEST_TIMEOUT
    return {"socket_connect_timeout": timeout, "socket_timeout": timeout, "max_retries": 0}


def dispatch_batch(batch_id: uuid.UUID, chunk_numbers: Sequence[int]) -> None:
    """Send one ``process_chunk`` task per chunk number, now (the release window decides which, and when).

    Sending a chunk twice (a redelivered task, the sweep) is harmless: a chunk task that finds its chunk
    claimed or done does nothing. Nobody reads a chunk task's result (the rows are the truth), so none
    is stored.
    """
    numbers = list(chunk_numbers)
    with current_app.producer_or_acquire() as producer:
        for number in numbers:
            signature(PROCESS_CHUNK, args=(str(batch_id), number), immutable=True).apply_async(
                producer=producer, ignore_result=True
            )
    logger.info("dispatched batch=%s chunks=%s", batch_id, numbers)


def build_batch_document(document_id: int) -> None:
    """Send the build of one stored batch document (``printing.builder``) to a worker.

    Called on commit by ``printing.documents`` once the document's row says it is wanted; the row is the
    truth, so a message lost with the broker is sent again by the next request for the document.
    """
    signature(BUILD_BATCH_DOCUMENT, args=(document_id,), immutable=True).apply_async()
    logger.info("dispatched the build of batch document=%s", document_id)


def finish_batch(batch_id: uuid.UUID) -> None:
    """Ask a worker to finish the batch (its last chunk is done). Duplicates are harmless: it finishes once."""
    signature(FINISH_BATCH, args=(str(batch_id),), immutable=True).apply_async(ignore_result=True)


def start_default_document(batch_id: uuid.UUID) -> None:
    """Ask a worker to start the finished batch's default document (``printing.documents``).

    Sent by ``batches.finish_batch`` whichever door finished the batch (its last chunk's callback, the
    sweep). Never fails the finishing: a document not started now is started by the first request for it.
    """
    try:
        signature(START_DEFAULT_DOCUMENT, args=(str(batch_id),), immutable=True).apply_async(ignore_result=True)
    except BROKER_DOWN_ERRORS as exc:
        logger.warning(
            "batch=%s default document not started (%s: %s); the first request for it starts it",
            batch_id,
            type(exc).__name__,
            exc,
        )
