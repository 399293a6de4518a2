"""Output shapes of the Sendcloud API (the push summary of push-api.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from sendcloud_integration.services import PushResult


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
