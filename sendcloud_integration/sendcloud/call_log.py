"""Collects the client's per-call records during a chunk and stores them in one go.

The client (HTTP only) knows nothing of batches or orders; this collector adds them, so that staff
can see, per order, every call made for it and what Sendcloud answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection

from sendcloud_integration.lookups import bigint_array
from sendcloud_integration.models import SendcloudApiCall
from sendcloud_integration.sendcloud.types import CallRecord


@dataclass
class CallLog:
    shop_id: int
    batch_id: uuid.UUID | None = None
    chunk_number: int | None = None
    order_ids: Sequence[int] = ()
    _pending: list[tuple[CallRecord, tuple[int, ...]]] = field(default_factory=list)

    def for_orders(self, order_ids: Sequence[int]) -> None:
        """The orders the next calls are about."""
        self.order_ids = tuple(order_ids)

    def __call__(self, record: CallRecord) -> None:
        self._pending.append((record, tuple(self.order_ids)))

    def flush(self) -> None:
        if not self._pending:
            return
        calls = SendcloudApiCall.objects.bulk_create(
            SendcloudApiCall(
                shop_id=self.shop_id,
                batch_id=self.batch_id,
                chunk_number=self.chunk_number,
                method=record.method,
                path=record.path[:300],
                status_code=record.status_code,
                duration_ms=record.duration_ms,
                error=record.error[:2000],
            )
            for record, _ in self._pending
        )
        _link_orders(
            [
                (call.pk, order_id)
                for call, (_, order_ids) in zip(calls, self._pending, strict=True)
                for order_id in order_ids
            ]
        )
        self._pending.clear()


def _link_orders(pairs: list[tuple[int, int]]) -> None:
    """Store which orders each call was about: a hundred rows per chunk call.

    On PostgreSQL one ``INSERT … SELECT FROM unnest(…)`` with two array parameters; ``bulk_create`` built a
    model instance and its SQL values per row, a few percent of a chunk's worker CPU. Elsewhere (SQLite in
    development) ``bulk_create``.
    """
    if not pairs:
        return
    through = SendcloudApiCall.orders.through
    if connection.vendor != "postgresql":
        through.objects.bulk_create(through(sendcloudapicall_id=call, order_id=order) for call, order in pairs)
        return
    meta = through._meta
    call_column = meta.get_field("sendcloudapicall").column
    order_column = meta.get_field("order").column
    sql = (
        f"INSERT INTO {meta.db_table} ({call_column}, {order_column}) "  # noqa: S608 - names from the model
        "SELECT * FROM unnest(%s::bigint[], %s::bigint[])"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [bigint_array(call for call, _ in pairs), bigint_array(order for _, order in pairs)])
