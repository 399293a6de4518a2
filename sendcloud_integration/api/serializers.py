"""Shapes of the Sendcloud API: the push summary of docs/api.md, a batch's progress and its orders.

The serializers document the shapes (drf-spectacular reads them); the answers themselves are built
by the plain ``*_response`` functions below, as for the push summary: a page of up to 1,000 orders
then skips DRF's per-field machinery, and each shape stays in one readable place. The query-string input of
the batch endpoints is validated by ``QueryIntegerField`` with the original API's (Laravel) messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from sendcloud_integration.models import BatchStatus, OrderShipment, SendcloudIntegration, ShipmentState, StartedBy
from sendcloud_integration.push.services import PushResult
from sendcloud_integration.selectors.batches import BatchProgress
from sendcloud_integration.sendcloud.shipping_data import customs, service_point
from sendcloud_integration.tracking import statuses
from webshop.models import Order


class QueuedOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order_number = serializers.CharField()
    chunk = serializers.IntegerField(min_value=1)


class PushSummarySerializer(serializers.Serializer):
    total_orders = serializers.IntegerField()
    new_orders = serializers.IntegerField()
    retry_orders = serializers.IntegerField()
    skipped_orders = serializers.IntegerField()
    queued_orders = serializers.IntegerField()


class PushDetailsSerializer(serializers.Serializer):
    new_orders = serializers.ListField(child=serializers.CharField())
    retry_orders = serializers.ListField(child=serializers.CharField())
    skipped_orders = serializers.ListField(child=serializers.CharField())
    queued_orders = QueuedOrderSerializer(many=True)


class BatchLinkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status_url = serializers.URLField()


class PushResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    summary = PushSummarySerializer()
    details = PushDetailsSerializer()
    total_chunks = serializers.IntegerField()
    labels_will_be_created = serializers.ChoiceField(choices=["yes", "no"])
    batch = BatchLinkSerializer(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = serializers.BooleanField(default=True)
    message = serializers.CharField()


# ``errors`` would shadow ``Serializer.errors``, so this documentation-only shape is built inline.
ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "message": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)


def push_response(result: PushResult, *, status_url: str | None) -> dict[str, Any]:
    return {
        "error": False,
        "message": result.message,
        "summary": {
            "total_orders": result.requested,
            "new_orders": len(result.new),
            "retry_orders": len(result.retry),
            "skipped_orders": len(result.skipped),
            "queued_orders": len(result.queued),
        },
        "details": {
            "new_orders": result.new,
            "retry_orders": result.retry,
            "skipped_orders": result.skipped,
            "queued_orders": [{"id": q.id, "order_number": q.order_number, "chunk": q.chunk} for q in result.queued],
        },
        "total_chunks": result.total_chunks,
        "labels_will_be_created": "yes" if result.labels_will_be_created else "no",
        "batch": {"id": str(result.batch_id), "status_url": status_url} if result.batch_id else None,
    }


# --- Batch progress: input ---------------------------------------------------------------------------

_QUERY_INTEGER = re.compile(r"^-?[0-9]{1,19}$")


class QueryIntegerField(serializers.Field):
    """An integer from the query string, strict like Laravel's ``integer`` rule: ``"2.0"`` is not one.

    Messages use ``:attribute``, filled in with the parameter's name by the exception handler.
    """

    default_error_messages = {
        "invalid": "The :attribute field must be an integer.",
        "min_value": "The :attribute field must be at least {min_value}.",
        "max_value": "The :attribute field must not be greater than {max_value}.",
    }

    def __init__(self, *, min_value: int, max_value: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value = min_value
        self.max_value = max_value

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not _QUERY_INTEGER.match(data):
            self.fail("invalid")
        value = int(data)
        if value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return value

    def to_representation(self, value: int) -> int:
        return value


# --- Batch progress: output --------------------------------------------------------------------------


# Inline because a declared field named ``label`` would clash with ``Field.label`` for type checkers.
StartedBySerializer = inline_serializer(
    name="BatchStartedBy",
    fields={"kind": serializers.ChoiceField(choices=StartedBy.choices), "label": serializers.CharField()},
)


class ChunkProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(min_value=0)


StateCountsSerializer = inline_serializer(
    name="ShipmentStateCounts",
    fields={state.value: serializers.IntegerField(min_value=0) for state in ShipmentState},
)


class BatchCountsSerializer(serializers.Serializer):
    requested = serializers.IntegerField(help_text="Distinct ids in the push request.")
    queued = serializers.IntegerField(help_text="Orders queued by the push (new + retry).")
    new = serializers.IntegerField()
    retry = serializers.IntegerField()
    skipped = serializers.IntegerField()
    pushed = serializers.IntegerField(help_text="Orders now in Sendcloud, labelled or not.")
    labelled = serializers.IntegerField()
    failed = serializers.IntegerField()
    in_flight = serializers.IntegerField(help_text="Queued, pushing, label queued or labelling.")
    moved_to_later_batch = serializers.IntegerField(
        help_text="Queued here, since re-queued by a later push; their rows are reported there."
    )
    labels_available = serializers.IntegerField(help_text="Orders whose label PDF can be downloaded.")
    by_state = StateCountsSerializer


class BatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=BatchStatus.choices)
    create_label = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    started_by = StartedBySerializer
    chunks = ChunkProgressSerializer()
    counts = BatchCountsSerializer()
    estimated_completion_at = serializers.DateTimeField(
        allow_null=True,
        help_text=(
            "null once finished. Otherwise now + remaining Sendcloud POSTs / SENDCLOUD_UNSAFE_PER_MINUTE minutes, "
            "where remaining = unfinished chunks + ceil(orders awaiting a label request / 20). Optimistic: the "
            "budget is shared with the shop's other batches."
        ),
    )
    progress_percent = serializers.IntegerField(min_value=0, max_value=100)
    labels_url = serializers.URLField(allow_null=True, help_text="All labels as one PDF; null while there are none.")


class BatchOrderParcelSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Sendcloud's parcel id.")
    number = serializers.IntegerField(min_value=1, help_text="1 for the order's first parcel.")
    tracking_number = serializers.CharField(allow_null=True)
    tracking_url = serializers.URLField(allow_null=True)
    status = serializers.CharField(allow_null=True, help_text="Sendcloud's last word on the parcel (docs/tracking.md).")
    status_kind = serializers.ChoiceField(choices=[k.value for k in statuses.Kind])
    delivered_at = serializers.DateTimeField(allow_null=True)


class BatchOrderServicePointSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="Sendcloud's service point id.")
    carrier_point_id = serializers.CharField(allow_null=True, help_text="The carrier's own id of the point.")
    post_number = serializers.CharField(allow_null=True, help_text="The customer's number at a parcel locker.")


class BatchOrderCustomsSerializer(serializers.Serializer):
    destination = serializers.CharField(help_text="Where the parcel leaves the EU customs and VAT area for.")
    invoice_number = serializers.CharField(allow_null=True)
    shipment_type = serializers.CharField(allow_null=True)
    export_type = serializers.CharField(allow_null=True)


class BatchOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The order id (as sent to the push endpoint).")
    order_number = serializers.CharField()
    state = serializers.ChoiceField(choices=ShipmentState.choices)
    failed_phase = serializers.ChoiceField(choices=["push", "label"], allow_null=True)
    error = serializers.CharField(allow_null=True, help_text="Sendcloud's or our explanation of the failure.")
    attempts = serializers.IntegerField()
    tracking_number = serializers.CharField(allow_null=True)
    tracking_url = serializers.URLField(allow_null=True)
    label_url = serializers.URLField(
        allow_null=True, help_text="This order's label through the labels endpoint (?order=<id>); null without one."
    )
    chunk = serializers.IntegerField(min_value=1, allow_null=True)
    service_point = BatchOrderServicePointSerializer(
        allow_null=True,
        help_text="The pickup point the order is delivered to, as the order has it now; null: its address.",
    )
    customs = BatchOrderCustomsSerializer(
        allow_null=True,
        help_text=(
            "What customs get (the shop's defaults applied); null inside the EU customs area. Current data: worked "
            "out from the order and the shop's defaults as they are now, not a copy of what was sent."
        ),
    )
    documents = serializers.ListField(
        child=serializers.ChoiceField(choices=["label", "customs_declaration"]),
        help_text=(
            "The documents stored for this order: its label, and the carrier's customs declaration for a parcel "
            "leaving the EU customs and VAT area (printed right after its label in the batch PDF)."
        ),
    )
    parcels = BatchOrderParcelSerializer(
        many=True, help_text="Once labelled: every parcel (one label each); an order in three boxes has three."
    )


class BatchOrdersPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Orders matching the filter, over all pages.")
    page = serializers.IntegerField(min_value=1)
    page_size = serializers.IntegerField(min_value=1)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = BatchOrderSerializer(many=True)


class BatchDetailResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    batch = BatchSerializer()
    orders = BatchOrdersPageSerializer()


def _or_none(value: str) -> str | None:
    return value or None


def batch_response(progress: BatchProgress, *, labels_url: str | None) -> dict[str, Any]:
    """The ``batch`` object of the batch-detail answer."""
    batch = progress.batch
    return {
        "id": str(batch.pk),
        "status": batch.status,
        "create_label": batch.create_label,
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
        "started_by": {"kind": batch.started_by_kind, "label": batch.started_by_label},
        "chunks": {"done": progress.chunks_done, "total": batch.total_chunks},
        "counts": {
            "requested": batch.requested_orders,
            "queued": batch.queued_orders,
            "new": batch.new_orders,
            "retry": batch.retry_orders,
            "skipped": batch.skipped_orders,
            "pushed": progress.counts.pushed,
            "labelled": progress.counts.labelled,
            "failed": progress.counts.failed,
            "in_flight": progress.counts.in_flight,
            "moved_to_later_batch": progress.counts.moved_to_later_batch,
            "labels_available": progress.labels_available,
            "by_state": dict(progress.counts.by_state),
        },
        "estimated_completion_at": progress.estimated_completion_at,
        "progress_percent": progress.counts.percent,
        "labels_url": labels_url if progress.labels_available else None,
    }


def order_documents(shipment: OrderShipment) -> list[str]:
    """Which documents the order has: ``label``, ``customs_declaration`` (the print order)."""
    return [
        name
        for name, stored in (("label", shipment.label_file), ("customs_declaration", shipment.customs_declaration))
        if stored
    ]


def order_service_point(order: Order) -> dict[str, str | None] | None:
    point = service_point(order)
    if point is None:
        return None
    return {
        "id": point.sendcloud_id or None,
        "carrier_point_id": point.carrier_id or None,
        "post_number": point.post_number or None,
    }


def order_customs(order: Order, integration: SendcloudIntegration | None) -> dict[str, str | None] | None:
    declared = customs(order, integration)
    if declared is None:
        return None
    return {
        "destination": declared.destination,
        "invoice_number": declared.invoice_number or None,
        "shipment_type": declared.shipment_type or None,
        "export_type": declared.export_type or None,
    }


def batch_order_response(
    shipment: OrderShipment, *, label_url_base: str, integration: SendcloudIntegration | None = None
) -> dict[str, Any]:
    """One order of the batch; ``label_url_base`` is the labels URL, to which ``?order=<id>`` is added."""
    return {
        "id": shipment.order_id,
        "order_number": shipment.order.order_number,
        "state": shipment.state,
        # A re-queued order keeps its last error in the database (history); the API shows it only
        # while the order is failed, so a queued order never looks failed.
        "failed_phase": _or_none(shipment.failed_phase) if shipment.state == ShipmentState.FAILED else None,
        "error": _or_none(shipment.last_error) if shipment.state == ShipmentState.FAILED else None,
        "attempts": shipment.attempts,
        "tracking_number": _or_none(shipment.tracking_number),
        "tracking_url": _or_none(shipment.tracking_url),
        "label_url": f"{label_url_base}?order={shipment.order_id}" if shipment.label_file else None,
        "chunk": shipment.chunk_number,
        "service_point": order_service_point(shipment.order),
        "customs": order_customs(shipment.order, integration),
        "documents": order_documents(shipment),
        "parcels": [
            {
                "id": parcel.sendcloud_parcel_id,
                "number": parcel.position,
                "tracking_number": _or_none(parcel.tracking_number),
                "tracking_url": _or_none(parcel.tracking_url),
                "status": _or_none(parcel.status_message or parcel.status_code),
                "status_kind": statuses.kind_of(parcel.status_id, parcel.status_code).value,
                "delivered_at": parcel.delivered_at.isoformat() if parcel.delivered_at else None,
            }
            for parcel in shipment.parcels.all()
        ],
    }


def orders_page_response(
    shipments: Sequence[OrderShipment],
    *,
    count: int,
    page: int,
    page_size: int,
    next_url: str | None,
    previous_url: str | None,
    label_url_base: str,
    integration: SendcloudIntegration | None = None,
) -> dict[str, Any]:
    """The ``orders`` object of the batch-detail answer: one page of the batch's orders (``integration``:
    the shop's, for its customs defaults)."""
    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "next": next_url,
        "previous": previous_url,
        "results": [
            batch_order_response(shipment, label_url_base=label_url_base, integration=integration)
            for shipment in shipments
        ],
    }
