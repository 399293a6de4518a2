"""The Sendcloud shipments API. Each view validates, calls one service, and shapes the answer."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, BinaryIO

from django.conf import settings
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from sendcloud_integration.api import fields
from sendcloud_integration.api.documents import DocumentPendingSerializer, pending_body
from sendcloud_integration.api.serializers import (
    BatchDetailResponseSerializer,
    ErrorSerializer,
    PushResponseSerializer,
    QueryIntegerField,
    ValidationErrorSerializer,
    batch_response,
    orders_page_response,
    push_response,
)
from sendcloud_integration.models import LabelFormat, PaperSize, PrintSort, PushBatch, ShipmentState
from sendcloud_integration.printing import batch_labels, documents, responses
from sendcloud_integration.push.services import Actor, push_orders
from sendcloud_integration.selectors import batches as selectors
from sendcloud_integration.selectors.integration import integration_of
from webshop.models import ApiToken, Scope, Shop
from wemasy.api.views import ApiView

ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed body, or no usable Sendcloud integration."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, malformed, unknown or revoked token."),
    403: OpenApiResponse(ErrorSerializer, description="Token lacks the scope, or the shop is disabled."),
    413: OpenApiResponse(ErrorSerializer, description="The body is larger than the upload limit (2.5 MiB)."),
    422: OpenApiResponse(ValidationErrorSerializer, description="Validation failed."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limit exceeded; see Retry-After."),
    500: OpenApiResponse(ErrorSerializer, description="Unexpected error; the message names a request id."),
    503: OpenApiResponse(
        ErrorSerializer, description="The rate limit cannot be checked (its counters are unreachable); see Retry-After."
    ),
}


class PushShipmentsApi(ApiView):
    """``POST …/orders/sendcloud/shipments/push``: queue orders for Sendcloud, answer at once."""

    required_scope = Scope.SHIPMENTS_PUSH

    class InputSerializer(serializers.Serializer):
        # Declared in this order on purpose: the first 422 message names the first invalid field.
        create_label = fields.LaravelBooleanField()
        order_ids = fields.OrderIdListField(max_length=settings.PUSH_MAX_ORDER_IDS)

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            fields.apply_order_id_limit(self)

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
        result = push_orders(
            shop=token.shop,
            order_ids=serializer.validated_data["order_ids"],
            create_label=serializer.validated_data["create_label"],
            actor=Actor.api_token(token),
        )
        status_url = (
            request.build_absolute_uri(reverse("sendcloud_api:batch-detail", args=[result.batch_id]))
            if result.batch_id
            else None
        )
        return Response(push_response(result, status_url=status_url))


NO_SUCH_BATCH = "No such batch."
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

BATCH_ID_PARAMETER = OpenApiParameter(
    "batch_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The batch id from the push answer."
)
READ_ERROR_RESPONSES = {
    401: ERROR_RESPONSES[401],
    403: ERROR_RESPONSES[403],
    404: OpenApiResponse(ErrorSerializer, description="No such batch for this shop (or an ill-formed id)."),
    422: OpenApiResponse(ValidationErrorSerializer, description="Invalid query parameter."),
    429: ERROR_RESPONSES[429],
    500: ERROR_RESPONSES[500],
    503: ERROR_RESPONSES[503],
}


def shop_of(request: Request) -> Shop:
    """The token's shop (loaded with the token)."""
    token = request.auth
    assert isinstance(token, ApiToken)
    return token.shop


def shop_batch_or_404(request: Request, batch_id: str) -> PushBatch:
    """The token's shop's batch, or the same 404 for another shop's batch, an unknown or ill-formed id."""
    batch = selectors.batch_for_shop(shop=shop_of(request), batch_id=batch_id)
    if batch is None:
        raise exceptions.NotFound(NO_SUCH_BATCH)
    return batch


def labels_url(request: Request, batch: PushBatch) -> str:
    return request.build_absolute_uri(reverse("sendcloud_api:batch-labels", args=[batch.pk]))


