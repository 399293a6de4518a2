"""The only place that speaks HTTP to Sendcloud (API v3). No Django models, no Celery.

Why it looks the way it does:

* **One attempt per call, no hidden retries.** urllib3's automatic retries are switched off. Whether and when
  to try again is the caller's decision, because only the caller knows the shared request budget and whether
  repeating a request could buy a second label. Every failure therefore comes back as a typed
  :class:`SendcloudError` that says whether it is worth retrying (:class:`TransientError`) and whether
  Sendcloud may already have acted on the request (``outcome_uncertain``).
* **Every attempt is reported** through ``on_call`` with a :class:`CallRecord` — successes, HTTP errors and
  timeouts alike — so staff can see what Sendcloud answered for an order. A failing ``on_call`` never
  changes the outcome of the HTTP call (losing a label result because an audit row could not be written
  would lead straight to a second label).
* **Credentials never leave the auth header.** They are not in reprs, messages, logs or call records; any
  text that came back from the wire is scrubbed of them as a last line of defence.
* **Small frozen dataclasses** instead of raw dicts where the callers need only a few fields, so the rest of
  the service does not depend on the exact shape of Sendcloud's JSON.
* **Money stays Decimal until the wire.** The Orders API types prices as JSON *numbers*; :func:`encode_json`
  writes a :class:`~decimal.Decimal` as a number whose text is exactly the decimal's (see its docstring).

The public surface is the :class:`SendcloudBackend` protocol, so a v2 backend for legacy or partner accounts
can be added later without touching the callers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final, Protocol, TypeVar, runtime_checkable
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger("sendcloud_integration.client")

T = TypeVar("T")

#: Request-budget classes, as Sendcloud counts them: GETs ("safe", 1000/min) and everything else
#: ("unsafe", 100/min with bursts of 15/s). Same strings as ``budget.Kind``.
SAFE: Final = "safe"
UNSAFE: Final = "unsafe"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Batch limits of the v3 endpoints (spec: v3/orders, v3/ship-an-order).
MAX_ORDERS_PER_UPSERT: Final = 100
MAX_ORDERS_PER_LABEL_REQUEST: Final = 20
#: ``GET /v3/shipments``: ``page_size`` is 1..100, and the ``shipment_uuids`` and ``ids`` filters take at
#: most 100 ids each (spec: v3/shipments).
MAX_SHIPMENTS_PAGE_SIZE: Final = 100
MAX_IDS_PER_SHIPMENT_FILTER: Final = 100
#: ``GET /v3/parcel-documents/{type}``: ``parcels`` holds 1 to 20 parcel ids (spec: v3/parcel-documents).
MAX_PARCELS_PER_DOCUMENT_REQUEST: Final = 20
#: The ``paper_size`` enum of the parcel-documents endpoints. A6 is a label's own size: one label a page.
PAPER_SIZES: Final = frozenset({"A4", "A5", "A6"})

#: The Orders API answers this 400 when another request is still working on one of the batch's order ids.
#: The whole batch was rolled back, so it is safe — and necessary — to send it again later.
STILL_PROCESSING_MARKER: Final = "still processing a previous request"

_EXCERPT_LENGTH: Final = 300


def budget_class(method: str) -> str:
    """Which shared budget a request with this HTTP method draws from: ``"safe"`` or ``"unsafe"``."""
    return UNSAFE if method.upper() in UNSAFE_METHODS else SAFE


# --------------------------------------------------------------------------------------------------------------
# Call records and errors
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as staff see it in the call log. Never carries credentials."""

    method: str
    path: str  # without host or query, e.g. "/v3/orders"
    status_code: int | None  # None when no answer came (timeout, connection error)
    duration_ms: int
    error: str = ""  # a short excerpt; "" on success


@dataclass(frozen=True)
class ApiError:
    """One entry of a v3 JSON:API ``errors`` array."""

    status: str
    code: str
    detail: str
    pointer: str = ""


class SendcloudError(Exception):
    """Base of every error the client raises. ``message`` is meant for people (staff, logs)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: Iterable[ApiError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors: list[ApiError] = list(errors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"


class TransientError(SendcloudError):
    """Worth trying again later: 5xx, timeouts, dropped connections, malformed answers, processing conflicts.

    ``outcome_uncertain`` is True when Sendcloud may have acted on the request although we did not get a usable
    answer (the request was sent and then the answer timed out, the connection dropped, a 5xx came back, or a
    2xx body could not be read). For a label request that means: look up existing shipments before asking
    again, never just repeat the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        outcome_uncertain: bool = False,
        errors: Iterable[ApiError] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.retry_after = retry_after
        self.outcome_uncertain = outcome_uncertain


