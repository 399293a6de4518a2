"""One run of label work: what it may do (its scope), its tallies, its reads, its waits.

The steps (``resolve``, ``request``, ``poll``, ``download``) are functions that take a :class:`LabelRun`;
this module holds what they share. Two kinds of run exist, and the difference is a :class:`Scope`, not
flags: a chunk's run (:class:`ChunkScope`) may request labels, counts failures against the chunk's
attempts and keeps its claim alive; the sweep's reconciliation of orphaned rows (:class:`OrphanScope`)
never requests a label, counts no attempts, and simply leaves waits for the next sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from django.conf import settings
from django.utils import timezone

from sendcloud_integration.models import (
    OrderShipment,
    OrderShipmentQuerySet,
    Phase,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import chunks
from sendcloud_integration.pipeline.labels.rows import LABEL_STATES, fail
from sendcloud_integration.pipeline.outcome import ChunkOutcome, backoff_seconds, gave_up
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import AuthenticationError, NotFound, SendcloudError, TransientError
from sendcloud_integration.sendcloud.types import ParcelInfo, ShipmentInfo
from wemasy.logging import log_context

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

T = TypeVar("T")

#: How often a long run refreshes its chunk's claim, in seconds (the sweep re-dispatches stale claims).
HEARTBEAT_SECONDS = 15.0
#: A run hands its chunk back after this long, well within the task's soft time limit; it goes on later.
RUN_SECONDS = 120.0


class Halt(Exception):
    """Stop everything in this run: the credentials were refused."""


class ClaimLost(Halt):
    """Another worker took the chunk over (this one was presumed dead): stop, leave everything to it."""


class Skip(Exception):
    """This call could not be made or failed; its consequences are already recorded."""


@dataclass(frozen=True)
class ReadyLabel:
    """A row whose shipment is ready, and its parcels (one label each), the primary one first."""

    row: OrderShipment
    info: ShipmentInfo
    parcels: list[ParcelInfo]

    @property
    def parcel(self) -> ParcelInfo:
        """The primary parcel: the one whose tracking number the order shows."""
        return self.parcels[0]


class Scope:
    """What a run may do and where its failures are recorded; see :class:`ChunkScope` and :class:`OrphanScope`."""

    #: Whether the run may ask Sendcloud for a label (only a chunk's run may: that is where the guard lives).
    may_request: bool = False
    #: The chunk's attempts so far (0 outside a chunk).
    attempts: int = 0

    def attempts_limited(self) -> bool:
        """Whether failures count against ``SENDCLOUD_MAX_ATTEMPTS``."""
        return False

    def in_flight(self, rows: Sequence[OrderShipment]) -> OrderShipmentQuerySet:
        """The label rows this run answers for, still in a label state."""
        return OrderShipment.objects.filter(pk__in=[r.pk for r in rows], state__in=LABEL_STATES)

    def record_error(self, message: str) -> None:
        """Keep a passing error where staff will see it (the chunk); nowhere outside a chunk."""

    def last_error(self) -> str:
        return ""

    def heartbeat(self) -> bool:
        """Keep the work's claim alive (a chunk's claim; nothing outside a chunk). False once it is lost."""
        return True

    def where(self) -> tuple[object, object]:
        return (None, None)


class ChunkScope(Scope):
    """A chunk's label phase: requests labels, counts attempts, records errors on the chunk, heartbeats."""

    may_request = True

    def __init__(self, chunk: PushChunk) -> None:
        self.chunk = chunk
        self.attempts = chunk.attempts

    def attempts_limited(self) -> bool:
        return True

    def in_flight(self, rows: Sequence[OrderShipment]) -> OrderShipmentQuerySet:
        return OrderShipment.objects.filter(
            batch_id=self.chunk.batch_id, chunk_number=self.chunk.number, state__in=LABEL_STATES
        )

    def record_error(self, message: str) -> None:
        chunks.record_error(self.chunk, message)

    def last_error(self) -> str:
        return self.chunk.last_error

    def heartbeat(self) -> bool:
        return chunks.heartbeat(self.chunk)

    def where(self) -> tuple[object, object]:
        return (self.chunk.batch_id, self.chunk.number)


class OrphanScope(Scope):
    """The sweep settling rows no chunk will continue: reads only, never a label request."""