class BatchDetailApi(ApiView):
    """``GET …/shipments/batches/{id}``: a push batch's progress and one page of its orders.

    The route takes any string as the id, so that an ill-formed id gets this endpoint's own 404 body
    instead of the generic "No such API endpoint.". Each order's ``label_url`` points at the labels
    endpoint with ``?order=<id>`` rather than at the media file: labels are served only to the shop's
    tokens, and the storage location stays private.
    """

    required_scope = Scope.SHIPMENTS_PUSH

    class InputSerializer(serializers.Serializer):
        page = QueryIntegerField(min_value=1, max_value=2**31 - 1, required=False, default=1)
        page_size = QueryIntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, default=DEFAULT_PAGE_SIZE)
        state = serializers.ChoiceField(
            choices=ShipmentState.values,
            required=False,
            error_messages={"invalid_choice": "The selected :attribute is invalid."},
        )

    @extend_schema(
        operation_id="get_sendcloud_push_batch",
        summary="Progress and per-order results of a push batch",
        description=(
            "Counts per shipment state, chunks done, an estimated completion time derived from the Sendcloud "
            "request budget (null once the batch is finished), and one page of the batch's orders by order "
            "number. A batch of another shop, or an unknown id, is a 404."
        ),
        parameters=[
            BATCH_ID_PARAMETER,
            OpenApiParameter("page", OpenApiTypes.INT, description="1-based page of orders (default 1)."),
            OpenApiParameter(
                "page_size",
                OpenApiTypes.INT,
                description=f"Orders per page (default {DEFAULT_PAGE_SIZE}, max {MAX_PAGE_SIZE}; more is a 422).",
            ),
            OpenApiParameter(
                "state", OpenApiTypes.STR, enum=ShipmentState.values, description="Only orders in this state."
            ),
        ],
        responses={200: BatchDetailResponseSerializer, **READ_ERROR_RESPONSES},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        batch = shop_batch_or_404(request, batch_id)
        serializer = self.InputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        page: int = serializer.validated_data["page"]
        page_size: int = serializer.validated_data["page_size"]
        state: str | None = serializer.validated_data.get("state")

        detail = selectors.batch_detail(batch=batch, state=state, page=page, page_size=page_size)
        progress, count, shipments = detail.progress, detail.count, detail.shipments
        labels = labels_url(request, batch)
        last_page = max(1, math.ceil(count / page_size))
        return Response(
            {
                "error": False,
                "batch": batch_response(progress, labels_url=labels),
                "orders": orders_page_response(
                    shipments,
                    count=count,
                    page=page,
                    page_size=page_size,
                    next_url=self._page_url(request, page + 1) if page * page_size < count else None,
                    previous_url=self._page_url(request, min(page - 1, last_page)) if page > 1 else None,
                    label_url_base=labels,
                    integration=integration_of(shop=shop_of(request)),  # its customs defaults
                ),
            }
        )

    @staticmethod
    def _page_url(request: Request, page: int) -> str:
        """This URL with another page, keeping ``page_size`` and ``state``; page 1 drops ``page``.

        ``previous`` from a page past the end points at the last page (the one that has orders), which
        is where a client following it expects to land.
        """
        url = request.build_absolute_uri()
        if page <= 1:
            return remove_query_param(url, "page")
        return replace_query_param(url, "page", page)


#: A choice parameter's message, in the API's Laravel style (``:attribute`` is filled in by the handler).
_CHOICE_ERRORS: dict[str, Any] = {"invalid_choice": "The selected :attribute is invalid."}


class ErrorsAsJsonNegotiation(BaseContentNegotiation):
    """Answers of the labels endpoint that go through DRF — its errors — are JSON, whatever ``Accept`` says.

    A PDF client sends ``Accept: application/pdf``, which DRF's default negotiation would refuse with a
    406 because the API has only a JSON renderer. The PDF itself is a ``FileResponse`` and needs none.
    """

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        json_renderer = next(r for r in renderers if r.media_type == "application/json")
        return json_renderer, json_renderer.media_type


class BatchLabelsApi(ApiView):
    """``GET …/shipments/batches/{id}/labels``: the batch's labels as one stored document, streamed.

    The document (PDF, ZPL or a zip of PNGs, in the shop's printer profile unless ``format``, ``paper_size``,
    ``dpi`` or ``sort`` say otherwise) is built once by a worker (``printing``); this endpoint never builds
    it. Ready: ``200`` streamed (``ETag``, ``Range``, ``Content-Disposition``; see ``printing.responses``).
    Being built, or the batch still making labels: ``202`` with ``Retry-After`` and the progress. A build
    that failed (a label missing from storage, a format Sendcloud would not serve) is a 409 naming the order.

    ``?order=<order id>`` gives one order's label: the stored PDF as it is, no merge.
    """

    required_scope = Scope.SHIPMENTS_PUSH
    content_negotiation_class = ErrorsAsJsonNegotiation

    class InputSerializer(serializers.Serializer):
        order = QueryIntegerField(min_value=1, max_value=fields.MAX_ORDER_ID, required=False)
        format = serializers.ChoiceField(choices=LabelFormat.values, required=False, error_messages=_CHOICE_ERRORS)
        paper_size = serializers.ChoiceField(choices=PaperSize.values, required=False, error_messages=_CHOICE_ERRORS)
        dpi = QueryIntegerField(min_value=1, max_value=600, required=False)
        sort = serializers.ChoiceField(choices=PrintSort.values, required=False, error_messages=_CHOICE_ERRORS)

    @extend_schema(
        operation_id="get_sendcloud_push_batch_labels",
        summary="All labels of a push batch as one stored document (PDF, ZPL, or a zip of PNGs)",
        description=(
            "The batch's labels as one document, one label per parcel, built once by a worker and streamed. "
            "Defaults come from the shop's printer profile (PDF on A6 by order number without one). "
            "202 with Retry-After while the document is being built or the batch is still making labels. "
            "Supports If-None-Match (304) and Range (206, 416). With ?order=<order id>, only that order's PDF."
        ),
        parameters=[
            BATCH_ID_PARAMETER,
            OpenApiParameter("order", OpenApiTypes.INT, description="Only this order's label (its PDF)."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=LabelFormat.values, description="pdf, zpl or png."),
            OpenApiParameter(
                "paper_size", OpenApiTypes.STR, enum=PaperSize.values, description="A4, A5 or A6 (not for ZPL)."
            ),
            OpenApiParameter(
                "dpi", OpenApiTypes.INT, description="PDF: 72. PNG: 150 or 300. ZPL: 203 (the carrier's)."
            ),
            OpenApiParameter("sort", OpenApiTypes.STR, enum=PrintSort.values, description="The order of the labels."),
        ],
        responses={
            **{
                (200, media_type): OpenApiResponse(
                    OpenApiTypes.BINARY,
                    description=(
                        "The document (application/pdf, application/zpl, or application/zip of PNGs) as an "
                        "attachment named labels-<shop>-<date>-<batch>-<variant>-by-<sort>.<ext>, with ETag and "
                        "Accept-Ranges."
                    ),
                )
                for media_type in ("application/pdf", "application/zpl", "application/zip")
            },
            202: OpenApiResponse(
                DocumentPendingSerializer,
                description="Being built (or labels still being made): Retry-After says when.",
            ),
            206: OpenApiResponse(OpenApiTypes.BINARY, description="The requested byte range, with Content-Range."),
            304: OpenApiResponse(description="If-None-Match names the current ETag."),
            416: OpenApiResponse(description="The Range starts past the end (Content-Range: bytes */<size>)."),
            **READ_ERROR_RESPONSES,
            404: OpenApiResponse(
                ErrorSerializer, description="No such batch, no labels yet, or no such order (label) in this batch."
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The build failed (a label missing from storage...): the message names the order.",
            ),
        },
    )
    def get(self, request: Request, batch_id: str) -> HttpResponseBase:
        batch = shop_batch_or_404(request, batch_id)
        serializer = self.InputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order_id: int | None = data.get("order")
        if order_id is not None:
            handle = batch_labels.order_label_pdf(batch=batch, order_id=order_id)
            return self._pdf_response(handle, filename=f"label-{batch.pk}-{order_id}.pdf")
        overrides = {
            "label_format": data.get("format"),
            "paper_size": data.get("paper_size"),
            "dpi": data.get("dpi"),
            "sort": data.get("sort"),
        }
        state = documents.document_for(batch=batch, **overrides)
        if state.availability is documents.Availability.READY and state.document is not None:
            served = responses.document_response(request, state.document, state.spec)
            if served is not None:
                return served
            state = documents.document_for(batch=batch, **overrides)
        return Response(pending_body(state), status=202, headers={"Retry-After": str(state.retry_after)})

    @staticmethod
    def _pdf_response(handle: BinaryIO, *, filename: str) -> FileResponse:  # one order's label
        # The filename holds only a uuid and digits, so Django writes it as plain filename="…".
        return FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=filename)
