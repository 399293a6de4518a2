"""The wemasy siblings of push about orders: create labels, and update one order's shipping data.

``create-label`` is the push with labels (``push.services.push_orders``) answered in the flat body of the
original API; ``update-order`` changes an order's shipping method, weight and parcels
(``shipping.orders.update_order_shipping``). Each view validates, calls one service, and shapes the answer.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from sendcloud_integration.api import fields
from sendcloud_integration.api.serializers import ErrorSerializer, ValidationErrorSerializer
from sendcloud_integration.api.views import ERROR_RESPONSES
from sendcloud_integration.limits import MAX_PARCELS_PER_SHIPMENT
from sendcloud_integration.models import ShipmentState
from sendcloud_integration.push.services import Actor, PushResult, push_orders
from sendcloud_integration.selectors.batches import estimated_minutes
from sendcloud_integration.shipping.orders import OrderShippingUpdate, update_order_shipping
from webshop.models import ApiToken, Scope
from wemasy.api.views import ApiView

SERVICE_UNAVAILABLE = OpenApiResponse(
    ErrorSerializer,
    description="Sendcloud could not be asked now (no answer, or the account's request budget is spent). "
    "Nothing was changed.",
)

# --- create-label ---------------------------------------------------------------------------------------------


class CreateLabelsResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    batch_name = serializers.CharField(allow_null=True, help_text="The batch's name; null when nothing is queued.")
    total_orders = serializers.IntegerField(help_text="Distinct ids in the request, found or not.")
    new_orders = serializers.IntegerField()
    retried_orders = serializers.IntegerField(help_text="Orders whose last attempt failed (the push's retry).")
    skipped_orders = serializers.IntegerField()
    total_chunks = serializers.IntegerField()
    estimated_completion_minutes = serializers.FloatField(
        help_text="(chunks + ceil(queued / 20)) / SENDCLOUD_UNSAFE_PER_MINUTE minutes: the Sendcloud write budget."
    )
    status_check_url = serializers.URLField(allow_null=True, help_text="The batch status URL; null when none.")


def create_labels_response(result: PushResult, *, shop_slug: str, status_url: str | None) -> dict[str, Any]:
    return {
        "error": False,
        "message": result.message,
        "batch_name": f"sendcloud-labels-{shop_slug}-{result.batch_id}" if result.batch_id else None,
        "total_orders": result.requested,
        "new_orders": len(result.new),
        "retried_orders": len(result.retry),
        "skipped_orders": len(result.skipped),
        "total_chunks": result.total_chunks,
        "estimated_completion_minutes": estimated_minutes(
            total_chunks=result.total_chunks, orders_awaiting_label_request=len(result.queued)
        ),
        "status_check_url": status_url,
    }


class CreateLabelsApi(ApiView):
    """``POST …/orders/sendcloud/shipments/create-label``: push the orders and create their labels."""

    required_scope = Scope.SHIPMENTS_PUSH

    class CreateLabelsRequestSerializer(fields.OrderIdsSerializer):
        pass

    @extend_schema(
        operation_id="create_sendcloud_labels",
        summary="Push orders to Sendcloud and create their labels",
        description=(
            "The push with create_label=true, answered in the original API's flat body. Orders are classified "
            "exactly as by push; each order gets one label per parcel, never a second one."
        ),
        request=CreateLabelsRequestSerializer,
        responses={
            200: CreateLabelsResponseSerializer,
            **ERROR_RESPONSES,
            404: OpenApiResponse(ErrorSerializer, description="None of the ids is an order of this shop."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.CreateLabelsRequestSerializer(data=self.json_object(request))
        serializer.is_valid(raise_exception=True)
        token = request.auth
        assert isinstance(token, ApiToken)
        result = push_orders(
            shop=token.shop,
            order_ids=serializer.validated_data["order_ids"],
            create_label=True,
            actor=Actor.api_token(token),
        )
        status_url = (
            request.build_absolute_uri(reverse("sendcloud_api:batch-detail", args=[result.batch_id]))
            if result.batch_id
            else None
        )
        return Response(create_labels_response(result, shop_slug=token.shop.slug, status_url=status_url))


# --- update-order ---------------------------------------------------------------------------------------------


class OrderMetadataSerializer(serializers.Serializer):
    sendcloud_shipping_method_id = serializers.CharField(help_text="The catalogue id of the order's shipping method.")
    sendcloud_shipping_option_code = serializers.CharField(help_text="Its Sendcloud code, e.g. postnl:standard.")
    sendcloud_no_parcels = serializers.IntegerField()
    sendcloud_weight = serializers.CharField(help_text="kg, three decimals.")
    sendcloud_labels_created = serializers.BooleanField()
    sendcloud_shipment_created = serializers.BooleanField(help_text="Whether Sendcloud holds the order.")


class OrderShipmentSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The order's shipment record here.")
    status = serializers.CharField(help_text="Its shipment state (queued, pushing, pushed, … labelled, failed).")
    external_shipment_id = serializers.CharField(allow_null=True, help_text="Sendcloud's shipment id, once made.")
    service_name = serializers.CharField(help_text="The shipping method's name.")
    tracking_number = serializers.CharField(allow_null=True)


class UpdatedFieldsSerializer(serializers.Serializer):
    weight = serializers.CharField()
    quantity = serializers.CharField(help_text="The number of parcels (the request's no_parcels).")
    shipping_method_id = serializers.CharField()


class UpdateOrderResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    order_metadata = OrderMetadataSerializer()
    shipment = OrderShipmentSerializer(allow_null=True, help_text="null before the order's first push.")
    updated_fields = UpdatedFieldsSerializer()
    sendcloud_response = serializers.ListField(
        child=serializers.DictField(),
        help_text="What Sendcloud answered to the upsert of the order ([] when it is not in Sendcloud).",
    )


def update_order_response(update: OrderShippingUpdate) -> dict[str, Any]:
    shipment, option, data = update.shipment, update.option, update.data
    weight = f"{data.weight_kg:.3f}"
    return {
        "error": False,
        "message": update.message,
        "order_metadata": {
            "sendcloud_shipping_method_id": str(option.pk),
            "sendcloud_shipping_option_code": option.code,
            "sendcloud_no_parcels": data.parcel_count,
            "sendcloud_weight": weight,
            "sendcloud_labels_created": shipment is not None and shipment.state == ShipmentState.LABELLED,
            "sendcloud_shipment_created": update.sent_to_sendcloud,
        },
        "shipment": None
        if shipment is None
        else {
            "id": str(shipment.pk),
            "status": shipment.state,
            "external_shipment_id": shipment.sendcloud_shipment_id or None,
            "service_name": option.name or option.code,
            "tracking_number": shipment.tracking_number or None,
        },
        "updated_fields": {
            "weight": weight,
            "quantity": str(data.parcel_count),
            "shipping_method_id": str(option.pk),
        },
        "sendcloud_response": update.sendcloud_response,
    }


class UpdateOrderApi(ApiView):
    """``POST …/orders/update-order``: an order's shipping method, weight and parcels (and in Sendcloud)."""

    required_scope = Scope.SHIPMENTS_PUSH

    class UpdateOrderRequestSerializer(serializers.Serializer):
        order_id = fields.RequiredIdField()
        shipping_method_id = fields.RequiredIdField(
            required=False, help_text="A shipping method's id from …/integrations/sendcloud/shipping-methods."
        )
        shipping_option_code = fields.StrictCharField(
            required=False,
            max_length=200,
            help_text="Or the method's Sendcloud code (postnl:standard) instead of its id.",
            error_messages={
                "invalid": "The :attribute field must be a string.",
                "blank": "The :attribute field must not be empty.",
                "null": "The :attribute field must be a string.",
                "max_length": "The :attribute field must not be greater than {max_length} characters.",
            },
        )
        weight = fields.WeightField()
        no_parcels = fields.CountField(minimum=1, maximum=MAX_PARCELS_PER_SHIPMENT)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs.get("shipping_method_id") is None and not attrs.get("shipping_option_code"):
                raise serializers.ValidationError(
                    {
                        "shipping_method_id": [
                            "The shipping_method_id field is required when shipping_option_code is not present."
                        ]
                    }
                )
            return attrs

    @extend_schema(
        operation_id="update_sendcloud_order",
        summary="Change an order's shipping method, weight and number of parcels",
        description=(
            "Refused (409, nothing changed) while a batch works on the order or once it has a label. When the "
            "order is already in Sendcloud it is updated there too, and sendcloud_response holds the answer."
        ),
        request=UpdateOrderRequestSerializer,
        responses={
            200: UpdateOrderResponseSerializer,
            **ERROR_RESPONSES,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Malformed body, no usable Sendcloud integration, or Sendcloud refused the update.",
            ),
            404: OpenApiResponse(ErrorSerializer, description="No such order in this shop."),
            409: OpenApiResponse(
                ErrorSerializer, description="The order has a label (cancel it first), or a batch works on it."
            ),
            422: OpenApiResponse(
                ValidationErrorSerializer,
                description="Invalid field, unknown shipping method, or one that cannot ship this order.",
            ),
            503: SERVICE_UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.UpdateOrderRequestSerializer(data=self.json_object(request))
        serializer.is_valid(raise_exception=True)
        token = request.auth
        assert isinstance(token, ApiToken)
        data = serializer.validated_data
        update = update_order_shipping(
            shop=token.shop,
            order_id=data["order_id"],
            option_id=data.get("shipping_method_id"),
            option_code=data.get("shipping_option_code"),
            weight_kg=data["weight"],
            parcels=data["no_parcels"],
        )
        return Response(update_order_response(update))
