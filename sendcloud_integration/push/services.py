"""Starting a push: classify the orders, queue the shippable ones in chunks, and start the batch after commit.

All three doors — the REST endpoint, Django admin and the management command — call ``push_orders``;
what happens to a batch after that is the pipeline's (``sendcloud_integration.pipeline``).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from sendcloud_integration.exceptions import IntegrationUnavailable, NoOrdersFound
from sendcloud_integration.limits import MAX_ORDERS_PER_UPSERT
from sendcloud_integration.lookups import bigint_array
from sendcloud_integration.models import (
    IntegrationProblem,
    OrderShipment,
    PushBatch,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
    StartedBy,
    integration_problem,
)
from sendcloud_integration.pipeline import dispatch
from sendcloud_integration.push import lock_objects
from sendcloud_integration.push.classification import Category, classify
from webshop.models import ApiToken, Shop
from wemasy import metrics

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who started a push: recorded on the batch for staff to read."""

    kind: StartedBy
    label: str
    token: ApiToken | None = None
    user: User | None = None

    @classmethod
    def api_token(cls, token: ApiToken) -> Actor:
        return cls(StartedBy.API_TOKEN, f"API token {token.prefix}… ({token.name or 'unnamed'})", token=token)

    @classmethod
    def staff(cls, user: User) -> Actor:
        return cls(StartedBy.STAFF, f"staff user {user.get_username()}", user=user)

    @classmethod
    def command(cls, description: str = "push_sendcloud_shipments") -> Actor:
        return cls(StartedBy.COMMAND, f"command {description}")


class QueuedOrder(NamedTuple):
    """One queued order (a tuple: a push makes up to 10,000 of them, at a fraction of a dataclass's cost)."""

    id: int
    order_number: str
    chunk: int
    category: Category


@dataclass(frozen=True)
class PushResult:
    """What a push decided, in request order. The API turns it into the summary of docs/api.md."""

    requested: int
    create_label: bool
    new: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    queued: list[QueuedOrder] = field(default_factory=list)
    total_chunks: int = 0
    batch_id: uuid.UUID | None = None
    dry_run: bool = False

    @property
    def labels_will_be_created(self) -> bool:
        return self.create_label and bool(self.queued)

    @property
    def message(self) -> str:
        if not self.queued:
            noun = "order was" if self.requested == 1 else f"{self.requested} orders were"
            return f"No orders queued for SendCloud: {'the' if self.requested == 1 else 'all'} {noun} skipped."
        verb = "would be queued" if self.dry_run else "queued"
        orders = f"{len(self.queued)} order{'s' if len(self.queued) != 1 else ''}"
        chunks = f"{self.total_chunks} chunk{'s' if self.total_chunks != 1 else ''}"
        return f"{orders} {verb} for SendCloud in {chunks}."


#: Why a push cannot start, worded for the API client or the staff member who asked for it.
REFUSALS = {
    IntegrationProblem.MISSING: "This shop has no SendCloud integration configured.",
    IntegrationProblem.INACTIVE: "This shop's SendCloud integration is inactive.",
    IntegrationProblem.NO_CREDENTIALS: "This shop's SendCloud integration lacks API credentials.",
}


def ready_integration(shop: Shop) -> SendcloudIntegration:
    """The shop's integration if a push can use it, or ``IntegrationUnavailable`` saying why not."""
    integration = SendcloudIntegration.objects.filter(shop=shop).first()
    problem = integration_problem(integration)
    if problem is not None or integration is None:
        raise IntegrationUnavailable(REFUSALS[problem or IntegrationProblem.MISSING])
    return integration


def push_orders(
    *,
    shop: Shop,
    order_ids: Sequence[int],
    create_label: bool,
    actor: Actor,
    chunk_size: int | None = None,
    dry_run: bool = False,
) -> PushResult:
    """Classify the orders and queue the shippable ones in chunks; the work starts after commit.

    One transaction, under row locks on the orders, so two concurrent pushes of overlapping ids can
    never queue one order twice: the second sees it "already queued in batch …". The number of
    queries does not depend on the number of ids. ``dry_run`` classifies and changes nothing.
    """
    try:
        result = _push_orders(
            shop=shop,
            order_ids=order_ids,
            create_label=create_label,
            actor=actor,
            chunk_size=chunk_size,
            dry_run=dry_run,
        )
    except (IntegrationUnavailable, NoOrdersFound):
        metrics.record_push(door=actor.kind, outcome="refused")
        raise
    metrics.record_push(
        door=actor.kind,
        outcome="dry_run" if dry_run else "queued" if result.queued else "nothing_queued",
        new=len(result.new),
        retry=len(result.retry),
        skipped=len(result.skipped),
    )
    return result


