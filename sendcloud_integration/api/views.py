"""The Sendcloud shipments API. Each view validates, calls one service, and shapes the answer."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from sendcloud_integration.api import fields
from sendcloud_integration.api.serializers import (
    ErrorSerializer,
    PushResponseSerializer,
    ValidationErrorSerializer,
    push_response,
)
from sendcloud_integration.exceptions import IntegrationUnavailable, NoOrdersFound
from sendcloud_integration.services import Actor, push_orders
from webshop.models import ApiToken, Scope
from wemasy.api.exceptions import BadRequest
from wemasy.api.views import ApiView

ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed body, or no usable Sendcloud integration."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, malformed, unknown or revoked token."),
    403: OpenApiResponse(ErrorSerializer, description="Token lacks the scope, or the shop is disabled."),
    422: OpenApiResponse(ValidationErrorSerializer, description="Validation failed."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limit exceeded; see Retry-After."),
    500: OpenApiResponse(ErrorSerializer, description="Unexpected error; the message names a request id."),
}


class PushShipmentsApi(ApiView):
    """``POST …/orders/sendcloud/shipments/push``: queue orders for Sendcloud, answer at once."""

    required_scope = Scope.SHIPMENTS_PUSH

    class InputSerializer(serializers.Serializer):
        create_label = fields.LaravelBooleanField()
        order_ids = fields.OrderIdListField(max_length=settings.PUSH_MAX_ORDER_IDS)

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            # The setting is read per request so that tests and deployments can change it.
            order_ids = cast(fields.OrderIdListField, self.fields["order_ids"])
            order_ids.max_length = settings.PUSH_MAX_ORDER_IDS
            order_ids.validators = []

    @extend_schema(
        operation_id="push_sendcloud_shipments",
        request=InputSerializer,
        responses={200: PushResponseSerializer, **ERROR_RESPONSES, 404: OpenApiResponse(ErrorSerializer)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=self.json_object(request))
        serializer.is_valid(raise_exception=True)
        token = request.auth
        assert isinstance(token, ApiToken)
        try:
            result = push_orders(
                shop=token.shop,
                order_ids=serializer.validated_data["order_ids"],
                create_label=serializer.validated_data["create_label"],
                actor=Actor.api_token(token),
            )
        except IntegrationUnavailable as exc:
            raise BadRequest(exc.message) from exc
        except NoOrdersFound as exc:
            raise exceptions.NotFound(exc.message) from exc
        status_url = (
            request.build_absolute_uri(reverse("sendcloud_api:batch-detail", args=[result.batch_id]))
            if result.batch_id
            else None
        )
        return Response(push_response(result, status_url=status_url))


class BatchDetailApi(ApiView):
    """Placeholder route so the push answer can link to it; filled in by the batch-status issue."""

    required_scope = Scope.SHIPMENTS_PUSH

    @extend_schema(exclude=True)
    def get(self, request: Request, batch_id: str) -> Response:
        raise exceptions.NotFound("No such batch.")
