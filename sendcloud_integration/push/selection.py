"""Which orders a bulk push sends: the operator's selection (ids, states, a created-at range, a limit).

``push_sendcloud_shipments`` turns its flags into a call to :func:`select_order_ids` and hands the ids
to the same ``push.services.push_orders`` the REST endpoint uses. The selection only reads; the push
itself, with its locks and its classification, stays in ``push.services``. Keeping the selection here
(and not in the command) lets the admin or a future endpoint offer the same "all failed orders since
Monday" without re-deriving it.

A selection is one query (plus one per :data:`ID_BATCH` explicit ids), whatever the number of orders.
Waiting on the resulting batches is ``selectors.batches.watch_batches``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from django.db.models import Q

from sendcloud_integration import lookups  # noqa: F401 - registers ``any_of``
from sendcloud_integration.models import ShipmentState
from webshop.models import Order, Shop
from wemasy.errors import ApplicationError

#: Explicit ids looked up per query: well under SQLite's limit on bound parameters (32,766).
ID_BATCH: Final = 5_000


class SelectionError(ApplicationError, ValueError):
    """The selection asked for cannot be made; ``str(error)`` is one line for a person."""

    exit_code = 2  # a mistake in the operator's input, like every usage error


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
    CANCEL_REQUESTED = ShipmentState.CANCEL_REQUESTED.value
    CANCELLED = ShipmentState.CANCELLED.value

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
