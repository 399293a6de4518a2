"""After the label: cancelling labels, and one order's shipment with its parcels' statuses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from sendcloud_integration.api import fields
from sendcloud_integration.api.serializers import ErrorSerializer
from sendcloud_integration.api.views import ERROR_RESPONSES, READ_ERROR_RESPONSES
from sendcloud_integration.models import ShipmentParcel, ShipmentState
from sendcloud_integration.tracking.cancel import MAX_CANCEL_ORDER_IDS, CancelOutcome, CancelSummary, cancel_labels
from sendcloud_integration.tracking.shipment import OrderTracking, order_tracking
from webshop.models import ApiToken, Scope
from wemasy.api.views import ApiView

CANCEL_STATES = frozenset({ShipmentState.CANCEL_REQUESTED, ShipmentState.CANCELLED})


def _outcomes(items: list[CancelOutcome], key: str) -> list[dict[str, Any]]:
    return [{"order_id": o.order_id, "order_number": o.order_number, key: o.message} for o in items]


def cancel_response(summary: CancelSummary) -> dict[str, Any]:
    return {
        "error": False,
        "message": summary.message,
        "summary": {
            "total_orders": summary.requested,
            "cancelled": len(summary.cancelled),
            "cancellation_requested": len(summary.cancellation_requested),
            "refused": len(summary.refused),
        },
        "details": {
            "cancelled": _outcomes(summary.cancelled, "message"),
            "cancellation_requested": _outcomes(summary.cancellation_requested, "message"),
            "refused": _outcomes(summary.refused, "reason"),
        },
    }


class CancelResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    summary = serializers.DictField(child=serializers.IntegerField())
    details = serializers.DictField(child=serializers.ListField(child=serializers.DictField()))


class CancelShipmentsApi(ApiView):
    """``POST …/orders/sendcloud/shipments/cancel``: cancel the labels of up to 20 orders, answer with a summary."""

    required_scope = Scope.SHIPMENTS_PUSH

    class CancelInputSerializer(serializers.Serializer):
        order_ids = fields.OrderIdListField(max_length=MAX_CANCEL_ORDER_IDS)

    @extend_schema(
        operation_id="cancel_sendcloud_shipments",
        request=CancelInputSerializer,
        responses={200: CancelResponseSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        serializer = self.CancelInputSerializer(data=self.json_object(request))
        serializer.is_valid(raise_exception=True)
        token = request.auth
        assert isinstance(token, ApiToken)
        summary = cancel_labels(shop=token.shop, order_ids=serializer.validated_data["order_ids"])
        return Response(cancel_response(summary))


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _parcel(tracking: OrderTracking, parcel: ShipmentParcel) -> dict[str, Any]:
    return {
        "position": parcel.position,
        "parcel_id": parcel.sendcloud_parcel_id,
        "tracking_number": parcel.tracking_number,
        "tracking_url": parcel.tracking_url,
        "status": {
            "id": parcel.status_id,
            "code": parcel.status_code or None,
            "message": parcel.status_message or None,
            "kind": tracking.kind(parcel),
            "changed_at": _time(parcel.status_changed_at),
        },
        "delivered_at": _time(parcel.delivered_at),
        "exception_at": _time(parcel.exception_at),
    }


def tracking_response(tracking: OrderTracking) -> dict[str, Any]:
    shipment = tracking.shipment
    # The last cancellation's words and time while they describe the current label: being or been cancelled,
    # or a refused cancellation (not an old cancelled label's, after a re-push made a new one).
    cancelling = shipment is not None and (
        shipment.state in CANCEL_STATES or (bool(shipment.cancel_message) and shipment.cancelled_at is None)
    )
    return {
        "order_id": tracking.order.pk,
        "order_number": tracking.order.order_number,
        "state": shipment.state if shipment else None,
        "sendcloud_shipment_id": (shipment.sendcloud_shipment_id or None) if shipment else None,
        "tracking_number": (shipment.tracking_number or None) if shipment else None,
        "tracking_url": (shipment.tracking_url or None) if shipment else None,
        "cancel_message": (shipment.cancel_message or None) if shipment and cancelling else None,
        "cancelled_at": _time(shipment.cancelled_at) if shipment and cancelling else None,
        "return_portal_url": tracking.return_portal_url or None,
        "parcels": [_parcel(tracking, parcel) for parcel in tracking.parcels],
        "history": [
            {
                "action": event.action,
                "parcel_id": event.sendcloud_parcel_id or None,
                "status_id": event.status_id,
                "message": event.status_message,
                "occurred_at": _time(event.occurred_at),
                "applied": event.applied,
                "source": event.source,
            }
            for event in tracking.history
        ],
    }


class OrderShipmentApi(ApiView):
    """``GET …/orders/<order_id>/sendcloud/shipment``: the order's shipment, parcels, history, return link."""

    required_scope = Scope.SHIPMENTS_PUSH

    @extend_schema(
        operation_id="order_sendcloud_shipment",
        parameters=[
            OpenApiParameter("order_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The order's id.")
        ],
        responses={
            200: OpenApiResponse(description="The order's shipment."),
            **READ_ERROR_RESPONSES,
            404: OpenApiResponse(ErrorSerializer, description="No such order in this shop."),
        },
    )
    def get(self, request: Request, order_id: str) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)
        if not order_id.isascii() or not order_id.isdigit() or len(order_id) > 19:
            raise exceptions.NotFound("No such order.")
        tracking = order_tracking(shop=token.shop, order_id=int(order_id))
        if tracking is None:
            raise exceptions.NotFound("No such order.")
        return Response(tracking_response(tracking))