class RateLimited(TransientError):
    """429: over the account's request budget. ``retry_after`` is set when Sendcloud sent ``Retry-After``."""


class AuthenticationError(SendcloudError):
    """401/403: the credentials are wrong or revoked. Retrying cannot help; the integration needs attention."""


class ClientError(SendcloudError):
    """Any other 4xx: the request itself is wrong. Retrying the same request cannot help."""


class OrdersRejected(ClientError):
    """400 on ``POST /v3/orders``: the whole batch was refused because of the orders named here.

    ``errors_by_index`` maps a position in the request list to readable messages such as
    ``"shipping_address.city: Field required"``; ``unattributed`` holds the errors that name no order.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 400,
        errors: Iterable[ApiError] = (),
        errors_by_index: Mapping[int, list[str]] | None = None,
        unattributed: Iterable[str] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.errors_by_index: dict[int, list[str]] = dict(errors_by_index or {})
        self.unattributed: list[str] = list(unattributed)


class NotFound(ClientError):
    """404: the thing asked for does not exist (or is not visible yet — see ``not_found_is_transient``)."""


class Conflict(ClientError):
    """409: for shipments this means "it already exists"; ``body`` holds the existing object. Use it."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 409,
        errors: Iterable[ApiError] = (),
        body: Any = None,
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors)
        self.body = body

    def shipment(self) -> ShipmentInfo | None:
        """The existing shipment carried by a shipments 409, when the body holds one."""
        data = self.body.get("data", self.body) if isinstance(self.body, dict) else None
        if isinstance(data, dict) and "parcels" in data:
            return parse_shipment(data)
        return None


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpsertedOrder:
    """One order Sendcloud accepted (201). Saving is asynchronous: it may not be readable for a moment."""

    sendcloud_id: str
    order_id: str
    order_number: str


@dataclass(frozen=True)
class LabelAccepted:
    """An order for which Sendcloud created a shipment; its label is made later (poll the shipment)."""

    order_id: str
    order_number: str
    shipment_id: str
    parcel_ids: list[str]


@dataclass(frozen=True)
class LabelRequestResult:
    """The mixed 202 of ``create-labels-async``, keyed by our ``order_id`` values.

    * ``accepted``: a shipment exists for these orders — never ask for their labels again.
    * ``rejected``: Sendcloud's message per order; no shipment was made.
    * ``retryable``: the subset of ``rejected`` whose error looks temporary (the order is not visible yet
      after a push, a processing conflict, a server error) — worth asking again later.
    * ``unaccounted``: requested orders Sendcloud said nothing about. Treat as uncertain: look up their
      shipments before asking again.
    """

    accepted: list[LabelAccepted]
    rejected: dict[str, str]
    retryable: frozenset[str] = frozenset()
    unaccounted: list[str] = field(default_factory=list)


#: Parcel status codes that come after the label was made are open-ended (in transit, delivered, ...), so
#: readiness is defined by exclusion: every parcel has a status that is neither still pending, nor failed,
#: nor cancelled. Codes seen in the v3 shipments spec: ANNOUNCING, READY_TO_SEND, ANNOUNCEMENT_FAILED,
#: CANCELLED; the others below are the v2-era names of "no label yet" that may still appear.
PENDING_STATUSES: Final = frozenset({"ANNOUNCING", "NO_LABEL", "READY_TO_ANNOUNCE", "BEING_ANNOUNCED"})
FAILED_STATUSES: Final = frozenset({"ANNOUNCEMENT_FAILED"})
CANCELLED_STATUSES: Final = frozenset({"CANCELLED", "CANCELLATION_REQUESTED", "BEING_CANCELLED"})
READY_TO_SEND: Final = "READY_TO_SEND"


@dataclass(frozen=True)
class ParcelInfo:
    """One parcel of a shipment. ``errors`` repeats the shipment's errors: v3 reports them per shipment."""

    parcel_id: str
    status_code: str
    status_message: str
    tracking_number: str
    tracking_url: str
    carrier: str
    label_url: str
    errors: list[str]

    @property
    def is_pending(self) -> bool:
        return not self.status_code or self.status_code in PENDING_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status_code in FAILED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status_code in CANCELLED_STATUSES

    @property
    def is_ready(self) -> bool:
        """READY_TO_SEND or any later status: the label exists."""
        return not (self.is_pending or self.is_failed or self.is_cancelled)


