"""A push batch's counts and status: the only writer of ``PushBatch.status``, and the one ``BatchCounts``.

Every door that shows how a batch is doing — the batch API, the staff dashboard, the admin list, the
bulk command's progress bar — and ``finish_batch``, which decides the final status, read the same
:class:`BatchCounts`. Its inputs are the batch row and the number of the batch's shipment rows in each
state; where those numbers come from (one grouped query for a few batches, or per-state sub-selects
annotated on an admin list) does not change what they mean.

Definitions, once:

- **pushed**: orders Sendcloud has (pushed, label queued, labelling or labelled).
- **waiting**: orders with work left in this batch — queued, pushing, label queued, labelling, and, in a
  batch that creates labels, pushed (PUSHED is a way station there, not an outcome).
- **in_flight**: the orders in a running state (queued, pushing, label queued, labelling); the API
  documents this narrower number.
- **moved_to_later_batch**: queued here, since re-queued by a later push (their rows point there now).
- **done**: queued minus waiting; **percent** rounds down and is 100 only once the batch is finished.

Once a batch is finished its stored totals (written by :func:`finish_batch`) are its pushed, labelled
and failed counts: they are that push's outcome, and stay so when an order moves on to a later batch.
``by_state`` and ``moved_to_later_batch`` always describe where the rows are now.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    IN_FLIGHT_STATES,
    BatchStatus,
    ChunkStatus,
    OrderShipment,
    PushBatch,
    PushChunk,
    ShipmentState,
)
from sendcloud_integration.pipeline import dispatch
from wemasy import metrics

logger = logging.getLogger(__name__)

#: States of an order that is in Sendcloud (whether or not its label is done).
IN_SENDCLOUD_STATES = frozenset(
    {ShipmentState.PUSHED, ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING, ShipmentState.LABELLED}
)
#: Statuses a batch can be finished from.
_OPEN_STATUSES = (BatchStatus.QUEUED, BatchStatus.RUNNING)


def waiting_states(*, create_label: bool) -> frozenset[str]:
    """The states in which an order of a batch still has work left in it."""
    return IN_FLIGHT_STATES | ({ShipmentState.PUSHED} if create_label else frozenset())


@dataclass(frozen=True)
class BatchCounts:
    """How far a batch has come, derived from its row and its rows' states (see the module docstring)."""

    batch: PushBatch
    #: Every shipment state, zero-filled, counting the rows that still belong to this batch.
    by_state: Mapping[str, int]

    @classmethod
    def of(cls, batch: PushBatch, by_state: Mapping[str, int]) -> BatchCounts:
        return cls(batch=batch, by_state={state.value: by_state.get(state.value, 0) for state in ShipmentState})

    @property
    def is_finished(self) -> bool:
        return self.batch.status in FINISHED_BATCH_STATUSES

    @property
    def queued(self) -> int:
        return self.batch.queued_orders

    @property
    def in_batch(self) -> int:
        return sum(self.by_state.values())

    def _live(self, states: frozenset[str]) -> int:
        return sum(self.by_state[state] for state in states)

    @property
    def pushed(self) -> int:
        return self.batch.pushed_count if self.is_finished else self._live(IN_SENDCLOUD_STATES)

    @property
    def labelled(self) -> int:
        return self.batch.labelled_count if self.is_finished else self.by_state[ShipmentState.LABELLED]

    @property
    def failed(self) -> int:
        return self.batch.failed_count if self.is_finished else self.by_state[ShipmentState.FAILED]

    @property
    def waiting(self) -> int:
        return 0 if self.is_finished else self._live(waiting_states(create_label=self.batch.create_label))

    @property
    def in_flight(self) -> int:
        return 0 if self.is_finished else self._live(IN_FLIGHT_STATES)

    @property
    def moved_to_later_batch(self) -> int:
        return max(0, self.queued - self.in_batch)

    @property
    def done(self) -> int:
        return self.queued if self.is_finished else max(0, self.queued - self.waiting)

    @property
    def percent(self) -> int:
        """Whole percent of the queued orders that are done, rounded down; 100 only once finished."""
        if self.is_finished or not self.queued:
            return 100
        return min(99, self.done * 100 // self.queued)

    @property
    def final_status(self) -> BatchStatus:
        """The status the batch finishes with, from its rows (meaningful once nothing is waiting)."""
        failed = self.by_state[ShipmentState.FAILED]
        labelled = self.by_state[ShipmentState.LABELLED]
        succeeded = labelled if self.batch.create_label else labelled + self.by_state[ShipmentState.PUSHED]
        if failed == 0:
            return BatchStatus.COMPLETED
        return BatchStatus.FAILED if succeeded == 0 else BatchStatus.COMPLETED_WITH_ERRORS


def state_counts(batch_ids: Sequence[uuid.UUID | str]) -> dict[str, dict[str, int]]:
    """Rows per state of each batch, keyed by the batch id as text: one grouped query for any number."""
    counts: dict[str, dict[str, int]] = {str(batch_id): {} for batch_id in batch_ids}
    rows = (
        OrderShipment.objects.filter(batch_id__in=list(batch_ids))
        .values_list("batch_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for batch_id, state, n in rows:
        counts.setdefault(str(batch_id), {})[state] = n
    return counts


def counts_of(batch: PushBatch) -> BatchCounts:
    """The counts of one batch (one query)."""
    return BatchCounts.of(batch, state_counts([batch.pk])[str(batch.pk)])


def counts_of_many(batches: Sequence[PushBatch]) -> list[BatchCounts]:
    """The counts of several batches, in the order given (one query)."""
    by_batch = state_counts([batch.pk for batch in batches])
    return [BatchCounts.of(batch, by_batch.get(str(batch.pk), {})) for batch in batches]


def _state_annotation(state: str) -> str:
    return f"rows_{state}"


def with_state_counts(queryset: QuerySet[PushBatch]) -> QuerySet[PushBatch]:
    """Annotate each batch with its rows per state, in the same query (for lists such as the admin's)."""
    return queryset.annotate(
        **{
            _state_annotation(state.value): Coalesce(
                Subquery(
                    OrderShipment.objects.filter(batch=OuterRef("pk"), state=state.value)
                    .order_by()
                    .values("batch")
                    .annotate(n=Count("pk"))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
                Value(0),
            )
            for state in ShipmentState
        }
    )


def annotated_counts(batch: PushBatch) -> BatchCounts:
    """The counts of a batch read through :func:`with_state_counts` (no query)."""
    return BatchCounts.of(
        batch, {state.value: getattr(batch, _state_annotation(state.value)) for state in ShipmentState}
    )


def mark_running(*, batch_id: uuid.UUID, now: datetime) -> None:
    """A chunk was claimed: a QUEUED batch is RUNNING from now (a conditional update, so only once)."""
    PushBatch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED).update(status=BatchStatus.RUNNING, started_at=now)


def finish_batch(*, batch_id: uuid.UUID) -> PushBatch:
    """Store the batch's totals and final status, once no order has work left in it.

    Idempotent: a finished batch is returned unchanged, so a duplicate callback or the sweep finishing
    it too does no harm. Orders still waiting (a chunk being re-tried, labels being made) leave the batch
    RUNNING; the last chunk's callback or the sweep finishes it later. A label batch whose worker died
    between push and label has PUSHED rows waiting, so it is never finished "completed" without labels.
    The call that finishes a label batch sends the start of its default document (by name, on commit).
    """
    batch = PushBatch.objects.get(pk=batch_id)
    if batch.status in FINISHED_BATCH_STATUSES:
        return batch
    counts = counts_of(batch)
    if counts.waiting:
        logger.info("batch=%s not finished: %d orders still in flight", batch_id, counts.waiting)
        return batch
    pushed = counts.by_state[ShipmentState.PUSHED] + counts.by_state[ShipmentState.LABELLED]
    updated = PushBatch.objects.filter(pk=batch_id, status__in=_OPEN_STATUSES).update(
        status=counts.final_status,
        pushed_count=pushed,
        labelled_count=counts.labelled,
        failed_count=counts.failed,
        chunks_done=PushChunk.objects.filter(batch_id=batch_id, status=ChunkStatus.DONE).count(),
        finished_at=timezone.now(),
    )
    if updated and batch.create_label:
        # The one place a batch becomes finished, whoever called: its shop's default document starts now.
        transaction.on_commit(partial(dispatch.start_default_document, batch_id))
    if updated:
        metrics.BATCH_DURATION.labels(counts.final_status).observe((timezone.now() - batch.created_at).total_seconds())
        logger.info(
            "finished batch=%s status=%s pushed=%d labelled=%d failed=%d",
            batch_id,
            counts.final_status,
            pushed,
            counts.labelled,
            counts.failed,
        )
    batch.refresh_from_db()
    return batch
