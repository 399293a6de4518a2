"""How the client talks HTTP: one pooled session per process, one attempt per call, typed errors.

* **One attempt per call, no hidden retries.** urllib3's automatic retries are switched off. Whether and when
  to try again is the caller's decision, because only the caller knows the shared request budget and whether
  repeating a request could buy a second label.
* **Every attempt is reported** through ``on_call`` with a :class:`CallRecord` — successes, HTTP errors and
  timeouts alike — so staff can see what Sendcloud answered for an order. A failing ``on_call`` never
  changes the outcome of the HTTP call (losing a label result because an audit row could not be written
  would lead straight to a second label).
* **Credentials never leave the auth header.** They are not in reprs, messages, logs or call records; any
  text that came back from the wire is scrubbed of them as a last line of defence.
* **Money stays Decimal until the wire.** The Orders API types prices as JSON *numbers*; :func:`encode_json`
  writes a :class:`~decimal.Decimal` as a number whose text is exactly the decimal's (see its docstring).

HTTP only: no Django models, no Celery.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sendcloud_integration.sendcloud.errors import (
    STILL_PROCESSING_MARKER,
    AuthenticationError,
    ClientError,
    Conflict,
    NotFound,
    OtherFormatServed,
    RateLimited,
    SendcloudError,
    TransientError,
    orders_rejected,
)
from sendcloud_integration.sendcloud.types import CallRecord, parse_api_errors

logger = logging.getLogger("sendcloud_integration.sendcloud.client")

T = TypeVar("T")

#: Request-budget classes, as Sendcloud counts them: GETs ("safe", 1000/min) and everything else
#: ("unsafe", 100/min with bursts of 15/s). Same strings as ``budget.Kind``.
SAFE: Final = "safe"
UNSAFE: Final = "unsafe"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

EXCERPT_LENGTH: Final = 300


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


#: How an error names each document media type the client asks for.
DOCUMENT_NAMES: Final = {"application/pdf": "a PDF", "application/zpl": "a ZPL label", "image/png": "a PNG image"}


def looks_like(media_type: str, content: bytes) -> bool:
    """Whether ``content`` starts as a document of ``media_type`` does: a PDF header, ZPL's ``^XA``, a PNG signature."""
    if media_type == "application/pdf":
        return content.startswith(b"%PDF")
    if media_type == "application/zpl":
        return content.lstrip()[:3].upper() == b"^XA"
    if media_type == "image/png":
        return content.startswith(b"\x89PNG\r\n\x1a\n")
    return False


def decimal_to_number(value: Decimal) -> float:
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


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_to_number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_json(payload: Any) -> bytes:
    """The request body as UTF-8 JSON, with Decimals written as exact JSON numbers."""
    return json.dumps(payload, default=json_default, ensure_ascii=False, separators=(",", ":")).encode()


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """A short, single-line piece of a response body, fit for a log line; HTML tags are dropped."""
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(response: requests.Response) -> float | None:
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