@dataclass(frozen=True)
class ShipmentInfo:
    """What the service needs from ``GET /v3/shipments/{id}``."""

    shipment_id: str
    order_number: str
    external_reference_id: str
    parcels: list[ParcelInfo]
    errors: list[str] = field(default_factory=list)
    carrier: str = ""

    @property
    def is_ready(self) -> bool:
        """Every parcel has its label (READY_TO_SEND or later)."""
        return bool(self.parcels) and all(p.is_ready for p in self.parcels)

    @property
    def is_pending(self) -> bool:
        """Still being announced: ask again later. A shipment without parcels yet counts as pending."""
        if self.failed_message is not None or any(p.is_cancelled for p in self.parcels):
            return False
        return not self.parcels or any(p.is_pending for p in self.parcels)

    @property
    def is_cancelled(self) -> bool:
        return bool(self.parcels) and any(p.is_cancelled for p in self.parcels)

    @property
    def failed_message(self) -> str | None:
        """The carrier's own words when the announcement failed (ANNOUNCEMENT_FAILED), else None."""
        failed = [p for p in self.parcels if p.is_failed]
        if not failed:
            return None
        if self.errors:
            return "; ".join(self.errors)
        return failed[0].status_message or "The carrier refused the shipment (announcement failed)."


@dataclass(frozen=True)
class ShipmentPage:
    """One page of ``GET /v3/shipments``. ``next_cursor`` is set when the ``Link`` header names a next page."""

    shipments: list[ShipmentInfo]
    next_cursor: str | None = None


# --------------------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------------------


@runtime_checkable
class SendcloudBackend(Protocol):
    """What the service needs from Sendcloud. ``SendcloudV3Client`` implements it; a v2 backend could too."""

    def upsert_orders(self, orders: list[dict[str, Any]]) -> list[UpsertedOrder]: ...

    def create_labels(
        self,
        *,
        integration_id: int,
        orders: list[str],
        sender_address_id: int | None = None,
        ship_with: dict[str, Any] | None = None,
        orders_just_pushed: bool = False,
    ) -> LabelRequestResult: ...

    def get_shipment(self, shipment_id: str) -> ShipmentInfo: ...

    def find_shipments(
        self, *, order_number: str | None = None, external_reference_id: str | None = None
    ) -> list[ShipmentInfo]: ...

    def get_order(self, sendcloud_id: str, *, not_found_is_transient: bool = False) -> dict[str, Any]: ...

    def find_orders(self, *, order_id: str, integration_id: int | None = None) -> list[dict[str, Any]]: ...

    def list_shipments(
        self,
        *,
        shipment_ids: Sequence[str] = (),
        parcel_ids: Sequence[str] = (),
        order_number: str | None = None,
        integration_id: int | None = None,
        page_size: int = MAX_SHIPMENTS_PAGE_SIZE,
        cursor: str | None = None,
    ) -> ShipmentPage: ...

    def download_label(self, parcel_id: str) -> bytes: ...

    def download_labels(self, parcel_ids: Sequence[str], *, paper_size: str = "A6") -> bytes: ...

    def list_integrations(self) -> list[dict[str, Any]]: ...


# --------------------------------------------------------------------------------------------------------------
# The pooled session
# --------------------------------------------------------------------------------------------------------------

_session_lock = threading.Lock()
_sessions: dict[int, requests.Session] = {}


