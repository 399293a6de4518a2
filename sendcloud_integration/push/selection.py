"""Bulk pushes from the command line: which orders to push, and how the resulting batches are doing.

``push_sendcloud_shipments`` turns its flags into a call to :func:`select_order_ids`, hands the ids to
the same ``services.push_orders`` the REST endpoint uses, and, with ``--wait``, polls
:func:`watch_batches`. Both functions only read; the push itself, with its locks and its
classification, stays in ``services``. Keeping the selection here (and not in the command) lets the
admin or a future endpoint offer the same "all failed orders since Monday" without re-deriving it.

Query counts do not grow with the number of orders: a selection is one query (plus one per
:data:`ID_BATCH` explicit ids), and a poll of any number of batches is two.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from django.db.models import Count, Q

from sendcloud_integration import lookups  # noqa: F401 - registers ``any_of``
from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState
from webshop.models import Order, Shop

#: Explicit ids looked up per query: well under SQLite's limit on bound parameters (32,766).
ID_BATCH: Final = 5_000

#: Failures :func:`first_failures` returns at most: enough to see a pattern, short enough to read.
FAILURES_SHOWN: Final = 5


class SelectionError(ValueError):
    """The selection asked for cannot be made; ``str(error)`` is one line for a person."""


class StateFilter(enum.StrEnum):
    """Where an order stands with Sendcloud, as an operator names it on the command line.

    ``never-pushed`` means no shipment row at all; the others are the shipment states of
    ``ShipmentState``. ``pushed`` is "in Sendcloud without a label" — the orders a later push with
    ``create_label`` will make labels for.
    """

    NEVER_PUSHED = "never-pushed"
    QUEUED = ShipmentState.QUEUED.value
    PUSHING = ShipmentState.PUSHING.value
    PUSHED = ShipmentState.PUSHED.value
    LABEL_QUEUED = ShipmentState.LABEL_QUEUED.value
    LABELLING = ShipmentState.LABELLING.value
    LABELLED = ShipmentState.LABELLED.value
    FAILED = ShipmentState.FAILED.value

    @classmethod
    def parse(cls, text: str) -> list[StateFilter]:
        """``"failed,never-pushed"`` → the filters, in order, without repeats.

        Case and ``-``/``_`` do not matter (``label-queued`` = ``label_queued``), because operators
        type these from memory and both spellings appear in the docs.
        """
        by_key = {_state_key(state.value): state for state in cls}
        found: list[StateFilter] = []
        for word in text.split(","):
            if not word.strip():
                continue
            state = by_key.get(_state_key(word))
            if state is None:
                raise SelectionError(f"unknown state {word.strip()!r}; known states: {', '.join(cls)}")
            if state not in found:
                found.append(state)
        if not found:
            raise SelectionError(f"no state given; known states: {', '.join(cls)}")
        return found

    def condition(self) -> Q:
        """The filter on ``Order`` rows that this state means."""
        if self is StateFilter.NEVER_PUSHED:
            return Q(shipment__isnull=True)
        if self is StateFilter.PUSHED:
            return Q(shipment__state=ShipmentState.PUSHED, shipment__labelled_at__isnull=True)
        return Q(shipment__state=self.value)


def _state_key(word: str) -> str:
    return word.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class OrderSelection:
    """The ids a bulk push should send, and what the operator may want to know about them."""

    #: Ids of the shop's orders matching every criterion, ascending, at most ``limit``.
    order_ids: list[int]
    #: Requested ids that are not orders of this shop (reported, never pushed).
    unknown_ids: list[int]
    #: True when ``limit`` left matching orders out.
    limited: bool


def select_order_ids(
    *,
    shop: Shop,
    order_ids: Sequence[int] | None = None,
    states: Collection[StateFilter] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> OrderSelection:
    """The shop's orders matching *all* given criteria (several states match any of them), by id.

    ``since`` is inclusive and ``until`` exclusive, both on the order's ``created_at``, so
    consecutive ranges never count an order twice. At least one criterion is required: a bulk push
    of "every order of the shop" is never what a forgotten flag should mean.

    Explicit ids that are not orders of the shop come back in ``unknown_ids`` so the caller can say
    so, instead of being silently dropped; ids that exist but miss another criterion are simply not
    selected.
    """
    if order_ids is None and not states and since is None and until is None:
        raise SelectionError("no selection given: name order ids, states or a created-at range")
    if since is not None and until is not None and since >= until:
        raise SelectionError(
            f"the range is empty: since ({since.isoformat()}) is not before until ({until.isoformat()})"
        )
    if limit is not None and limit < 1:
        raise SelectionError("the limit must be a positive integer")

    criteria = Q()
    if states:
        any_state = Q()
        for state in states:
            any_state |= state.condition()
        criteria &= any_state
    if since is not None:
        criteria &= Q(created_at__gte=since)
    if until is not None:
        criteria &= Q(created_at__lt=until)
    orders = Order.objects.filter(shop=shop).order_by("pk")

    if order_ids is None:
        cap = None if limit is None else limit + 1
        found = list(orders.filter(criteria).values_list("pk", flat=True)[:cap])
        return OrderSelection(order_ids=found[:limit], unknown_ids=[], limited=limit is not None and len(found) > limit)

    wanted = list(dict.fromkeys(order_ids))
    existing: set[int] = set()
    matching: list[int] = []
    for batch in _batches(wanted):
        in_shop = orders.filter(pk__any_of=batch)
        existing.update(in_shop.values_list("pk", flat=True))
        if criteria:
            matching.extend(in_shop.filter(criteria).values_list("pk", flat=True))
    if not criteria:
        matching = list(existing)
    matching.sort()
    unknown = [pk for pk in wanted if pk not in existing]
    limited = limit is not None and len(matching) > limit
    return OrderSelection(order_ids=matching[:limit], unknown_ids=unknown, limited=limited)


def _batches(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), ID_BATCH):
        yield values[start : start + ID_BATCH]


@dataclass(frozen=True)
class BatchWatch:
    """One poll of a batch's progress, as a waiting operator sees it."""

    batch_id: str
    status: str
    is_finished: bool
    create_label: bool
    queued: int
    #: Orders with nothing left to do in this batch: failed, labelled, pushed when no label was asked
    #: for, and those a later push has taken over. Equals ``queued`` once the batch is finished.
    done: int
    pushed: int
    labelled: int
    failed: int