def connection_not_established(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request certainly never reached Sendcloud (refused, DNS failure, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Failed to resolve", "ConnectTimeout")
    )


class Malformed(Exception):
    """Raised by a response parser: Sendcloud answered 2xx, but not in the shape the spec promises."""


@dataclass(frozen=True)
class Paged:
    """What a parser of a paginated list receives: the decoded body and the ``Link`` header's next URL."""

    body: Any
    next_url: str | None


def cursor_of(url: str | None) -> str | None:
    """The ``cursor`` query value of a ``Link`` URL; None without one (nothing more to follow)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("cursor")
    return values[0] if values and values[0] else None


def data_of(body: Any, kind: type) -> Any:
    """``body["data"]`` of the expected type, or :class:`Malformed`."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, kind):
        raise Malformed(f"expected data as {kind.__name__}")
    return data


def path_segment(value: object) -> str:
    """A value (an id from Sendcloud's answers, or ours) as one URL path segment, with ``/``, ``?``, ``..``
    and everything else that could leave the segment percent-encoded."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"{text!r} is not a usable id in a Sendcloud URL.")
    return quote(text, safe="")


def _secret_forms(public_key: str, secret_key: str) -> tuple[str, ...]:
    """The credentials in every form a server could echo them back in: as they are, and as the
    base64 of HTTP Basic auth (``public:secret``), with and without padding, longest first."""
    forms = {key for key in (public_key, secret_key) if key}
    if public_key and secret_key:
        basic = base64.b64encode(f"{public_key}:{secret_key}".encode("latin-1", "replace")).decode()
        forms |= {basic, basic.rstrip("=")}
    return tuple(sorted(forms, key=len, reverse=True))


class Transport:
    """Sendcloud API v3 over HTTP Basic auth: one attempt per :meth:`call`, its answer parsed or typed as an error.

    One instance per integration; cheap to create. The endpoints live in :class:`~sendcloud_integration.sendcloud.
    client.SendcloudV3Client`; this class knows nothing about what they mean.
    """

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
        self._secrets = _secret_forms(public_key, secret_key)
        self.timeout = (connect_timeout, read_timeout)
        self._session = session
        self.on_call = on_call

    def __repr__(self) -> str:
        return f"<Transport {self.base_url}>"

    # -- transport ---------------------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        return self._session if self._session is not None else shared_session()

    def scrub(self, text: str) -> str:
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
            extra={"sendcloud_path": record.path},
        )
        if self.on_call is None:
            return
        try:
            self.on_call(record)
        except Exception:  # the call's outcome matters more than its audit row: never lose a label result
            logger.exception("on_call failed for Sendcloud %s %s", record.method, record.path)

    def call(
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
        document: str | None = None,
        no_content: bool = False,
    ) -> T:
        """One HTTP attempt: send it, turn the answer into ``parse(body)`` or a typed error, record it once.

        ``parse`` receives the decoded JSON (or the raw bytes when ``pdf``; a :class:`Paged` with the body and
        the ``Link`` header's next URL when ``paged``; None for a 204 when ``no_content``). A list value in
        ``params`` is sent as the parameter repeated, OpenAPI's default for query arrays. A 2xx that cannot be
        decoded or parsed is transient — and uncertain for unsafe methods, because Sendcloud did answer 2xx.
        The check happens before the call is recorded, so the call log shows the malformed answer as an error.

        ``document`` asks for a document in that media type (``application/pdf``, ``application/zpl``,
        ``image/png``) with ``Accept`` and checks the answer is one (``pdf=True`` is ``document="application/pdf"``).
        """
        unsafe = method in UNSAFE_METHODS
        if pdf and document is None:
            document = "application/pdf"
        headers = {"Accept": document or "application/json", "User-Agent": "wemasy-sendcloud/1"}
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
                # Never followed: a redirected POST silently turns into a GET, and a followed GET would
                # carry the credentials to wherever the Location points.
                allow_redirects=False,
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
            sent = not connection_not_established(exc)
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
            if no_content and response.status_code == 204:
                result = parse(None)
            else:
                result = self._parse(method, path, response, parse, document=document, paged=paged)
        except SendcloudError as exc:
            self._record(CallRecord(method, path, response.status_code, duration, excerpt(exc.message)))
            raise
        self._record(CallRecord(method, path, response.status_code, duration, ""))
        return result

    def _parse(
        self,
        method: str,
        path: str,
        response: requests.Response,
        parse: Callable[[Any], T],
        *,
        document: str | None,
        paged: bool,
    ) -> T:
        status = response.status_code
        if document is not None:
            if not looks_like(document, response.content):
                served = next((other for other in DOCUMENT_NAMES if looks_like(other, response.content)), None)
                if served is not None:
                    raise OtherFormatServed(
                        f"Sendcloud answered {method} {path} with {status} and {DOCUMENT_NAMES[served]} instead "
                        f"of {DOCUMENT_NAMES[document]}.",
                        served=served,
                        status_code=status,
                    )
                raise TransientError(
                    f"Sendcloud answered {method} {path} with {status} but not with {DOCUMENT_NAMES[document]}.",
                    status_code=status,
                    outcome_uncertain=False,
                )
            return parse(response.content)
        try:
            if paged:
                return parse(Paged(body=response.json(), next_url=response.links.get("next", {}).get("url")))
            return parse(response.json())
        except (ValueError, KeyError, TypeError, Malformed):
            raise TransientError(
                self.scrub(
                    f"Sendcloud answered {method} {path} with {status} but the body is not what the API promises: "
                    f"{excerpt(response.text, 120) or '(empty)'}"
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
        if 300 <= status < 400:
            location = urlsplit(response.headers.get("Location", "")).netloc or "an unknown place"
            message = f"Sendcloud answered {method} {path} with a redirect ({status}) to {location}; not followed."
            if method in UNSAFE_METHODS:
                # A redirect after a POST may follow a request that was carried out (303 See Other, say):
                # uncertain, so a label request is looked up before it could be asked again.
                raise TransientError(message, status_code=status, outcome_uncertain=True)
            raise ClientError(message, status_code=status)
        unsafe = method in UNSAFE_METHODS
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        errors = parse_api_errors(body)
        details = "; ".join(e.detail for e in errors) if errors else excerpt(response.text, 200)
        details = self.scrub(details).rstrip(". ")
        where = f"{method} {path}"

        if status == 429:
            raise RateLimited(
                f"Sendcloud rate limit reached (429) on {where}.",
                status_code=status,
                retry_after=retry_after_seconds(response),
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
                retry_after=retry_after_seconds(response),
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
            raise orders_rejected(errors, orders_batch_size, details, self.scrub)
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