def shared_session() -> requests.Session:
    """The process's pooled session, created lazily per process id.

    Per pid because Celery's prefork pool forks after import: a connection pool inherited across a fork would
    share sockets between processes. Automatic retries are off (``Retry(total=0)``): a silently repeated POST
    could create a second label, and the caller owns the retry policy and the request budget.
    """
    pid = os.getpid()
    session = _sessions.get(pid)
    if session is not None:
        return session
    with _session_lock:
        session = _sessions.get(pid)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(
                pool_connections=4,
                pool_maxsize=16,
                max_retries=Retry(total=0, connect=0, read=False, redirect=False, status=0, other=0),
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _sessions[pid] = session
    return session


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _decimal_to_number(value: Decimal) -> float:
    """A Decimal as the float whose JSON text is exactly the decimal's digits.

    Python writes a float with the shortest text that reads back as the same float, and every decimal of at
    most 15 significant digits survives the trip decimal → float → text unchanged (IEEE 754 double, DBL_DIG =
    15). So ``Decimal("19.96")`` goes on the wire as ``19.96``, never ``19.960000000000001``. Anything that
    could not make the trip exactly is refused rather than silently rounded.
    """
    if not value.is_finite():
        raise ValueError(f"Cannot send {value} to Sendcloud as a number.")
    if len(value.as_tuple().digits) > 15:
        raise ValueError(f"{value} has more than 15 significant digits and cannot be sent exactly as a number.")
    return float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _decimal_to_number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_json(payload: Any) -> bytes:
    """The request body as UTF-8 JSON, with Decimals written as exact JSON numbers."""
    return json.dumps(payload, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _excerpt(text: str, limit: int = _EXCERPT_LENGTH) -> str:
    """A short, single-line piece of a response body, fit for a log line; HTML tags are dropped."""
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_errors(body: Any) -> list[ApiError]:
    """The JSON:API ``errors`` of a v3 body (an array or, per the spec's schema, a single object)."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    errors = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if not isinstance(source, dict):
            source = {}
        pointer = source.get("pointer") or source.get("parameter") or source.get("header") or ""
        detail = item.get("detail") or item.get("title") or item.get("code") or "Unknown error"
        errors.append(
            ApiError(
                status=str(item.get("status") or ""),
                code=str(item.get("code") or ""),
                detail=str(detail),
                pointer=str(pointer),
            )
        )
    return errors


def _field_path(segments: str) -> str:
    """``order_details/order_items/0/quantity`` → ``order_details.order_items[0].quantity``."""
    out = ""
    for part in (s for s in segments.split("/") if s):
        index = re.fullmatch(r"\[?(\d+)\]?", part)
        if index:
            out += f"[{index.group(1)}]"
        else:
            out += f".{part}" if out else part
    return out


def _describe(error: ApiError, field_path: str) -> str:
    return f"{field_path}: {error.detail}" if field_path else error.detail


_ORDER_POINTER = re.compile(r"^/?data/attributes/\[?(\d+)\]?(?:/(.*))?$")
_LABEL_POINTER = re.compile(r"^/?data/attributes/orders/\[?(\d+)\]?(?:/(.*))?$")


def _retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _connection_not_established(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request certainly never reached Sendcloud (refused, DNS failure, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Failed to resolve", "ConnectTimeout")
    )


# --------------------------------------------------------------------------------------------------------------
# The v3 client
# --------------------------------------------------------------------------------------------------------------


class _Malformed(Exception):
    """Raised by a response parser: Sendcloud answered 2xx, but not in the shape the spec promises."""


@dataclass(frozen=True)
class _Paged:
    """What a parser of a paginated list receives: the decoded body and the ``Link`` header's next URL."""

    body: Any
    next_url: str | None


def _cursor_of(url: str | None) -> str | None:
    """The ``cursor`` query value of a ``Link`` URL; None without one (nothing more to follow)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("cursor")
    return values[0] if values and values[0] else None


def _data_of(body: Any, kind: type) -> Any:
    """``body["data"]`` of the expected type, or :class:`_Malformed`."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, kind):
        raise _Malformed(f"expected data as {kind.__name__}")
    return data


class SendcloudV3Client:
    """Sendcloud API v3 over HTTP Basic auth. One instance per integration; cheap to create.

    Each public method makes exactly one HTTP request, so a caller can take exactly one slot of the shared
    budget (see :attr:`BUDGET`) before calling it.
    """

    #: Which HTTP methods draw on the "unsafe" budget (everything but GET).
    UNSAFE_METHODS: ClassVar[frozenset[str]] = UNSAFE_METHODS
    #: Budget class per public method.
    BUDGET: ClassVar[dict[str, str]] = {
        "upsert_orders": UNSAFE,
        "create_labels": UNSAFE,
        "get_shipment": SAFE,
        "find_shipments": SAFE,
        "list_shipments": SAFE,
        "get_order": SAFE,
        "find_orders": SAFE,
        "download_label": SAFE,
        "download_labels": SAFE,
        "list_integrations": SAFE,
    }

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
        self.base_url = base_url.rstrip("/")
        self._auth = (public_key, secret_key)
        self._secrets = tuple(s for s in (secret_key, public_key) if s)
        self.timeout = (connect_timeout, read_timeout)
        self._session = session
        self.on_call = on_call

    def __repr__(self) -> str:
        return f"<SendcloudV3Client {self.base_url}>"

    # -- transport ---------------------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        return self._session if self._session is not None else shared_session()

    def _scrub(self, text: str) -> str:
        """Remove the credentials from any text that might end up in a log or an error."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _record(self, record: CallRecord) -> None:
        logger.info(
            "Sendcloud %s %s -> %s in %d ms",
            record.method,
            record.path,
            record.status_code if record.status_code is not None else "no answer",
            record.duration_ms,
        )
        if self.on_call is None:
            return
        try:
            self.on_call(record)
        except Exception:  # the call's outcome matters more than its audit row: never lose a label result
            logger.exception("on_call failed for Sendcloud %s %s", record.method, record.path)

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        body: Any = None,
        pdf: bool = False,
        paged: bool = False,
        not_found_is_transient: bool = False,
        orders_batch_size: int | None = None,
    ) -> T:
        """One HTTP attempt: send it, turn the answer into ``parse(body)`` or a typed error, record it once.

        ``parse`` receives the decoded JSON (or the raw bytes when ``pdf``; a :class:`_Paged` with the body and
        the ``Link`` header's next URL when ``paged``). A list value in ``params`` is sent as the parameter
        repeated, OpenAPI's default for query arrays. A 2xx that cannot be decoded or parsed is transient —
        and uncertain for unsafe methods, because Sendcloud did answer 2xx. The check happens before the call
        is recorded, so the call log shows the malformed answer as an error.
        """
        unsafe = method in UNSAFE_METHODS
        headers = {"Accept": "application/pdf" if pdf else "application/json", "User-Agent": "wemasy-sendcloud/1"}
        data = None
        if body is not None:
            data = encode_json(body)
            headers["Content-Type"] = "application/json"
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                data=data,
                headers=headers,
                auth=self._auth,
                timeout=self.timeout,
                allow_redirects=not unsafe,  # a redirected POST would silently turn into a GET
            )
        except requests.exceptions.ConnectTimeout:
            message = f"Could not connect to Sendcloud for {method} {path} within {self.timeout[0]:g} s."
            self._record(CallRecord(method, path, None, elapsed(), message))
            raise TransientError(message, outcome_uncertain=False) from None
        except requests.exceptions.ReadTimeout:
            message = f"Sendcloud did not answer {method} {path} within {self.timeout[1]:g} s."
            self._record(CallRecord(method, path, None, elapsed(), message))
            raise TransientError(message, outcome_uncertain=unsafe) from None
        except requests.exceptions.ConnectionError as exc:
            sent = not _connection_not_established(exc)
            if sent:
                message = f"The connection to Sendcloud dropped during {method} {path}."
            else:
                message = f"Could not connect to Sendcloud for {method} {path}."
            self._record(CallRecord(method, path, None, elapsed(), message))
            raise TransientError(message, outcome_uncertain=unsafe and sent) from None
        except requests.exceptions.RequestException as exc:
            message = f"Request to Sendcloud failed ({type(exc).__name__}) for {method} {path}."
            self._record(CallRecord(method, path, None, elapsed(), message))
            raise TransientError(message, outcome_uncertain=unsafe) from None

        duration = elapsed()
        try:
            self._raise_for_status(
                method,
                path,
                response,
                not_found_is_transient=not_found_is_transient,
                orders_batch_size=orders_batch_size,
            )
            result = self._parse(method, path, response, parse, pdf=pdf, paged=paged)
        except SendcloudError as exc:
            self._record(CallRecord(method, path, response.status_code, duration, _excerpt(exc.message)))
            raise
        self._record(CallRecord(method, path, response.status_code, duration, ""))
        return result

    def _parse(
        self, method: str, path: str, response: requests.Response, parse: Callable[[Any], T], *, pdf: bool, paged: bool
    ) -> T:
        status = response.status_code
        if pdf:
            if not response.content.startswith(b"%PDF"):
                raise TransientError(
                    f"Sendcloud answered {method} {path} with {status} but not with a PDF.",
                    status_code=status,
                    outcome_uncertain=False,
                )
            return parse(response.content)
        try:
            if paged:
                return parse(_Paged(body=response.json(), next_url=response.links.get("next", {}).get("url")))
            return parse(response.json())
        except (ValueError, KeyError, TypeError, _Malformed):
            raise TransientError(
                self._scrub(
                    f"Sendcloud answered {method} {path} with {status} but the body is not what the API promises: "
                    f"{_excerpt(response.text, 120) or '(empty)'}"
                ),
                status_code=status,
                outcome_uncertain=method in UNSAFE_METHODS,
            ) from None

    def _raise_for_status(
        self,
        method: str,
        path: str,
        response: requests.Response,
        *,
        not_found_is_transient: bool,
        orders_batch_size: int | None,
    ) -> None:
        """Map a non-2xx answer to the error class that tells the caller what to do next."""
        status = response.status_code
        if 200 <= status < 300:
            return
        unsafe = method in UNSAFE_METHODS
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        errors = _parse_errors(body)
        details = "; ".join(e.detail for e in errors) if errors else _excerpt(response.text, 200)
        details = self._scrub(details).rstrip(". ")
        where = f"{method} {path}"

        if status == 429:
            raise RateLimited(
                f"Sendcloud rate limit reached (429) on {where}.",
                status_code=status,
                retry_after=_retry_after(response),
                errors=errors,
            )
        if status in (401, 403):
            raise AuthenticationError(
                f"Sendcloud refused the API credentials ({status}): {details or 'no reason given'}.",
                status_code=status,
                errors=errors,
            )
        if status >= 500:
            # A gateway error or a crash half-way may still have done the work: uncertain for unsafe methods.
            raise TransientError(
                f"Sendcloud server error {status} on {where}: {details or '(empty body)'}.",
                status_code=status,
                retry_after=_retry_after(response),
                outcome_uncertain=unsafe,
                errors=errors,
            )
        if status == 400 and any(STILL_PROCESSING_MARKER in e.detail.lower() for e in errors):
            raise TransientError(
                f"Sendcloud is still processing a previous request for these orders ({where}); try again shortly.",
                status_code=status,
                errors=errors,
            )
        if status == 400 and orders_batch_size is not None:
            raise self._orders_rejected(errors, orders_batch_size, details)
        if status == 404:
            if not_found_is_transient:
                raise TransientError(
                    f"Not visible at Sendcloud yet ({where}): {details or 'not found'}.",
                    status_code=status,
                    errors=errors,
                )
            raise NotFound(
                f"Not found at Sendcloud ({where}): {details or 'not found'}.", status_code=status, errors=errors
            )
        if status == 409:
            raise Conflict(
                f"Sendcloud reports a conflict on {where}: {details or 'it already exists'}.",
                status_code=status,
                errors=errors,
                body=body,
            )
        raise ClientError(
            f"Sendcloud refused {where} ({status}): {details or '(empty body)'}.", status_code=status, errors=errors
        )

    def _orders_rejected(self, errors: list[ApiError], batch_size: int, details: str) -> OrdersRejected:
        """Split the 400 of an all-or-nothing order batch into per-order messages by pointer index."""
        by_index: dict[int, list[str]] = {}
        unattributed: list[str] = []
        for error in errors:
            match = _ORDER_POINTER.match(error.pointer)
            if match and int(match.group(1)) < batch_size:
                by_index.setdefault(int(match.group(1)), []).append(
                    self._scrub(_describe(error, _field_path(match.group(2) or "")))
                )
            else:
                unattributed.append(self._scrub(error.detail))
        if not errors:
            unattributed.append(details or "Sendcloud refused the batch without saying why")
        if by_index:
            message = f"Sendcloud rejected the batch because of {len(by_index)} invalid order(s)."
        else:
            message = f"Sendcloud rejected the batch: {'; '.join(unattributed)}"
        return OrdersRejected(message, errors=errors, errors_by_index=by_index, unattributed=unattributed)

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
                    sendcloud_id=_text(item.get("id")),
                    order_id=str(item["order_id"]),
                    order_number=_text(item.get("order_number")),
                )
                for item in _data_of(body, list)
            ]

        return self._call("POST", "/v3/orders", parse, body=orders, orders_batch_size=len(orders))

    def get_order(self, sendcloud_id: str, *, not_found_is_transient: bool = False) -> dict[str, Any]:
        """``GET /v3/orders/{id}``. Pass ``not_found_is_transient=True`` right after a push: saving is async."""

        def parse(body: Any) -> dict[str, Any]:
            data: dict[str, Any] = _data_of(body, dict)
            return data

        return self._call("GET", f"/v3/orders/{sendcloud_id}", parse, not_found_is_transient=not_found_is_transient)

    def find_orders(self, *, order_id: str, integration_id: int | None = None) -> list[dict[str, Any]]:
        """``GET /v3/orders?order_id=…``: the Sendcloud orders carrying our external id (one page, ≤100)."""
        params = {"order_id": order_id, "page_size": "100"}
        if integration_id is not None:
            params["integration"] = str(integration_id)

        def parse(body: Any) -> list[dict[str, Any]]:
            return [item for item in _data_of(body, list) if isinstance(item, dict)]

        return self._call("GET", "/v3/orders", parse, params=params)

    # -- labels ------------------------------------------------------------------------------------------------

    def create_labels(
        self,
        *,
        integration_id: int,
        orders: list[str],
        sender_address_id: int | None = None,
        ship_with: dict[str, Any] | None = None,
        orders_just_pushed: bool = False,
    ) -> LabelRequestResult:
        """``POST /v3/orders/create-labels-async`` for 1 to 20 of our ``order_id`` values.

        This buys labels. Sendcloud has no idempotency key here, so the caller must record that it asked
        *before* calling, and on a :class:`TransientError` with ``outcome_uncertain`` look up the orders'
        shipments (:meth:`find_shipments`) instead of asking again. ``orders_just_pushed`` turns a 404 for the
        whole request into a transient error (the orders may simply not be saved yet).
        """
        if not 1 <= len(orders) <= MAX_ORDERS_PER_LABEL_REQUEST:
            raise ValueError(f"create_labels takes 1 to {MAX_ORDERS_PER_LABEL_REQUEST} orders, got {len(orders)}.")
        if len(set(orders)) != len(orders):
            raise ValueError("create_labels got the same order twice.")  # the spec demands unique items
        body: dict[str, Any] = {
            "integration_id": integration_id,
            "orders": [{"order_id": order_id} for order_id in orders],
        }
        if sender_address_id is not None:
            body["sender_address_id"] = sender_address_id
        if ship_with is not None:
            body["ship_with"] = ship_with

        def parse(payload: Any) -> LabelRequestResult:
            if not isinstance(payload, dict):
                raise _Malformed("expected an object")
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
                order_number=_text(item.get("order_number")),
                shipment_id=_text(item.get("shipment_id")),
                parcel_ids=[str(p) for p in parcel_ids],
            )
            accepted.append(label)
            accepted_ids.add(label.order_id)

        rejected: dict[str, str] = {}
        retryable: set[str] = set()
        general: list[ApiError] = []
        for error in _parse_errors(payload):
            match = _LABEL_POINTER.match(error.pointer)
            if not match or int(match.group(1)) >= len(requested):
                general.append(error)
                continue
            order_id = requested[int(match.group(1))]
            if order_id in accepted_ids:
                continue
            text = self._scrub(_describe(error, _field_path(match.group(2) or "")))
            rejected[order_id] = f"{rejected[order_id]}; {text}" if order_id in rejected else text
            if _looks_transient(error):
                retryable.add(order_id)
        if general:
            # Errors that name no order (e.g. an unknown sender address) concern every order not accepted.
            text = self._scrub("; ".join(e.detail for e in general))
            for order_id in requested:
                if order_id not in accepted_ids and order_id not in rejected:
                    rejected[order_id] = text
                    if all(_looks_transient(e) for e in general):
                        retryable.add(order_id)
        unaccounted = [o for o in requested if o not in accepted_ids and o not in rejected]
        return LabelRequestResult(
            accepted=accepted, rejected=rejected, retryable=frozenset(retryable), unaccounted=unaccounted
        )

    # -- shipments ---------------------------------------------------------------------------------------------

    def get_shipment(self, shipment_id: str) -> ShipmentInfo:
        """``GET /v3/shipments/{id}``: poll until :attr:`ShipmentInfo.is_ready` or a ``failed_message``."""
        return self._call("GET", f"/v3/shipments/{shipment_id}", lambda body: parse_shipment(_data_of(body, dict)))

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
            return [parse_shipment(item) for item in _data_of(body, list) if isinstance(item, dict)]

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

        def parse(answer: _Paged) -> ShipmentPage:
            shipments = [parse_shipment(item) for item in _data_of(answer.body, list) if isinstance(item, dict)]
            return ShipmentPage(shipments=shipments, next_cursor=_cursor_of(answer.next_url))

        return self._call("GET", "/v3/shipments", parse, params=params, paged=True)

    def download_label(self, parcel_id: str) -> bytes:
        """``GET /v3/parcels/{id}/documents/label`` as PDF. Anything that is not a PDF is retried later."""

        def parse(content: bytes) -> bytes:
            return content

        return self._call("GET", f"/v3/parcels/{parcel_id}/documents/label", parse, pdf=True)

    def download_labels(self, parcel_ids: Sequence[str], *, paper_size: str = "A6") -> bytes:
        """``GET /v3/parcel-documents/label?parcels=…``: the labels of 1 to 20 parcels as one PDF.

        One GET instead of one per parcel. ``parcels`` is an integer array in the spec, sent the OpenAPI
        default way (the parameter repeated). ``paper_size`` A6 (a label's own size) asks for one label a
        page. The spec does not promise the pages' order or count, so the caller must check them before
        it hands a page to an order (see ``labels``); anything that is not a PDF is retried later, as for
        :meth:`download_label`.
        """
        if isinstance(parcel_ids, str):
            raise TypeError("download_labels takes a sequence of parcel ids, not one string.")
        if not 1 <= len(parcel_ids) <= MAX_PARCELS_PER_DOCUMENT_REQUEST:
            raise ValueError(
                f"download_labels takes 1 to {MAX_PARCELS_PER_DOCUMENT_REQUEST} parcels, got {len(parcel_ids)}."
            )
        ids = [str(p) for p in parcel_ids]
        if not all(i.isdigit() for i in ids):
            raise ValueError("download_labels takes integer parcel ids (the spec types them as integers).")
        if paper_size not in PAPER_SIZES:
            raise ValueError(f"paper_size must be one of {sorted(PAPER_SIZES)}, got {paper_size!r}.")

        def parse(content: bytes) -> bytes:
            return content

        return self._call(
            "GET", "/v3/parcel-documents/label", parse, params={"parcels": ids, "paper_size": paper_size}, pdf=True
        )

    # -- account -----------------------------------------------------------------------------------------------

    def list_integrations(self) -> list[dict[str, Any]]:
        """``GET /v3/integrations``: the cheapest authenticated call, used to verify a connection."""

        def parse(body: Any) -> list[dict[str, Any]]:
            return [item for item in _data_of(body, list) if isinstance(item, dict)]

        return self._call("GET", "/v3/integrations", parse)


def _looks_transient(error: ApiError) -> bool:
    """A per-order label error worth retrying: not found yet after a push, a conflict, a server fault."""
    if STILL_PROCESSING_MARKER in error.detail.lower():
        return True
    if error.code == "not_found" or error.status in {"404", "429"}:
        return True
    return error.status.startswith("5") and error.code != "parcel_announcement_error"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_shipment(data: Mapping[str, Any]) -> ShipmentInfo:
    """A v3 shipment object (``GET /v3/shipments/{id}``'s ``data``, or a 409 body) → :class:`ShipmentInfo`."""
    raw_errors = data.get("errors")
    errors = [e.detail for e in _parse_errors({"errors": raw_errors})] if raw_errors else []
    carrier_obj = data.get("carrier")
    carrier = ""
    if isinstance(carrier_obj, dict):
        carrier = _text(carrier_obj.get("code") or carrier_obj.get("name"))
    elif carrier_obj:
        carrier = _text(carrier_obj)
    parcels = []
    raw_parcels = data.get("parcels")
    for parcel in raw_parcels if isinstance(raw_parcels, list) else []:
        if not isinstance(parcel, dict):
            continue
        status = parcel.get("status")
        if not isinstance(status, dict):
            status = {}
        label_url = ""
        documents = parcel.get("documents")
        for document in documents if isinstance(documents, list) else []:
            if isinstance(document, dict) and "label" in (document.get("document_type"), document.get("type")):
                label_url = _text(document.get("link"))
                break
        parcels.append(
            ParcelInfo(
                parcel_id=_text(parcel.get("id")),
                status_code=_text(status.get("code")).upper(),
                status_message=_text(status.get("message")),
                tracking_number=_text(parcel.get("tracking_number")),
                tracking_url=_text(parcel.get("tracking_url")),
                carrier=carrier,
                label_url=label_url,
                errors=list(errors),
            )
        )
    return ShipmentInfo(
        shipment_id=_text(data.get("id")),
        order_number=_text(data.get("order_number")),
        external_reference_id=_text(data.get("external_reference_id")),
        parcels=parcels,
        errors=errors,
        carrier=carrier,
    )
