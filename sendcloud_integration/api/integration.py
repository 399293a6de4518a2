"""The wemasy endpoints about the shop's Sendcloud integration: verify credentials, status, shipping methods,
service points.

Verify stores credentials (scope ``integrations:manage``); status and shipping methods read
(``integrations:read``, which ``integrations:manage`` includes). The secret key is never in an answer:
status shows it masked. Each view validates, calls one service, and shapes the answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from sendcloud_integration.api import fields
from sendcloud_integration.api.orders import SERVICE_UNAVAILABLE
from sendcloud_integration.api.serializers import ErrorSerializer, ValidationErrorSerializer
from sendcloud_integration.api.views import ERROR_RESPONSES
from sendcloud_integration.integration.services import verify_credentials
from sendcloud_integration.models import SendcloudIntegration, ShippingOption
from sendcloud_integration.selectors.integration import integration_of
from sendcloud_integration.shipping.catalogue import Catalogue, shipping_methods
from sendcloud_integration.shipping.service_points import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    ServicePointQuery,
    ServicePointSearch,
    find_service_points,
)
from sendcloud_integration.shipping.service_points import describe as describe_service_point
from webshop.models import ApiToken, Scope
from wemasy.api.views import ApiView

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

STRING_MESSAGES: dict[str, str | _StrPromise] = {
    "required": "The :attribute field is required.",
    "null": "The :attribute field is required.",
    "blank": "The :attribute field is required.",
    "invalid": "The :attribute field must be a string.",
    "max_length": "The :attribute field must not be greater than {max_length} characters.",
}


def _token(request: Request) -> ApiToken:
    token = request.auth
    assert isinstance(token, ApiToken)
    return token


# --- verify ---------------------------------------------------------------------------------------------------


class VerifiedIntegrationSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The integration's record here.")
    is_active = serializers.IntegerField(min_value=0, max_value=1, help_text="1 when pushes may use it.")
    is_connected = serializers.IntegerField(min_value=0, max_value=1, help_text="1 when Sendcloud accepts the keys.")
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    sendcloud_integration_id = serializers.IntegerField(help_text="The Sendcloud integration orders go to.")


class VerifyResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    integration = VerifiedIntegrationSerializer()


def verify_response(integration: SendcloudIntegration) -> dict[str, Any]:
    return {
        "error": False,
        "message": "Sendcloud accepted the credentials; they are stored and the integration is connected.",
        "integration": {
            "id": integration.pk,
            "is_active": int(integration.is_active),
            "is_connected": int(integration.is_connected),
            "created_at": integration.created_at,
            "updated_at": integration.updated_at,
            "sendcloud_integration_id": integration.integration_id,
        },
    }


class VerifyCredentialsApi(ApiView):
    """``POST …/integrations/sendcloud/verify``: try keys with Sendcloud; store them when they work."""

    required_scope = Scope.INTEGRATIONS_MANAGE

    class VerifyCredentialsRequestSerializer(serializers.Serializer):
        public_key = fields.StrictCharField(max_length=200, error_messages=STRING_MESSAGES)
        secret_key = fields.StrictCharField(
            max_length=200, error_messages=STRING_MESSAGES, style={"input_type": "password"}
        )
        integration_id = fields.RequiredIdField(
            required=False, help_text="The Sendcloud integration to use; needed when the account has several."
        )

    @extend_schema(
        operation_id="verify_sendcloud_credentials",
        summary="Verify Sendcloud API keys and store them",
        request=VerifyCredentialsRequestSerializer,
        responses={
            200: VerifyResponseSerializer,
            **ERROR_RESPONSES,
            400: OpenApiResponse(
                ErrorSerializer, description="Malformed body, or Sendcloud refused the keys (its reason)."
            ),
            503: SERVICE_UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.VerifyCredentialsRequestSerializer(data=self.json_object(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration = verify_credentials(
            shop=_token(request).shop,
            public_key=data["public_key"],
            secret_key=data["secret_key"],
            integration_id=data.get("integration_id"),
        )
        return Response(verify_response(integration))


# --- status ---------------------------------------------------------------------------------------------------


class CredentialsSerializer(serializers.Serializer):
    public_key = serializers.CharField()
    secret_key = serializers.CharField(help_text="Always masked; the secret is never sent back.")


class IntegrationStatusSerializer(serializers.Serializer):
    credentials = CredentialsSerializer(allow_null=True)
    id = serializers.CharField()
    is_active = serializers.CharField(help_text='"1" when pushes may use it, else "0".')
    is_connected = serializers.CharField(help_text='"1" when Sendcloud accepts the keys, else "0".')
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    sendcloud_integration_id = serializers.CharField()
    connection_error = serializers.CharField(allow_null=True, help_text="Why Sendcloud last refused the keys.")
    connection_checked_at = serializers.DateTimeField(allow_null=True)


class StatusResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    integration = IntegrationStatusSerializer(allow_null=True, help_text="null when none is configured.")


def status_response(integration: SendcloudIntegration | None) -> dict[str, Any]:
    if integration is None:
        return {"error": False, "integration": None}
    has_keys = bool(integration.public_key or integration.secret_key)
    return {
        "error": False,
        "integration": {
            "credentials": {"public_key": integration.public_key, "secret_key": integration.masked_secret}
            if has_keys
            else None,
            "id": str(integration.pk),
            "is_active": "1" if integration.is_active else "0",
            "is_connected": "1" if integration.is_connected else "0",
            "created_at": integration.created_at,
            "updated_at": integration.updated_at,
            "sendcloud_integration_id": str(integration.integration_id),
            "connection_error": integration.connection_error or None,
            "connection_checked_at": integration.connection_checked_at,
        },
    }


class IntegrationStatusApi(ApiView):
    """``GET …/integrations/sendcloud/status``: the shop's integration, secret masked."""

    required_scope = Scope.INTEGRATIONS_READ

    @extend_schema(
        operation_id="get_sendcloud_status",
        summary="The shop's Sendcloud integration",
        responses={
            200: StatusResponseSerializer,
            **{code: ERROR_RESPONSES[code] for code in (401, 403, 429, 500)},
        },
    )
    def get(self, request: Request) -> Response:
        return Response(status_response(integration_of(shop=_token(request).shop)))


