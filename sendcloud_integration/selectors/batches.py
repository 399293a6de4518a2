"""Reads: a push batch's progress, its orders page by page, and where its labels are stored.

Every function here takes keyword-only arguments and returns plain data or a queryset; nothing writes.
The callers (the REST API now, admin and the dashboard later) decide how to present it. The number of
queries never depends on the size of the batch or of the page: counts come from one grouped
aggregate, and a page of orders is one query with the order joined in.

Counts are read from the shipment rows, which are the truth while a batch runs (the totals stored on
``PushBatch`` are only written when it finishes). A shipment row belongs to the batch that queued it
*last*: an order that failed here and was re-pushed later has moved to the later batch, so this batch
reports it under ``moved_to_later_batch`` instead of under a state.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from sendcloud_integration.limits import MAX_ORDERS_PER_LABEL_REQUEST
from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    ChunkStatus,
    OrderShipment,
    PushBatch,
    PushChunk,
    ShipmentParcel,
    ShipmentState,
)
from sendcloud_integration.pipeline.batches import BatchCounts, counts_of_many
from webshop.models import Shop

#: States of an order whose label has not been asked for yet, in a batch that creates labels.
#: LABELLING is left out on purpose: its label request was sent, only (cheap, GET) polling remains.
AWAITING_LABEL_REQUEST_STATES = frozenset(
    {ShipmentState.QUEUED, ShipmentState.PUSHING, ShipmentState.PUSHED, ShipmentState.LABEL_QUEUED}
)


def batch_for_shop(*, shop: Shop, batch_id: str | uuid.UUID) -> PushBatch | None:
    """The shop's batch with that id, or None — also for another shop's batch or an ill-formed id.

    The three cases are deliberately indistinguishable, so that a client cannot learn that a batch of
    another shop exists. Ill-formed ids never reach the database.
    """
    try:
        pk = batch_id if isinstance(batch_id, uuid.UUID) else uuid.UUID(str(batch_id))
    except ValueError:
        return None
    return PushBatch.objects.filter(pk=pk, shop=shop).first()


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands for the batch API: its ``BatchCounts`` and what only the API shows."""

    counts: BatchCounts
    chunks_done: int
    #: Rows of this batch with a stored label file.
    labels_available: int
    estimated_completion_at: datetime | None

    @property
    def batch(self) -> PushBatch:
        return self.counts.batch


def batch_progress(*, batch: PushBatch, now: datetime | None = None) -> BatchProgress:
    """Counts per state, chunks done and the completion estimate: two queries, whatever the size."""
    chunks_done = PushChunk.objects.filter(batch=batch, status=ChunkStatus.DONE).count()
    by_state: dict[str, int] = {}
    labels_available = 0
    rows = (
        OrderShipment.objects.filter(batch=batch)
        .values("state")
        .annotate(n=Count("pk"), labels=Count("pk", filter=~Q(label_file="")))
        .order_by()
    )
    for row in rows:
        by_state[row["state"]] = row["n"]
        labels_available += row["labels"]
    counts = BatchCounts.of(batch, by_state)
    if batch.create_label:
        awaiting_label_request = sum(counts.by_state[state] for state in AWAITING_LABEL_REQUEST_STATES)
    else:
        awaiting_label_request = 0
    return BatchProgress(
        counts=counts,
        chunks_done=chunks_done,
        labels_available=labels_available,
        estimated_completion_at=estimate_completion(
            batch=batch,
            unfinished_chunks=max(0, batch.total_chunks - chunks_done),
            orders_awaiting_label_request=awaiting_label_request,
            now=now or timezone.now(),
        ),
    )


def remaining_unsafe_requests(*, unfinished_chunks: int, orders_awaiting_label_request: int) -> int:
    """The POSTs to Sendcloud a batch still needs: its critical resource.

    ``unfinished_chunks * 1`` (one ``POST /v3/orders`` upsert per chunk of ≤ 100 orders)
    ``+ ceil(orders_awaiting_label_request / 20)`` (one ``create-labels-async`` per 20 orders).
    """
    label_requests = math.ceil(orders_awaiting_label_request / MAX_ORDERS_PER_LABEL_REQUEST)
    return unfinished_chunks + label_requests


def estimate_completion(
    *, batch: PushBatch, unfinished_chunks: int, orders_awaiting_label_request: int, now: datetime
) -> datetime | None:
    """When the batch should be done, derived from the Sendcloud request budget; None once finished.

    Formula::

        remaining = unfinished_chunks * 1                                  # order upserts
                  + ceil(orders_awaiting_label_request / 20)               # label requests, if any
        estimated_completion_at = now + remaining / SENDCLOUD_UNSAFE_PER_MINUTE minutes

    Why the unsafe budget alone: Sendcloud allows an account 100 POSTs a minute but 1000 GETs, and a
    batch needs one GET (label polling, downloads) for at most a few POSTs, so the POSTs are what
    bounds it; the time each request itself takes is small next to the budget's pacing once a batch
    has more than a handful of chunks. It is an optimistic estimate: the budget is shared per
    Sendcloud account, so other batches of the same shop running at the same time, and retries after
    Sendcloud errors, make the real finish later. ``orders_awaiting_label_request`` counts the orders
    whose label has not been requested yet (queued, pushing, pushed or label-queued) in a batch that
    creates labels, and is 0 otherwise. A batch whose work is all done but that is not marked finished
    yet (its callback is on its way) is estimated at ``now``.
    """
    if batch.status in FINISHED_BATCH_STATUSES:
        return None
    remaining = remaining_unsafe_requests(
        unfinished_chunks=unfinished_chunks, orders_awaiting_label_request=orders_awaiting_label_request
    )
    per_minute = max(1, settings.SENDCLOUD_UNSAFE_PER_MINUTE)
    return now + timedelta(seconds=math.ceil(remaining * 60 / per_minute))


