"""The push phase of a chunk: send its orders to Sendcloud in one ``POST /v3/orders``, isolating bad ones.

Sendcloud rejects such a request whole when one order is invalid, naming the index in ``source.pointer``;
the invalid ones are failed with Sendcloud's own words and the rest are sent again, so one bad order
costs its chunk-mates one extra request, not their push. A local pre-check fails what Sendcloud would
certainly refuse before a request is spent on it. Transient trouble (5xx, timeouts, 429, "still
processing") hands the chunk back with a delay, a bounded number of times; a spent request budget hands
it back too, without counting an attempt.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from sendcloud_integration.lookups import Ids
from sendcloud_integration.models import (
    OrderShipment,
    Phase,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
    ShippingOption,
)
from sendcloud_integration.pipeline import chunks
from sendcloud_integration.pipeline.outcome import ChunkOutcome, backoff_seconds, gave_up, spread
from sendcloud_integration.pipeline.shipments import fail_shipments
from sendcloud_integration.sendcloud import budget, payloads
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import AuthenticationError, OrdersRejected, SendcloudError, TransientError
from sendcloud_integration.sendcloud.shipping_data import option_code, shipping_data
from sendcloud_integration.sendcloud.types import UpsertedOrder
from webshop.models import load_lines_and_parcels

#: What the push phase never reads of a shipment row (the label's, tracking's and cancellation's fields): left
#: unloaded, they cost nothing to a chunk of a hundred rows. A field read here must not be in this list, or
#: each row would load it with a query of its own (the query-count test of a chunk would fail).
NOT_READ_HERE: tuple[str, ...] = (
    "last_error",
    "sendcloud_shipment_id",
    "sendcloud_parcel_id",
    "tracking_number",
    "tracking_url",
    "carrier",
    "label_file",
    "customs_declaration",
    "label_requested_at",
    "service_point_checked_at",
    "service_point_checked_id",
    "labelled_at",
    "cancel_requested_at",
    "cancelled_at",
    "cancel_message",
    "return_portal_url",
    "return_portal_checked_at",
)


def push_phase(
    chunk: PushChunk, integration: SendcloudIntegration, client: SendcloudV3Client, call_log: CallLog
) -> ChunkOutcome:
    in_chunk = OrderShipment.objects.filter(
        batch_id=chunk.batch_id,
        chunk_number=chunk.number,
        state__in=[ShipmentState.QUEUED, ShipmentState.PUSHING],
    )
    needs_upsert = in_chunk.exclude(
        state=ShipmentState.QUEUED, create_label=True, pushed_at__isnull=False, failed_phase=""
    )
    # Look at the budget before loading and mapping a hundred orders: while it is spent for the minute,
    # waiting chunks that wake up and go back to sleep must cost a Redis call each, not a chunk's worth of
    # queries and payload building. A wait short enough to sleep through (the per-second window) is spent
    # preparing instead: the slot itself is taken just before sending (below).
    if needs_upsert.exists():
        wait = budget.long_wait(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            return ChunkOutcome(retry_in=spread(wait), counts_attempt=False)
    rows = list(in_chunk.select_related("order__shipping_address").defer(*NOT_READ_HERE).order_by("pk"))
    load_lines_and_parcels(row.order for row in rows)
    if not rows:
        return ChunkOutcome()
    # Orders already in Sendcloud that only want a label skip the upsert. One whose last label attempt
    # failed is sent again first: the shop may have fixed what the carrier refused (the address, say).
    label_only = [r for r in rows if wants_label_only(r)]
    to_push = [r for r in rows if r not in label_only]
    if label_only:
        OrderShipment.objects.filter(pk__any_of=Ids([r.pk for r in label_only])).move(
            source=[ShipmentState.QUEUED], target=ShipmentState.LABEL_QUEUED
        )
    OrderShipment.objects.filter(pk__any_of=Ids([r.pk for r in to_push])).move(
        source=[ShipmentState.QUEUED], target=ShipmentState.PUSHING
    )

    failed = 0
    pending: dict[str, tuple[OrderShipment, dict[str, object]]] = {}
    options = shipping_options_of(integration, [row for row in to_push])
    for row in to_push:
        shipping = shipping_data(row.order, integration)
        problems = payloads.precheck(row.order, integration=integration, options=options, shipping=shipping)
        if problems:
            failed += fail_shipments(
                shipment_ids=[row.pk], phase=Phase.PUSH, error=" ".join(problems), source=[ShipmentState.PUSHING]
            )
            continue
        payload = payloads.build_order(row.order, integration, shipping=shipping)
        pending[payloads.sendcloud_order_id(row.order)] = (row, payload)

    pushed = 0
    while pending:
        batch_rows = list(pending.values())
        call_log.for_orders([row.order_id for row, _ in batch_rows])
        wait = budget.acquire(public_key=integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            return ChunkOutcome(pushed=pushed, failed=failed, retry_in=spread(wait), counts_attempt=False)
        # Nothing between the slot and the request: the slot is held in flight until the answer, and a
        # database commit there (under load, a slow one) would hold it from the account's other requests.
        try:
            accepted = client.upsert_orders([payload for _, payload in batch_rows])
        except OrdersRejected as exc:
            if not exc.errors_by_index:
                failed += _fail_rows([row for row, _ in batch_rows], f"Sendcloud refused the orders: {exc.message}")
                break
            for index, messages in sorted(exc.errors_by_index.items()):
                if 0 <= index < len(batch_rows):
                    row, _ = batch_rows[index]
                    failed += _fail_rows([row], "Sendcloud refused this order: " + "; ".join(messages))
                    pending.pop(payloads.sendcloud_order_id(row.order), None)
            continue
        except AuthenticationError as exc:
            integration.mark_disconnected(exc.message)
            failed += _fail_rows([row for row, _ in batch_rows], exc.message)
            break
        except TransientError as exc:
            attempt = chunk.attempts + 1
            if attempt >= settings.SENDCLOUD_MAX_ATTEMPTS:
                error = gave_up(attempt, exc.message)
                failed += _fail_rows([row for row, _ in batch_rows], error)
                break
            chunks.record_error(chunk, exc.message)
            return ChunkOutcome(
                pushed=pushed, failed=failed, retry_in=backoff_seconds(attempt, exc.retry_after), counts_attempt=True
            )
        except SendcloudError as exc:
            failed += _fail_rows([row for row, _ in batch_rows], exc.message)
            break
        finally:
            # ``attempts`` counts the times an order was really sent, so it moves only once it was.
            sent = Ids([row.pk for row, _ in batch_rows])
            OrderShipment.objects.filter(pk__any_of=sent).update(attempts=F("attempts") + 1)
        pushed += _mark_pushed(batch_rows, accepted)
        integration.mark_connected(only_if_changed=True)
        break
    return ChunkOutcome(pushed=pushed, failed=failed)


def shipping_options_of(integration: SendcloudIntegration, rows: list[OrderShipment]) -> dict[str, ShippingOption]:
    """The catalogue entries of the options these orders ship with, by code: one query for the chunk."""
    codes = {option_code(row.order, integration) for row in rows} - {""}
    if not codes:
        return {}
    return {option.code: option for option in ShippingOption.objects.filter(integration=integration, code__in=codes)}


def wants_label_only(row: OrderShipment) -> bool:
    return row.state == ShipmentState.QUEUED and row.create_label and row.pushed_at is not None and not row.failed_phase


def _fail_rows(rows: list[OrderShipment], error: str) -> int:
    return fail_shipments(
        shipment_ids=[row.pk for row in rows], phase=Phase.PUSH, error=error, source=[ShipmentState.PUSHING]
    )


def _mark_pushed(batch_rows: list[tuple[OrderShipment, dict[str, object]]], accepted: list[UpsertedOrder]) -> int:
    by_order_id = {item.order_id: item.sendcloud_id for item in accepted}
    now = timezone.now()
    rows = [row for row, _ in batch_rows]
    moved = OrderShipment.objects.filter(pk__any_of=Ids([row.pk for row in rows])).move(
        source=[ShipmentState.PUSHING], target=ShipmentState.PUSHED, pushed_at=now, last_error="", failed_phase=""
    )
    for row in rows:
        row.sendcloud_order_id = by_order_id.get(payloads.sendcloud_order_id(row.order), "")
    store_sendcloud_order_ids([row for row in rows if row.sendcloud_order_id])
    return moved


def store_sendcloud_order_ids(rows: list[OrderShipment]) -> None:
    """Store each row's ``sendcloud_order_id`` in one statement.

    On PostgreSQL one ``UPDATE … FROM unnest(…)`` with two array parameters: the ORM's ``bulk_update``
    builds a ``CASE WHEN`` of a hundred branches, value by value, which was a quarter of a chunk's
    worker CPU (docs/benchmarks.md). Elsewhere (SQLite in development) ``bulk_update``.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        OrderShipment.objects.bulk_update(rows, ["sendcloud_order_id"])
        return
    table = OrderShipment._meta.db_table
    sql = (
        f"UPDATE {table} AS s SET sendcloud_order_id = v.sid "  # noqa: S608 - the table name comes from the model
        "FROM unnest(%s::bigint[], %s::text[]) AS v(id, sid) WHERE s.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[row.pk for row in rows], [row.sendcloud_order_id for row in rows]])