class LabelRun:
    """The shared state of one run over a set of label rows: tallies, the reasons to come back, and the calls."""

    def __init__(
        self, *, integration: SendcloudIntegration, client: SendcloudV3Client, call_log: CallLog, scope: Scope
    ) -> None:
        self.integration = integration
        self.client = client
        self.call_log = call_log
        self.scope = scope
        self.now = timezone.now()
        limited = scope.attempts_limited()
        #: This run's attempt number, as the push phase counts it; the last allowed one fails for good.
        self.attempt = scope.attempts + 1
        self.exhausted = limited and self.attempt >= settings.SENDCLOUD_MAX_ATTEMPTS
        #: Every allowed attempt is spent: an order whose uncertain request proved fruitless is not re-sent.
        self.spent = limited and scope.attempts >= settings.SENDCLOUD_MAX_ATTEMPTS
        self.labelled = 0
        self.failed = 0
        self.wait: float | None = None  # come back then, not a failure
        self.failure_wait: float | None = None  # come back then, counting an attempt
        self.unsafe_blocked = False
        self.safe_blocked = False
        self.polled_pending: list[int] = []
        #: Rows whose label is ready, collected while polling and downloaded together at the end of the run.
        self.ready: list[ReadyLabel] = []
        self.rows: list[OrderShipment] = []
        self._last_heartbeat = self._started = time.monotonic()

    @property
    def may_request(self) -> bool:
        return self.scope.may_request

    def outcome(self, *, still_in_flight: Callable[[], bool]) -> ChunkOutcome:
        """What to tell ``process_chunk``; a hand-back whenever label work remains."""
        if self.failure_wait is not None:
            return ChunkOutcome(
                labelled=self.labelled, failed=self.failed, retry_in=self.failure_wait, counts_attempt=True
            )
        if self.wait is not None:
            return ChunkOutcome(labelled=self.labelled, failed=self.failed, retry_in=self.wait, counts_attempt=False)
        if still_in_flight():
            # Nothing above asked for a wait, yet rows remain: never complete a chunk with label work left.
            logger.warning("batch=%s chunk=%s label rows left without a reason; polling again", *self.scope.where())
            return ChunkOutcome(
                labelled=self.labelled,
                failed=self.failed,
                retry_in=float(settings.SENDCLOUD_LABEL_POLL_SECONDS),
                counts_attempt=False,
            )
        return ChunkOutcome(labelled=self.labelled, failed=self.failed)

    # -- waiting for a label -------------------------------------------------------------------------------

    def pending(self, row: OrderShipment, *, problem: str = "", at_least: float = 0.0) -> None:
        """Still being made: wait, but not forever (``SENDCLOUD_LABEL_MAX_WAIT_SECONDS`` after the request).

        A timed-out row keeps its shipment id: a re-push reads that shipment and adopts a late label.
        """
        limit = float(settings.SENDCLOUD_LABEL_MAX_WAIT_SECONDS)
        requested = row.label_requested_at or row.state_changed_at
        if (self.now - requested).total_seconds() >= limit:
            minutes = f"{limit / 60:g} minute{'' if limit == 60 else 's'}"
            error = f"Sendcloud did not produce the label within {minutes}."
            if problem:
                error = f"{error[:-1]}; last error: {problem}"
            self.count_failed(fail([row], error))
            return
        self.polled_pending.append(row.pk)
        self.wait_for(max(self.interval(row), at_least))

    def interval(self, row: OrderShipment) -> float:
        """Seconds between two polls of a row: ``POLL_SECONDS`` at first, growing with the wait, capped.

        Polls are shared (a chunk's shipments are read in one list GET, its PDFs fetched 20 at a time), but
        GETs are still limited to 1000 a minute per account, so a label that takes long is asked about less
        often rather than every couple of seconds.
        """
        base = float(settings.SENDCLOUD_LABEL_POLL_SECONDS)
        cap = max(base, float(settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS))
        requested = row.label_requested_at or row.state_changed_at
        return min(max(base, (self.now - requested).total_seconds() / 4), cap)

    def due_in(self, row: OrderShipment) -> float:
        """Seconds until the row should be polled again (``updated_at`` marks its last poll)."""
        return self.interval(row) - (self.now - row.updated_at).total_seconds()

    def mark_polled(self) -> None:
        if self.polled_pending:
            OrderShipment.objects.filter(pk__in=self.polled_pending, state=ShipmentState.LABELLING).update(
                updated_at=self.now
            )

    # -- calls, failures, waits ----------------------------------------------------------------------------

    def read(self, rows: Sequence[OrderShipment], call: Callable[[], T]) -> T:
        """One GET about ``rows`` within the SAFE budget. Raises ``Skip`` when the budget is spent.

        Refused credentials halt the run; every other ``SendcloudError`` is passed on for the caller to
        interpret, because what a failed read means depends on what was read.
        """
        wait = budget.acquire(public_key=self.integration.public_key, kind=budget.Kind.SAFE)
        if wait:
            self.safe_blocked = True
            self.wait_for(wait)
            raise Skip
        self.heartbeat()
        self.call_log.for_orders([row.order_id for row in rows])
        try:
            return call()
        except AuthenticationError as exc:
            self.halt(exc)
        except ValueError as exc:  # the client's own checks: an id from an answer that cannot be sent back
            raise SendcloudError(f"Sendcloud cannot be asked about this label: {exc}") from exc

    def safe(self, row: OrderShipment, call: Callable[[], T], *, transient_is_pending: bool = False) -> T:
        """One GET about ``row`` within the SAFE budget. Raises ``Skip`` when it could not be used.

        ``NotFound`` is passed on for the caller to interpret, and so is a ``TransientError`` when
        ``transient_is_pending``. Otherwise a transient error counts an attempt; on the last one the row
        fails, keeping its evidence for a later re-push. Everything logged meanwhile names the order.
        """
        with log_context(order_id=row.order_id):
            try:
                return self.read([row], call)
            except NotFound:
                raise
            except TransientError as exc:
                if transient_is_pending:
                    raise
                self.read_failed([row], exc)
            except SendcloudError as exc:
                self.count_failed(fail([row], exc.message))
            raise Skip

    def read_failed(self, rows: list[OrderShipment], exc: TransientError) -> None:
        """A read about ``rows`` failed transiently: count an attempt, or on the last one fail the rows.

        Failed rows keep their evidence (request time, shipment id): a re-push reads their shipment first.
        """
        logger.warning(
            "batch=%s orders=%s Sendcloud read failed: %s", rows[0].batch_id, [r.order_id for r in rows], exc.message
        )
        if self.exhausted:
            self.count_failed(fail(rows, gave_up(self.attempt, exc.message)))
        else:
            self.failure(exc.message, backoff_seconds(self.attempt, exc.retry_after))

    def halt(self, exc: AuthenticationError) -> NoReturn:
        """401/403: the integration is disconnected and every label row of this run fails.

        Their evidence stays: a row may have a label from an earlier, successful request, and a re-push
        after the credentials are fixed looks it up first.
        """
        self.integration.mark_disconnected(exc.message)
        self.count_failed(
            self.scope.in_flight(self.rows).move(
                source=LABEL_STATES, target=ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error=exc.message
            )
        )
        raise Halt

    def failure(self, message: str, wait: float) -> None:
        """A transient failure: come back after ``wait`` and count an attempt."""
        self.failure_wait = wait if self.failure_wait is None else max(self.failure_wait, wait)
        self.scope.record_error(message)

    def out_of_time(self) -> bool:
        """True (and a prompt hand-back is due) once this run has taken ``RUN_SECONDS``."""
        if time.monotonic() - self._started < RUN_SECONDS:
            return False
        self.wait_for(0.0)
        return True

    def wait_for(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.wait = seconds if self.wait is None else min(self.wait, seconds)

    def count_failed(self, count: int) -> None:
        self.failed += count

    def last_error(self) -> str:
        return self.scope.last_error() or "unknown"

    def heartbeat(self, *, force: bool = False) -> None:
        """Refresh the work's claim at most every ``HEARTBEAT_SECONDS`` (or now, when ``force``)."""
        if not force and time.monotonic() - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = time.monotonic()
        if not self.scope.heartbeat():
            logger.warning("batch=%s chunk=%s was taken over by another worker; this run stops", *self.scope.where())
            raise ClaimLost