def estimated_minutes(*, total_chunks: int, orders_awaiting_label_request: int) -> float:
    """Minutes a new batch should take, from the write budget (the batch API's estimate, see
    :func:`estimate_completion`), rounded up to the second and given in minutes with two decimals."""
    remaining = remaining_unsafe_requests(
        unfinished_chunks=total_chunks, orders_awaiting_label_request=orders_awaiting_label_request
    )
    per_minute = max(1, settings.SENDCLOUD_UNSAFE_PER_MINUTE)
    return round(math.ceil(remaining * 60 / per_minute) / 60, 2)


#: What the batch API shows of an order's service point and customs data (``api.serializers``).
ORDER_SHIPPING_FIELDS: Final = (
    "order__service_point_id",
    "order__service_point_carrier_id",
    "order__service_point_post_number",
    "order__customs_invoice_number",
    "order__customs_shipment_type",
    "order__customs_export_type",
    "order__shipping_address__country",
    "order__shipping_address__postal_code",
)


def batch_shipments(*, batch: PushBatch, state: str | None = None) -> QuerySet[OrderShipment]:
    """The batch's shipment rows with their order, by order number; optionally only one state.

    Only the columns the API shows are loaded, so a page of 1,000 stays one light query (and one more for
    the labelled orders' parcels).
    """
    queryset = OrderShipment.objects.filter(batch=batch)
    if state:
        queryset = queryset.filter(state=state)
    return (
        queryset.select_related("order", "order__shipping_address")
        .only(
            "pk",
            "state",
            "failed_phase",
            "last_error",
            "attempts",
            "tracking_number",
            "tracking_url",
            "label_file",
            "customs_declaration",
            "chunk_number",
            "batch_id",
            "order__id",
            "order__order_number",
            *ORDER_SHIPPING_FIELDS,
        )
        .prefetch_related(
            Prefetch(
                "parcels",
                queryset=ShipmentParcel.objects.only(
                    "pk",
                    "shipment_id",
                    "position",
                    "sendcloud_parcel_id",
                    "tracking_number",
                    "tracking_url",
                    "status_id",
                    "status_code",
                    "status_message",
                    "delivered_at",
                ).order_by("position"),
            )
        )
        .order_by("order__order_number", "order_id")
    )


def batch_shipment_page(
    *, batch: PushBatch, state: str | None, page: int, page_size: int, total: int
) -> list[OrderShipment]:
    """One page (1-based) of ``batch_shipments``; ``total`` is the known row count (from the counts).

    Passing the total in saves a ``COUNT(*)``; a page past the end costs no query at all.
    """
    offset = (page - 1) * page_size
    if offset >= total:
        return []
    return list(batch_shipments(batch=batch, state=state)[offset : offset + page_size])


@dataclass(frozen=True)
class BatchDetail:
    """A batch's progress and one page of its orders (optionally of one state), for the batch API."""

    progress: BatchProgress
    #: Orders matching the state filter over all pages.
    count: int
    shipments: list[OrderShipment]


def batch_detail(*, batch: PushBatch, state: str | None, page: int, page_size: int) -> BatchDetail:
    """Progress plus one page of orders: a constant number of queries whatever the batch's size."""
    progress = batch_progress(batch=batch)
    count = progress.counts.by_state[state] if state else progress.counts.in_batch
    shipments = batch_shipment_page(batch=batch, state=state, page=page, page_size=page_size, total=count)
    return BatchDetail(progress=progress, count=count, shipments=shipments)


def batch_order_shipment(*, batch: PushBatch, order_id: int) -> OrderShipment | None:
    """The shipment of one order of the batch, or None when that order is not (or no longer) in it."""
    return OrderShipment.objects.filter(batch=batch, order_id=order_id).only("pk", "label_file", "order_id").first()


def watch_batches(*, batch_ids: Sequence[str]) -> list[BatchCounts]:
    """The counts of each batch, in the order given, for a waiting operator (two queries for any number).

    A batch deleted meanwhile is left out: there is nothing left to wait for.
    """
    found = {str(batch.pk): batch for batch in PushBatch.objects.filter(pk__in=list(batch_ids))}
    return counts_of_many([found[str(batch_id)] for batch_id in batch_ids if str(batch_id) in found])


#: Failures :func:`first_failures` returns at most: enough to see a pattern, short enough to read.
FAILURES_SHOWN: Final = 5


@dataclass(frozen=True)
class Failure:
    order_id: int
    order_number: str
    error: str


def first_failures(*, batch_ids: Sequence[str], limit: int = FAILURES_SHOWN) -> list[Failure]:
    """The first ``limit`` failed orders of these batches, by order id, with the error staff would read."""
    rows = (
        OrderShipment.objects.filter(batch_id__in=list(batch_ids), state=ShipmentState.FAILED)
        .order_by("order_id")
        .values_list("order_id", "order__order_number", "last_error")[:limit]
    )
    return [Failure(order_id=pk, order_number=number, error=error) for pk, number, error in rows]