def _push_orders(
    *,
    shop: Shop,
    order_ids: Sequence[int],
    create_label: bool,
    actor: Actor,
    chunk_size: int | None,
    dry_run: bool,
) -> PushResult:
    chunk_size = chunk_size or settings.SENDCLOUD_CHUNK_SIZE
    if not 1 <= chunk_size <= MAX_ORDERS_PER_UPSERT:
        raise ValueError("chunk_size must be between 1 and 100 (the Sendcloud v3 batch maximum)")
    ids = list(dict.fromkeys(order_ids))
    ready_integration(shop)

    with transaction.atomic():
        locked = lock_objects.lock_orders_for_push(shop=shop, order_ids=ids)
        if not locked:
            raise NoOrdersFound("None of the requested orders exist in this shop.")
        orders = {facts.id: facts for facts in lock_objects.facts_for_classification(order_ids=locked)}

        new: list[str] = []
        retry: list[str] = []
        skipped: list[str] = []
        to_queue: list[tuple[int, str, Category]] = []
        for order_id in ids:
            order = orders.get(order_id)
            if order is None:
                skipped.append(f"#{order_id}: order not found")
                continue
            verdict = classify(order, create_label=create_label)
            if verdict.category is Category.SKIPPED:
                skipped.append(f"{order.order_number}: {verdict.reason}")
                continue
            (new if verdict.category is Category.NEW else retry).append(order.order_number)
            to_queue.append((order.id, order.order_number, verdict.category))

        queued = [
            QueuedOrder(id=pk, order_number=number, chunk=index // chunk_size + 1, category=category)
            for index, (pk, number, category) in enumerate(to_queue)
        ]
        total_chunks = math.ceil(len(queued) / chunk_size)
        result = PushResult(
            requested=len(ids),
            create_label=create_label,
            new=new,
            retry=retry,
            skipped=skipped,
            queued=queued,
            total_chunks=total_chunks,
            dry_run=dry_run,
        )
        if dry_run or not queued:
            return result

        batch = _create_batch(shop=shop, actor=actor, result=result, chunk_size=chunk_size)
        _queue_shipments(shop=shop, batch=batch, queued=queued, create_label=create_label)
        transaction.on_commit(lambda: dispatch.start_batch(batch.pk), robust=True)

    logger.info(
        "push batch=%s shop=%s queued=%d skipped=%d chunks=%d labels=%s",
        batch.pk,
        shop.slug,
        len(queued),
        len(skipped),
        total_chunks,
        create_label,
        extra={"batch_id": str(batch.pk)},
    )
    return PushResult(**{**result.__dict__, "batch_id": batch.pk})


def _create_batch(*, shop: Shop, actor: Actor, result: PushResult, chunk_size: int) -> PushBatch:
    batch = PushBatch.objects.create(
        shop=shop,
        create_label=result.create_label,
        started_by_kind=actor.kind,
        started_by_token=actor.token,
        started_by_user=actor.user,
        started_by_label=actor.label,
        requested_orders=result.requested,
        new_orders=len(result.new),
        retry_orders=len(result.retry),
        skipped_orders=len(result.skipped),
        queued_orders=len(result.queued),
        total_chunks=result.total_chunks,
    )
    sizes = [min(chunk_size, len(result.queued) - n * chunk_size) for n in range(result.total_chunks)]
    PushChunk.objects.bulk_create(PushChunk(batch=batch, number=n + 1, size=size) for n, size in enumerate(sizes))
    return batch


def _queue_shipments(*, shop: Shop, batch: PushBatch, queued: list[QueuedOrder], create_label: bool) -> None:
    """Move every queued order to QUEUED in one statement (an upsert on the order's shipment row).

    The classification just verified each row's current state under the order lock, which is what
    makes this unconditional write safe; after this point every change goes through ``move``.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        _queue_shipments_postgresql(shop=shop, batch=batch, queued=queued, create_label=create_label, now=now)
        return
    OrderShipment.objects.bulk_create(
        [
            OrderShipment(
                order_id=item.id,
                shop=shop,
                state=ShipmentState.QUEUED,
                batch=batch,
                chunk_number=item.chunk,
                create_label=create_label,
                queued_at=now,
                state_changed_at=now,
                updated_at=now,
            )
            for item in queued
        ],
        update_conflicts=True,
        unique_fields=["order"],
        update_fields=list(_QUEUE_UPDATES),
    )


#: The columns a (re-)queue sets; every other column keeps its value (or its default, for a new row).
_QUEUE_UPDATES = ("state", "batch", "chunk_number", "create_label", "queued_at", "state_changed_at", "updated_at")


def _queue_shipments_postgresql(
    *, shop: Shop, batch: PushBatch, queued: list[QueuedOrder], create_label: bool, now: datetime
) -> None:
    """The same upsert as one ``INSERT … SELECT FROM unnest(…)`` with two array parameters.

    For 10,000 orders the ORM's ``bulk_create`` spends most of the request compiling 10,000 rows of
    SQL value by value; here PostgreSQL expands the arrays itself, which is what keeps a large push
    within its latency target (see docs/benchmarks.md). The column list is derived from the model,
    so a new field with a default needs no change here.
    """
    varying = {
        "order_id": "o",
        "chunk_number": "c",
        "shop_id": "%(shop)s",
        "state": "%(state)s",
        "batch_id": "%(batch)s",
        "create_label": "%(create_label)s",
        "queued_at": "%(now)s",
        "state_changed_at": "%(now)s",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
    }
    params: dict[str, Any] = {
        # As text (``{1,2,…}``): psycopg's adapter for a list of 10,000 ints costs more than the insert.
        "orders": bigint_array(item.id for item in queued),
        "chunks": bigint_array(item.chunk for item in queued),
        "shop": shop.pk,
        "state": ShipmentState.QUEUED.value,
        "batch": batch.pk,
        "create_label": create_label,
        "now": now,
    }
    columns: list[str] = []
    values: list[str] = []
    for model_field in OrderShipment._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in varying:
            values.append(varying[model_field.column])
        else:
            params[model_field.column] = model_field.get_db_prep_save(model_field.get_default(), connection)
            values.append(f"%({model_field.column})s")
    column_of = {f.name: f.column for f in OrderShipment._meta.concrete_fields}
    updates = ", ".join(
        f"{connection.ops.quote_name(c)} = EXCLUDED.{connection.ops.quote_name(c)}"
        for c in (column_of[name] for name in _QUEUE_UPDATES)
    )
    # Table and column names come from the model and every value is a parameter.
    sql = (
        f"INSERT INTO {OrderShipment._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM unnest(%(orders)s::bigint[], %(chunks)s::integer[]) AS t(o, c) "
        f"ON CONFLICT (order_id) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