# --- shipping methods -----------------------------------------------------------------------------------------


class ShippingMethodSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The shipping_method_id update-order takes. Stable.")
    code = serializers.CharField(help_text="Sendcloud's shipping option code.")
    name = serializers.CharField()
    carrier = serializers.DictField(child=serializers.CharField(), help_text="{code, name}")
    min_weight = serializers.CharField(allow_null=True, help_text="kg per parcel; null: no lower limit.")
    max_weight = serializers.CharField(allow_null=True, help_text="kg per parcel; null: no upper limit.")
    countries = serializers.ListField(child=serializers.CharField(), help_text="Destinations it ships to.")
    multicollo = serializers.BooleanField(help_text="Ships one order in several parcels.")
    service_point = serializers.BooleanField(help_text="Delivers to a service point: the order needs one chosen.")
    is_default = serializers.BooleanField(help_text="The shop's default shipping method.")


class ShippingMethodsResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    synced_at = serializers.DateTimeField(allow_null=True, help_text="When the catalogue was read from Sendcloud.")
    stale = serializers.BooleanField(help_text="True when a refresh was due but Sendcloud could not be asked.")
    shipping_methods = ShippingMethodSerializer(many=True)


def _weight(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def shipping_method_response(option: ShippingOption, *, default_code: str) -> dict[str, Any]:
    return {
        "id": option.pk,
        "code": option.code,
        "name": option.name or option.code,
        "carrier": {"code": option.carrier_code, "name": option.carrier_name},
        "min_weight": _weight(option.min_weight_kg),
        "max_weight": _weight(option.max_weight_kg),
        "countries": list(option.countries),
        "multicollo": option.multicollo,
        "service_point": option.service_point,
        "is_default": option.code == default_code,
    }


def shipping_methods_response(catalogue: Catalogue) -> dict[str, Any]:
    count = len(catalogue.options)
    message = f"{count} shipping method{'' if count == 1 else 's'}."
    if catalogue.stale_because:
        message += f" They may be outdated: {catalogue.stale_because}"
    default = catalogue.integration.shipping_option_code
    return {
        "error": False,
        "message": message,
        "synced_at": catalogue.synced_at,
        "stale": bool(catalogue.stale_because),
        "shipping_methods": [shipping_method_response(option, default_code=default) for option in catalogue.options],
    }


class ShippingMethodsApi(ApiView):
    """``POST …/integrations/sendcloud/shipping-methods``: the shop's catalogue, refreshed when old."""

    required_scope = Scope.INTEGRATIONS_READ

    class ShippingMethodsRequestSerializer(serializers.Serializer):
        country = serializers.RegexField(
            r"^[A-Za-z]{2}$",
            required=False,
            help_text="Only methods that ship to this country (ISO 3166-1 alpha-2).",
            error_messages={
                "invalid": "The :attribute field must be 2 letters.",
                "null": "The :attribute field must be 2 letters.",
            },
        )
        weight = fields.WeightField(required=False, help_text="Only methods that take a parcel of this weight (kg).")
        refresh = fields.LaravelBooleanField(required=False, help_text="Read Sendcloud now, however fresh.")

    @extend_schema(
        operation_id="list_sendcloud_shipping_methods",
        summary="The shop's Sendcloud shipping methods",
        description=(
            "The catalogue of the account's shipping options, each with the stable id update-order takes. "
            "It is read again from Sendcloud when older than SENDCLOUD_SHIPPING_METHODS_MAX_AGE_SECONDS; when "
            "Sendcloud cannot be asked then, the older catalogue is answered with stale=true. The body is "
            "optional."
        ),
        request=ShippingMethodsRequestSerializer,
        responses={
            200: ShippingMethodsResponseSerializer,
            **ERROR_RESPONSES,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Malformed body, no usable integration, or Sendcloud refused and there is no catalogue.",
            ),
            422: OpenApiResponse(ValidationErrorSerializer, description="Invalid filter."),
            503: SERVICE_UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        body = {} if request.META.get("CONTENT_LENGTH") in (None, "", "0") else self.json_object(request)
        serializer = self.ShippingMethodsRequestSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        catalogue = shipping_methods(
            shop=_token(request).shop,
            country=data["country"].upper() if data.get("country") else None,
            weight_kg=data.get("weight"),
            refresh=bool(data.get("refresh")),
        )
        return Response(shipping_methods_response(catalogue))


# --- service points -------------------------------------------------------------------------------------------


class ServicePointAddressSerializer(serializers.Serializer):
    street = serializers.CharField()
    house_number = serializers.CharField()
    postal_code = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField()


class ServicePointSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Sendcloud's id of the point: the order import's service_point.id.")
    name = serializers.CharField()
    carrier = serializers.DictField(child=serializers.CharField(), help_text="{code, name}")
    carrier_service_point_id = serializers.CharField(help_text="The carrier's own id of the point.")
    type = serializers.CharField(help_text="servicepoint, locker, post_office or carrier_depot (may be empty).")
    address = ServicePointAddressSerializer()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    distance = serializers.IntegerField(allow_null=True, help_text="Metres from the reference point.")
    is_open_tomorrow = serializers.BooleanField()
    opening_times = serializers.DictField(
        help_text="Per weekday (monday…sunday) a list of {start, end} (HH:MM), or null when closed."
    )


class ServicePointsResponseSerializer(serializers.Serializer):
    error = serializers.BooleanField()
    message = serializers.CharField()
    cached = serializers.BooleanField(help_text="True when answered from the short cache, without asking Sendcloud.")
    service_points = ServicePointSerializer(many=True)


def service_points_response(search: ServicePointSearch) -> dict[str, Any]:
    count = len(search.points)
    return {
        "error": False,
        "message": f"{count} service point{'' if count == 1 else 's'}.",
        "cached": search.cached,
        "service_points": [describe_service_point(point) for point in search.points],
    }


class ServicePointsApi(ApiView):
    """``GET …/integrations/sendcloud/service-points``: Sendcloud's service points near a place (cached briefly)."""

    required_scope = Scope.INTEGRATIONS_READ

    class ServicePointsQuerySerializer(serializers.Serializer):
        country = serializers.RegexField(
            r"^[A-Za-z]{2}$",
            help_text="The country to search in (ISO 3166-1 alpha-2).",
            error_messages={
                "invalid": "The :attribute field must be 2 letters.",
                "required": "The :attribute field is required.",
            },
        )
        postal_code = serializers.CharField(required=False, max_length=20, help_text="Search around this postal code.")
        city = serializers.CharField(required=False, max_length=100, help_text="With postal_code: its city.")
        latitude = serializers.FloatField(required=False, min_value=-90, max_value=90, help_text="With longitude.")
        longitude = serializers.FloatField(required=False, min_value=-180, max_value=180, help_text="With latitude.")
        carrier = serializers.RegexField(
            r"^[a-z0-9_]+(,[a-z0-9_]+)*$",
            required=False,
            max_length=200,
            help_text="Carrier codes, comma-separated (e.g. postnl,dhl); absent: the integration's carriers.",
            error_messages={"invalid": "The :attribute field must be carrier codes separated by commas."},
        )
        radius = serializers.IntegerField(
            required=False, min_value=MIN_RADIUS_M, max_value=MAX_RADIUS_M, help_text="Metres around the reference."
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            has_lat, has_lon = "latitude" in attrs, "longitude" in attrs
            if has_lat != has_lon:
                raise serializers.ValidationError(
                    {"longitude" if has_lat else "latitude": "Give latitude and longitude together."}
                )
            if has_lat and attrs.get("postal_code"):
                raise serializers.ValidationError({"postal_code": "Give coordinates or a postal code, not both."})
            if not has_lat and not attrs.get("postal_code", "").strip():
                raise serializers.ValidationError({"postal_code": "Give a postal code, or latitude and longitude."})
            return attrs

    @extend_schema(
        operation_id="list_sendcloud_service_points",
        summary="Sendcloud service points near a place",
        description=(
            "Proxies Sendcloud's GET /v3/service-points for a checkout or staff: the points of the given (or the "
            "integration's) carriers around a postal code or coordinates, nearest first. Each answer is cached per "
            "query for SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS; a search costs at most one GET of the account's read "
            "budget and never a write."
        ),
        parameters=[ServicePointsQuerySerializer],
        responses={
            200: ServicePointsResponseSerializer,
            **{code: ERROR_RESPONSES[code] for code in (401, 403, 429, 500)},
            400: OpenApiResponse(
                ErrorSerializer, description="No usable integration, or Sendcloud refused the search."
            ),
            422: OpenApiResponse(ValidationErrorSerializer, description="Invalid query."),
            503: SERVICE_UNAVAILABLE,
        },
    )
    def get(self, request: Request) -> Response:
        serializer = self.ServicePointsQuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        query = ServicePointQuery(
            country=data["country"].upper(),
            postal_code=data.get("postal_code", "").strip(),
            city=data.get("city", "").strip(),
            latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            carriers=tuple(data["carrier"].split(",")) if data.get("carrier") else (),
            radius_m=data.get("radius"),
            limit=data["limit"],
        )
        return Response(service_points_response(find_service_points(shop=_token(request).shop, query=query)))
