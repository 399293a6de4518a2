"""Reads for the staff views: the dashboard, batch progress in admin lists, the progress JSON.

Kept out of the admin module so the queries can be read (and their count tested) on their own: each
function runs a fixed number of queries whatever the number of shops, orders or batches, because
staff open these pages exactly when a large push is running.

Progress of a batch that is still running is read live from its shipment rows (the truth, see
design.md); once finished, the totals stored by ``services.finish_batch`` are used instead, because
an order re-pushed later moves to the newer batch and would otherwise vanish from the older one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber

from sendcloud_integration.models import (
    FINISHED_BATCH_STATUSES,
    IN_FLIGHT_STATES,
    OrderShipment,
    Phase,
    PushBatch,
    ShipmentState,
)
from webshop.models import Order, Shop

#: A pseudo state for orders that were never queued (they have no shipment row yet).
NOT_SENT = "not_sent"

#: Display order of the state bars: the pipeline from left to right, failures last.
STATE_ORDER: tuple[tuple[str, str], ...] = (
    (NOT_SENT, "Not sent"),
    *((state.value, str(state.label)) for state in ShipmentState if state != ShipmentState.FAILED),
    (ShipmentState.FAILED.value, str(ShipmentState.FAILED.label)),
)


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    count: int
    percent: float  # of the shop's largest bar, for drawing; 0 to 100


@dataclass(frozen=True)
class FailureReason:
    phase: str
    error: str
    count: int

    @property
    def phase_label(self) -> str:
        return str(Phase(self.phase).label) if self.phase in Phase.values else self.phase


@dataclass(frozen=True)
class BatchProgress:
    """A batch with the numbers a progress bar needs, whether it is still running or finished."""

    batch: PushBatch
    queued: int
    done: int
    pushed: int
    labelled: int
    failed: int
    in_flight: int

    @property
    def is_active(self) -> bool:
        return self.batch.status not in FINISHED_BATCH_STATUSES

    @property
    def percent(self) -> int:
        if self.queued <= 0:
            return 100 if not self.is_active else 0
        return min(100, self.done * 100 // self.queued)

    @property
    def failed_percent(self) -> int:
        """The red part of the bar."""
        return min(100, self.failed * 100 // self.queued) if self.queued > 0 else 0

    @property
    def ok_percent(self) -> int:
        """The green part of the bar: done and not failed."""
        return max(0, self.percent - self.failed_percent)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.batch.pk),
            "status": self.batch.status,
            "status_label": self.batch.get_status_display(),
            "active": self.is_active,
            "percent": self.percent,
            "ok_percent": self.ok_percent,
            "failed_percent": self.failed_percent,
            "queued": self.queued,
            "done": self.done,
            "pushed": self.pushed,
            "labelled": self.labelled,
            "failed": self.failed,
            "in_flight": self.in_flight,
        }


@dataclass
class ShopOverview:
    shop: Shop
    states: list[StateCount] = field(default_factory=list)
    total: int = 0
    failures: list[FailureReason] = field(default_factory=list)
    batches: list[BatchProgress] = field(default_factory=list)

    @property
    def has_active_batches(self) -> bool:
        return any(progress.is_active for progress in self.batches)


# --- batch progress -------------------------------------------------------------------------------


def _live_count(states: Iterable[str]) -> Subquery:
    """Rows of the outer batch in ``states``; one indexed sub-select on (batch, chunk, state)."""
    return Subquery(
        OrderShipment.objects.filter(batch=OuterRef("pk"), state__in=list(states))
        .order_by()
        .values("batch")
        .annotate(n=Count("pk"))
        .values("n")[:1],
        output_field=IntegerField(),
    )


def _stored_or_live(stored: str, states: Iterable[str]) -> Case:
    """The stored total for a finished batch, the live count for a running one."""
    return Case(
        When(status__in=list(FINISHED_BATCH_STATUSES), then=F(stored)),
        default=Coalesce(_live_count(states), Value(0)),
        output_field=IntegerField(),
    )


def with_progress(queryset: QuerySet[PushBatch]) -> QuerySet[PushBatch]:
    """Annotate each batch with ``progress_*`` counts, in the same query as the batches themselves."""
    return queryset.annotate(
        progress_pushed=_stored_or_live("pushed_count", [ShipmentState.PUSHED, ShipmentState.LABELLED]),
        progress_labelled=_stored_or_live("labelled_count", [ShipmentState.LABELLED]),
        progress_failed=_stored_or_live("failed_count", [ShipmentState.FAILED]),
        progress_in_flight=Case(
            When(status__in=list(FINISHED_BATCH_STATUSES), then=Value(0)),
            default=Coalesce(_live_count(IN_FLIGHT_STATES), Value(0)),
            output_field=IntegerField(),
        ),
    )


def progress_of(batch: PushBatch) -> BatchProgress:
    """The progress of a batch read through :func:`with_progress` (or, without it, from stored totals)."""
    in_flight = getattr(batch, "progress_in_flight", 0)
    if batch.status in FINISHED_BATCH_STATUSES:
        in_flight = 0
    queued = batch.queued_orders
    return BatchProgress(
        batch=batch,
        queued=queued,
        done=max(0, queued - in_flight) if batch.status not in FINISHED_BATCH_STATUSES else queued,
        pushed=getattr(batch, "progress_pushed", batch.pushed_count),
        labelled=getattr(batch, "progress_labelled", batch.labelled_count),
        failed=getattr(batch, "progress_failed", batch.failed_count),
        in_flight=in_flight,
    )


def batches_progress(batch_ids: Sequence[uuid.UUID | str]) -> list[BatchProgress]:
    """Progress of the given batches, in one query (the dashboard's refresh endpoint)."""
    batches = with_progress(PushBatch.objects.filter(pk__in=list(batch_ids)).order_by("-created_at"))
    return [progress_of(batch) for batch in batches]


# --- the dashboard ----------------------------------------------------------------------------------


def shop_overviews(
    *, shop_ids: Sequence[int] | None = None, failure_limit: int = 10, batch_limit: int = 5
) -> list[ShopOverview]:
    """Per shop: orders by shipment state, the commonest failures, and the latest batches.

    Six queries in all, however many shops there are: the top-N per shop is picked by the database
    with a window function rather than one query per shop.
    """
    shops = Shop.objects.order_by("name", "slug")
    if shop_ids is not None:
        shops = shops.filter(pk__in=list(shop_ids))
    overviews = {shop.pk: ShopOverview(shop=shop) for shop in shops}
    if not overviews:
        return []
    ids = list(overviews)

    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for shop_id, state, n in (
        OrderShipment.objects.filter(shop_id__in=ids)
        .order_by()
        .values("shop_id", "state")
        .annotate(n=Count("pk"))
        .values_list("shop_id", "state", "n")
    ):
        counts[shop_id][state] = n
    for shop_id, n in (
        Order.objects.filter(shop_id__in=ids, shipment__isnull=True)
        .order_by()
        .values("shop_id")
        .annotate(n=Count("pk"))
        .values_list("shop_id", "n")
    ):
        counts[shop_id][NOT_SENT] = n

    for shop_id, overview in overviews.items():
        per_state = counts.get(shop_id, {})
        largest = max(per_state.values(), default=0)
        overview.total = sum(per_state.values())
        overview.states = [
            StateCount(
                state=state,
                label=label,
                count=per_state.get(state, 0),
                percent=round(per_state.get(state, 0) * 100 / largest, 1) if largest else 0.0,
            )
            for state, label in STATE_ORDER
        ]

    for failure in failure_reasons(shop_ids=ids, limit=failure_limit):
        shop_id, reason = failure
        overviews[shop_id].failures.append(reason)

    for progress in recent_batches(shop_ids=ids, limit=batch_limit):
        overviews[progress.batch.shop_id].batches.append(progress)

    return list(overviews.values())


def failure_reasons(*, shop_ids: Sequence[int], limit: int = 10) -> list[tuple[int, FailureReason]]:
    """The ``limit`` commonest (phase, error) pairs among each shop's FAILED shipments, commonest first."""
    grouped = (
        OrderShipment.objects.filter(shop_id__in=list(shop_ids), state=ShipmentState.FAILED)
        .order_by()
        .values("shop_id", "failed_phase", "last_error")
        .annotate(n=Count("pk"))
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("shop_id")],
                order_by=[Count("pk").desc(), F("failed_phase").asc(), F("last_error").asc()],
            )
        )
        .filter(rank__lte=limit)
        .values_list("shop_id", "failed_phase", "last_error", "n", "rank")
    )
    rows = sorted(grouped, key=lambda row: (row[0], row[4]))
    return [(shop_id, FailureReason(phase=phase, error=error, count=n)) for shop_id, phase, error, n, _ in rows]


def recent_batches(*, shop_ids: Sequence[int], limit: int = 5) -> list[BatchProgress]:
    """Each shop's ``limit`` latest batches with their progress, newest first (two queries)."""
    latest = (
        PushBatch.objects.filter(shop_id__in=list(shop_ids))
        .order_by()
        .annotate(rank=Window(RowNumber(), partition_by=[F("shop_id")], order_by=[F("created_at").desc()]))
        .filter(rank__lte=limit)
        .values_list("pk", flat=True)
    )
    batches = with_progress(
        PushBatch.objects.filter(pk__in=list(latest))
        .select_related("started_by_user", "started_by_token")
        .order_by("-created_at")
    )
    return [progress_of(batch) for batch in batches]
