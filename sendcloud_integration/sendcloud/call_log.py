"""Collects the client's per-call records during a chunk and stores them in one go.

The client (HTTP only) knows nothing of batches or orders; this collector adds them, so that staff
can see, per order, every call made for it and what Sendcloud answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

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
        through = SendcloudApiCall.orders.through
        through.objects.bulk_create(
            through(sendcloudapicall_id=call.pk, order_id=order_id)
            for call, (_, order_ids) in zip(calls, self._pending, strict=True)
            for order_id in order_ids
        )
        self._pending.clear()
