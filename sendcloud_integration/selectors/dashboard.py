"""Reads for the staff views: the dashboard, batch progress in admin lists, the progress JSON.

Kept out of the admin module so the queries can be read (and their count tested) on their own: each
function runs a fixed number of queries whatever the number of shops, orders or batches, because
staff open these pages exactly when a large push is running.

Batch progress is the pipeline's ``BatchCounts`` (``sendcloud_integration/pipeline/batches.py``), the
same numbers the batch API and the bulk command show; this module only draws them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from sendcloud_integration.models import (
    OrderShipment,
    Phase,
    PushBatch,
    ShipmentState,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.pipeline.batches import BatchCounts
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
    """A batch's progress bar: the batch's ``BatchCounts`` drawn as a green and a red part."""

    counts: BatchCounts

    @property
    def batch(self) -> PushBatch:
        return self.counts.batch

    @property
    def is_active(self) -> bool:
        return not self.counts.is_finished

    @property
    def percent(self) -> int:
        return self.counts.percent

    @property
    def failed_percent(self) -> int:
        """The red part of the bar."""
        queued = self.counts.queued
        return min(100, self.counts.failed * 100 // queued) if queued > 0 else 0

    @property
    def ok_percent(self) -> int:
        """The green part of the bar: done and not failed."""
        return max(0, self.percent - self.failed_percent)

    def as_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "id": str(self.batch.pk),
            "status": self.batch.status,
            "status_label": self.batch.get_status_display(),
            "active": self.is_active,
            "percent": self.percent,
            "ok_percent": self.ok_percent,
            "failed_percent": self.failed_percent,
            "queued": counts.queued,
            "done": counts.done,
            "pushed": counts.pushed,
            "labelled": counts.labelled,
            "failed": counts.failed,
            "in_flight": counts.in_flight,
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


def progress_of(batch: PushBatch) -> BatchProgress:
    """The progress of a batch read through ``batches.with_state_counts`` (no query)."""
    return BatchProgress(batches.annotated_counts(batch))


def batches_progress(batch_ids: Sequence[uuid.UUID | str]) -> list[BatchProgress]:
    """Progress of the given batches, in one query (the dashboard's refresh endpoint)."""
    listed = batches.with_state_counts(PushBatch.objects.filter(pk__in=list(batch_ids)).order_by("-created_at"))
    return [progress_of(batch) for batch in listed]


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
    listed = batches.with_state_counts(
        PushBatch.objects.filter(pk__in=list(latest))
        .select_related("started_by_user", "started_by_token")
        .order_by("-created_at")
    )
    return [progress_of(batch) for batch in listed]