def watch_batches(*, batch_ids: Sequence[str]) -> list[BatchWatch]:
    """The progress of each batch, in the order given: two queries however many batches and orders.

    Counts come from the shipment rows while a batch runs, and from the totals ``finish_batch``
    stored once it is finished (those are final; the rows may move on to a later batch).
    """
    batches = {str(batch.pk): batch for batch in PushBatch.objects.filter(pk__in=list(batch_ids))}
    counts: dict[str, dict[str, int]] = {batch_id: {} for batch_id in batches}
    rows = (
        OrderShipment.objects.filter(batch_id__in=list(batches))
        .values_list("batch_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for batch_id, state, n in rows:
        counts[str(batch_id)][state] = n

    watches = []
    for batch_id in batch_ids:
        batch = batches.get(str(batch_id))
        if batch is None:  # deleted while we watched: nothing left to wait for
            continue
        by_state = counts[str(batch.pk)]
        if batch.is_finished:
            pushed, labelled, failed = batch.pushed_count, batch.labelled_count, batch.failed_count
            done = batch.queued_orders
        else:
            labelled = by_state.get(ShipmentState.LABELLED, 0)
            failed = by_state.get(ShipmentState.FAILED, 0)
            pushed = labelled + sum(
                by_state.get(state, 0)
                for state in (ShipmentState.PUSHED, ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING)
            )
            moved_on = max(0, batch.queued_orders - sum(by_state.values()))
            done = labelled + failed + moved_on
            if not batch.create_label:
                done += by_state.get(ShipmentState.PUSHED, 0)
        watches.append(
            BatchWatch(
                batch_id=str(batch.pk),
                status=batch.status,
                is_finished=batch.is_finished,
                create_label=batch.create_label,
                queued=batch.queued_orders,
                done=min(done, batch.queued_orders),
                pushed=pushed,
                labelled=labelled,
                failed=failed,
            )
        )
    return watches


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
