"""The Sendcloud API v3 endpoints the service uses, one method per endpoint and per HTTP request.

Each public method makes exactly one HTTP request (through :class:`~sendcloud_integration.sendcloud.transport.
Transport`), so a caller can take exactly one slot of the shared request budget before calling it: ``POST``
methods draw on the "unsafe" budget, ``GET`` methods on the "safe" one. Arguments are checked against the
limits of the official spec before anything is sent. HTTP only: no Django models, no Celery; the factory
that builds a client for an integration is ``sendcloud_integration.sendcloud.factory``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import requests

from sendcloud_integration.limits import (
    LABEL_DPIS,
    LABEL_MEDIA_TYPES,
    MAX_IDS_PER_SHIPMENT_FILTER,
    MAX_ORDERS_PER_LABEL_REQUEST,
    MAX_ORDERS_PER_UPSERT,
    MAX_PARCELS_PER_DOCUMENT_REQUEST,
    MAX_PARCELS_PER_SHIPMENT,
    MAX_SHIPMENTS_PAGE_SIZE,
    PAPER_SIZES,
)
from sendcloud_integration.sendcloud.errors import describe, field_path, looks_transient
from sendcloud_integration.sendcloud.transport import Malformed, Paged, Transport, cursor_of, data_of, path_segment
from sendcloud_integration.sendcloud.types import (
    ApiError,
    CallRecord,
    CancelAnswer,
    IntegrationWebhook,
    LabelAccepted,
    LabelRequestResult,
    ServicePointInfo,
    ShipmentInfo,
    ShipmentPage,
    ShippingOptionInfo,
    UpsertedOrder,
    parse_api_errors,
    parse_service_point,
    parse_shipment,
    parse_shipping_option,
    text_of,
)

#: ``source.pointer`` of a per-order error in a label request: ``/data/attributes/orders/<index>/<field>``.
LABEL_POINTER: Final = re.compile(r"^/?data/attributes/orders/\[?(\d+)\]?(?:/(.*))?$")


class SendcloudV3Client:
    """The v3 endpoints for one integration's credentials. Cheap to create; the session is shared per process."""

    def __init__(
        self,
        *,
        base_url: str,
        public_key: str,
        secret_key: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self.transport = Transport(
            base_url=base_url,
            public_key=public_key,
            secret_key=secret_key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            session=session,
            on_call=on_call,
        )
        self._call = self.transport.call

    def __repr__(self) -> str:
        return f"<SendcloudV3Client {self.transport.base_url}>"

    # -- orders ------------------------------------------------------------------------------------------------

    def upsert_orders(self, orders: list[dict[str, Any]]) -> list[UpsertedOrder]:
        """``POST /v3/orders``: create or update up to 100 orders (upsert on ``order_id`` + integration id).

        All-or-nothing: a 400 naming orders raises :class:`OrdersRejected` so the caller can fail those and
        resend the rest. Sending the same orders again is safe (it is an upsert), so a timeout here only costs
        a repeat.
        """
        if not 1 <= len(orders) <= MAX_ORDERS_PER_UPSERT:
            raise ValueError(f"upsert_orders takes 1 to {MAX_ORDERS_PER_UPSERT} orders, got {len(orders)}.")

        def parse(body: Any) -> list[UpsertedOrder]:
            return [
                UpsertedOrder(
                    sendcloud_id=text_of(item.get("id")),
                    order_id=str(item["order_id"]),
                    order_number=text_of(item.get("order_number")),
                )
                for item in data_of(body, list)
            ]

        return self._call("POST", "/v3/orders", parse, body=orders, orders_batch_size=len(orders))

    # -- labels ------------------------------------------------------------------------------------------------

    def create_labels(
        self,
        *,
        integration_id: int,
        orders: list[str],
        sender_address_id: int | None = None,
        ship_with: dict[str, Any] | None = None,
        orders_just_pushed: bool = False,
        parcels: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> LabelRequestResult:
        """``POST /v3/orders/create-labels-async`` for 1 to 20 of our ``order_id`` values.

        This buys labels. Sendcloud has no idempotency key here, so the caller must record that it asked
        *before* calling, and on a :class:`TransientError` with ``outcome_uncertain`` look up the orders'
        shipments (:meth:`find_shipments`) instead of asking again. ``orders_just_pushed`` turns a 404 for the
        whole request into a transient error (the orders may simply not be saved yet). ``parcels`` maps an
        ``order_id`` to its multicollo parcels (``CreateLabelParcel`` objects, 1 to 50): one shipment with
        one label per parcel, in the same request as the order's other labels would have been.
        """
        if not 1 <= len(orders) <= MAX_ORDERS_PER_LABEL_REQUEST:
            raise ValueError(f"create_labels takes 1 to {MAX_ORDERS_PER_LABEL_REQUEST} orders, got {len(orders)}.")
        if len(set(orders)) != len(orders):
            raise ValueError("create_labels got the same order twice.")  # the spec demands unique items
        split = parcels or {}
        for order_id, order_parcels in split.items():
            if not 1 <= len(order_parcels) <= MAX_PARCELS_PER_SHIPMENT:
                raise ValueError(f"order {order_id} has {len(order_parcels)} parcels; 1 to {MAX_PARCELS_PER_SHIPMENT}.")
        body: dict[str, Any] = {
            "integration_id": integration_id,
            "orders": [
                {"order_id": order_id, **({"parcels": split[order_id]} if split.get(order_id) else {})}
                for order_id in orders
            ],
        }
        if sender_address_id is not None:
            body["sender_address_id"] = sender_address_id
        if ship_with is not None:
            body["ship_with"] = ship_with

        def parse(payload: Any) -> LabelRequestResult:
            if not isinstance(payload, dict):
                raise Malformed("expected an object")
            return self._label_result(orders, payload)

        return self._call(
            "POST", "/v3/orders/create-labels-async", parse, body=body, not_found_is_transient=orders_just_pushed
        )

    def _label_result(self, requested: list[str], payload: dict[str, Any]) -> LabelRequestResult:
        """Match the 202's successes (by ``order_id``) and errors (by pointer index) to the requested orders."""
        accepted: list[LabelAccepted] = []
        accepted_ids: set[str] = set()
        data = payload.get("data") or []
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict) or item.get("order_id") is None:
                continue
            parcel_ids = item.get("parcels_ids")
            if not isinstance(parcel_ids, list) or not parcel_ids:  # ``parcel_id`` is the deprecated single form
                parcel_ids = [item["parcel_id"]] if item.get("parcel_id") is not None else []
            label = LabelAccepted(
                order_id=str(item["order_id"]),
                order_number=text_of(item.get("order_number")),
                shipment_id=text_of(item.get("shipment_id")),
                parcel_ids=[str(p) for p in parcel_ids],
            )
            accepted.append(label)
            accepted_ids.add(label.order_id)

        rejected: dict[str, str] = {}
        retryable: set[str] = set()
        general: list[ApiError] = []
        for error in parse_api_errors(payload):
            match = LABEL_POINTER.match(error.pointer)
            if not match or int(match.group(1)) >= len(requested):
                general.append(error)
                continue
            order_id = requested[int(match.group(1))]
            if order_id in accepted_ids:
                continue
            text = self.transport.scrub(describe(error, field_path(match.group(2) or "")))
            rejected[order_id] = f"{rejected[order_id]}; {text}" if order_id in rejected else text
            if looks_transient(error):
                retryable.add(order_id)
        if general:
            # Errors that name no order (e.g. an unknown sender address) concern every order not accepted.
            text = self.transport.scrub("; ".join(e.detail for e in general))
            for order_id in requested:
                if order_id not in accepted_ids and order_id not in rejected:
                    rejected[order_id] = text
                    if all(looks_transient(e) for e in general):
                        retryable.add(order_id)
        unaccounted = [o for o in requested if o not in accepted_ids and o not in rejected]
        return LabelRequestResult(
            accepted=accepted, rejected=rejected, retryable=frozenset(retryable), unaccounted=unaccounted
        )

    # -- shipments ---------------------------------------------------------------------------------------------

    def get_shipment(self, shipment_id: str) -> ShipmentInfo:
        """``GET /v3/shipments/{id}``: poll until :attr:`ShipmentInfo.is_ready` or a ``failed_message``."""
        return self._call(
            "GET", f"/v3/shipments/{path_segment(shipment_id)}", lambda body: parse_shipment(data_of(body, dict))
        )

    def find_shipments(
        self, *, order_number: str | None = None, external_reference_id: str | None = None
    ) -> list[ShipmentInfo]:
        """``GET /v3/shipments`` filtered: do shipments already exist? Asked before re-requesting a label.

        One page of up to 100 — an order has a handful of shipments at most — so the call costs one GET.
        """
        params = {"page_size": "100"}
        if order_number:
            params["order_number"] = order_number
        if external_reference_id:
            params["external_reference_id"] = external_reference_id
        if len(params) == 1:
            raise ValueError("find_shipments needs order_number or external_reference_id.")

        def parse(body: Any) -> list[ShipmentInfo]:
            return [parse_shipment(item) for item in data_of(body, list) if isinstance(item, dict)]

        return self._call("GET", "/v3/shipments", parse, params=params)

    def list_shipments(
        self,
        *,
        shipment_ids: Sequence[str] = (),
        parcel_ids: Sequence[str] = (),
        order_number: str | None = None,
        integration_id: int | None = None,
        page_size: int = MAX_SHIPMENTS_PAGE_SIZE,
        cursor: str | None = None,
    ) -> ShipmentPage:
        """One page of ``GET /v3/shipments``: the statuses of many shipments for the price of one GET.

        ``shipment_ids`` and ``parcel_ids`` become the spec's comma-separated ``shipment_uuids`` and ``ids``
        filters (at most 100 each), so polling a whole chunk's labels costs one request instead of one per
        order. Pagination is by cursor: pass the page's ``next_cursor`` back, with the same filters, for the
        next page. Without any filter this lists the whole account, which is refused here — the callers
        poll and look up, they never mean to scan.
        """
        if not 1 <= page_size <= MAX_SHIPMENTS_PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {MAX_SHIPMENTS_PAGE_SIZE}, got {page_size}.")
        params: dict[str, str | Sequence[str]] = {"page_size": str(page_size)}
        for name, ids in (("shipment_uuids", shipment_ids), ("ids", parcel_ids)):
            if isinstance(ids, str):
                raise TypeError(f"{name} takes a sequence of ids, not one string.")
            if len(ids) > MAX_IDS_PER_SHIPMENT_FILTER:
                raise ValueError(f"{name} takes at most {MAX_IDS_PER_SHIPMENT_FILTER} ids, got {len(ids)}.")
            if any(not str(i) or "," in str(i) for i in ids):
                raise ValueError(f"{name} got an empty id or one containing a comma.")
            if ids:
                params[name] = ",".join(str(i) for i in ids)
        if order_number:
            params["order_number"] = order_number
        if integration_id is not None:
            params["integration_id"] = str(integration_id)
        if len(params) == 1:
            raise ValueError("list_shipments needs at least one filter.")
        if cursor:
            params["cursor"] = cursor

        def parse(answer: Paged) -> ShipmentPage:
            shipments = [parse_shipment(item) for item in data_of(answer.body, list) if isinstance(item, dict)]
            return ShipmentPage(shipments=shipments, next_cursor=cursor_of(answer.next_url))

        return self._call("GET", "/v3/shipments", parse, params=params, paged=True)

    def cancel_shipment(self, shipment_id: str) -> CancelAnswer:
        """``POST /v3/shipments/{id}/cancel``: 200 cancelled, 202 queued (confirmed later by the parcel's status).

        A refusal (409: already cancelled, delivered, past the carrier's window) raises :class:`Conflict`,
        whose ``errors`` carry Sendcloud's own words; an unknown shipment raises :class:`NotFound`.
        Cancelling twice is harmless on Sendcloud's side (the second is refused), so a timeout may be retried.
        """

        def parse(body: Any) -> CancelAnswer:
            data = data_of(body, dict)
            return CancelAnswer(status=text_of(data.get("status")).lower(), message=text_of(data.get("message")))

        return self._call("POST", f"/v3/shipments/{path_segment(shipment_id)}/cancel", parse)

    def return_portal_url(self, shipment_id: str) -> str:
        """``GET /v3/shipments/{id}/return-portal-url``; :class:`NotFound` when no return portal is configured."""

        def parse(body: Any) -> str:
            url = text_of(data_of(body, dict).get("url"))
            if not url:
                raise Malformed("no url")
            return url

        return self._call("GET", f"/v3/shipments/{path_segment(shipment_id)}/return-portal-url", parse)

    def download_label(
        self, parcel_id: str, *, label_format: str = "pdf", paper_size: str | None = None, dpi: int | None = None
    ) -> bytes:
        """``GET /v3/parcels/{id}/documents/label`` in ``label_format`` (pdf, zpl or png, sent as ``Accept``).

        ``paper_size`` and ``dpi`` are sent only when given (Sendcloud then uses the label's own size and the
        format's default resolution). Anything that is not a document of the format asked is retried later.
        """
        media_type = _label_media_type(label_format)
        params: dict[str, str] = {}
        if paper_size is not None:
            params["paper_size"] = _paper_size(paper_size)
        if dpi is not None:
            if dpi not in LABEL_DPIS[label_format]:
                raise ValueError(
                    f"dpi for {label_format} must be one of {sorted(LABEL_DPIS[label_format])}, got {dpi!r}."
                )
            if label_format != "zpl":  # ZPL's resolution is the carrier's: the spec says dpi does not apply
                params["dpi"] = str(dpi)

        def parse(content: bytes) -> bytes:
            return content

        return self._call(
            "GET",
            f"/v3/parcels/{path_segment(parcel_id)}/documents/label",
            parse,
            params=params or None,
            document=media_type,
        )

    def download_labels(self, parcel_ids: Sequence[str], *, paper_size: str = "A6", label_format: str = "pdf") -> bytes:
        """``GET /v3/parcel-documents/label?parcels=…``: the labels of 1 to 20 parcels as one PDF.

        One GET instead of one per parcel. ``parcels`` is an integer array in the spec, sent the OpenAPI
        default way (the parameter repeated). ``paper_size`` A6 (a label's own size) asks for one label a
        page. The spec does not promise the pages' order or count, so the caller must check them before
        it hands a page to an order (see ``labels``); anything that is not a PDF is retried later, as for
        :meth:`download_label`. ``label_format`` pdf or zpl is sent as ``Accept`` (the bulk answer is declared
        in both); the bulk route has no ``dpi``, and one PNG cannot hold several labels, so PNG is fetched per
        parcel with :meth:`download_label`.
        """
        if label_format == "png":
            raise ValueError("PNG labels are fetched one parcel at a time (download_label).")
        media_type = _label_media_type(label_format)
        if isinstance(parcel_ids, str):
            raise TypeError("download_labels takes a sequence of parcel ids, not one string.")
        if not 1 <= len(parcel_ids) <= MAX_PARCELS_PER_DOCUMENT_REQUEST:
            raise ValueError(
                f"download_labels takes 1 to {MAX_PARCELS_PER_DOCUMENT_REQUEST} parcels, got {len(parcel_ids)}."
            )
        ids = [str(p) for p in parcel_ids]
        if not all(i.isdigit() for i in ids):
            raise ValueError("download_labels takes integer parcel ids (the spec types them as integers).")
        paper_size = _paper_size(paper_size)

        def parse(content: bytes) -> bytes:
            return content

        return self._call(
            "GET",
            "/v3/parcel-documents/label",
            parse,
            params={"parcels": ids, "paper_size": paper_size},
            document=media_type,
        )

    def download_customs_declaration(self, parcel_ids: Sequence[str]) -> bytes:
        """``GET /v3/parcel-documents/customs-declaration?parcels=…``: one shipment's customs papers as one PDF.

        Asked per order (its parcels, 1 to 20): a declaration may run to several pages, so a document for
        several orders could not be split between them safely. The paper size is left to Sendcloud (A4
        for customs documents, per the spec).
        """
        if isinstance(parcel_ids, str):
            raise TypeError("download_customs_declaration takes a sequence of parcel ids, not one string.")
        ids = [str(p) for p in parcel_ids]
        if not 1 <= len(ids) <= MAX_PARCELS_PER_DOCUMENT_REQUEST or not all(i.isdigit() for i in ids):
            raise ValueError(f"download_customs_declaration takes 1 to {MAX_PARCELS_PER_DOCUMENT_REQUEST} integer ids.")

        def parse(content: bytes) -> bytes:
            return content

        return self._call("GET", "/v3/parcel-documents/customs-declaration", parse, params={"parcels": ids}, pdf=True)

    # -- service points ----------------------------------------------------------------------------------------

    def service_points(self, params: Mapping[str, str | Sequence[str]]) -> list[ServicePointInfo]:
        """``GET /v3/service-points``: the points near a reference (coordinates or an address) in a country.

        ``params`` are the spec's query parameters, already checked by the caller (``country_code`` and a
        carrier scope are required by Sendcloud). Not paginated by design: ``limit`` caps the answer.
        """
        if not params.get("country_code"):
            raise ValueError("service_points needs a country_code.")
        if not params.get("carrier_code") and not params.get("use_integration_carriers"):
            raise ValueError(
                "service_points needs carrier_code or use_integration_carriers (the spec's carrier scope)."
            )

        def parse(body: Any) -> list[ServicePointInfo]:
            data = data_of(body, dict)
            results = data.get("results")
            if not isinstance(results, list):
                raise Malformed("data.results is not an array")
            points = [parse_service_point(item) for item in results if isinstance(item, dict)]
            return [point for point in points if point is not None]

        return self._call("GET", "/v3/service-points", parse, params=dict(params))

    def check_service_point(self, service_point_id: str) -> bool:
        """``POST /v3/service-points/{id}/check-availability``: can the point take a parcel now?

        A POST: it takes a slot of the unsafe budget. A point Sendcloud does not know raises ``NotFound``.
        """
        if not service_point_id.isdigit() or int(service_point_id) < 1:
            raise ValueError("check_service_point takes Sendcloud's numeric service point id.")

        def parse(body: Any) -> bool:
            data = data_of(body, dict)
            available = data.get("is_available")
            if not isinstance(available, bool):
                raise Malformed("data.is_available is not a boolean")
            return available

        return self._call("POST", f"/v3/service-points/{path_segment(service_point_id)}/check-availability", parse)

    # -- shipping options --------------------------------------------------------------------------------------

    def shipping_options(self, *, from_country: str, to_country: str) -> list[ShippingOptionInfo]:
        """``POST /v3/shipping-options``: the options the account may ship with from one country to another.

        A POST that only reads: it draws on the *unsafe* budget all the same (Sendcloud counts methods).
        Quotes are not asked for (``calculate_quotes: false``): the catalogue needs codes, carriers and
        weight ranges, not prices. ``data`` may be null (no basic details given); that reads as no options.
        """
        body = {
            "from_address": {"country_code": from_country},
            "to_address": {"country_code": to_country},
            "calculate_quotes": False,
        }

        def parse(payload: Any) -> list[ShippingOptionInfo]:
            if not isinstance(payload, dict) or "data" not in payload:
                raise Malformed("expected an object with data")
            data = payload.get("data") or []
            if not isinstance(data, list):
                raise Malformed("data is not an array")
            options = [parse_shipping_option(item) for item in data if isinstance(item, dict)]
            return [option for option in options if option is not None]

        return self._call("POST", "/v3/shipping-options", parse, body=body)

    # -- account -----------------------------------------------------------------------------------------------

    def list_integrations(self) -> list[dict[str, Any]]:
        """``GET /v3/integrations``: the cheapest authenticated call, used to verify a connection."""

        def parse(body: Any) -> list[dict[str, Any]]:
            return [item for item in data_of(body, list) if isinstance(item, dict)]

        return self._call("GET", "/v3/integrations", parse)

    def get_integration_webhook(self, integration_id: int) -> IntegrationWebhook:
        """``GET /v3/integrations/{id}``: whether Sendcloud sends this integration's webhooks, and where."""

        def parse(body: Any) -> IntegrationWebhook:
            data = data_of(body, dict)
            return IntegrationWebhook(active=bool(data.get("webhook_active")), url=text_of(data.get("webhook_url")))

        return self._call("GET", f"/v3/integrations/{path_segment(integration_id)}", parse)

    def set_integration_webhook(self, integration_id: int, *, active: bool, url: str) -> None:
        """``PATCH /v3/integrations/{id}`` with ``webhook_active`` and ``webhook_url`` (204 No Content).

        The spec requires a URL when the webhook is turned on; the URL is sent when turning it off too, so
        Sendcloud keeps the address it had.
        """
        if active and not url:
            raise ValueError("a webhook URL is required to turn the webhook on")
        body: dict[str, Any] = {"webhook_active": active}
        if url:
            body["webhook_url"] = url

        def parse(_body: Any) -> None:
            return None

        self._call("PATCH", f"/v3/integrations/{path_segment(integration_id)}", parse, body=body, no_content=True)


def _label_media_type(label_format: str) -> str:
    try:
        return LABEL_MEDIA_TYPES[label_format]
    except KeyError:
        raise ValueError(f"label_format must be one of {sorted(LABEL_MEDIA_TYPES)}, got {label_format!r}.") from None


def _paper_size(paper_size: str) -> str:
    if paper_size not in PAPER_SIZES:
        raise ValueError(f"paper_size must be one of {sorted(PAPER_SIZES)}, got {paper_size!r}.")
    return paper_size
