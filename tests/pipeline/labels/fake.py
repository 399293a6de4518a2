"""A small stateful stand-in for Sendcloud's order, label, shipment and document endpoints, on ``responses``.

It keeps what the real API keeps (orders pushed, shipments created per order) so that tests can assert
the one thing that matters most: how many shipments — labels bought — each order got. Behaviour per
order is scripted with ``script(order_id, ...)``: each label request for the order consumes one step.

Shipments are read one by one (``GET /v3/shipments/{id}``) or listed with the spec's filters
(``shipment_uuids``, ``ids``, ``order_number``; ``page_size`` and a cursor ``Link``); labels are real
PDFs showing the order and tracking numbers, one at a time or many as one document
(``GET /v3/parcel-documents/label?parcels=…``, a page per parcel in request order).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from sendcloud_sandbox.pdf import build_pages_pdf, label_page

BASE = "https://sendcloud.test/api"
ORDERS_URL = f"{BASE}/v3/orders"
LABELS_URL = f"{BASE}/v3/orders/create-labels-async"
SHIPMENTS_URL = f"{BASE}/v3/shipments"
SHIPMENT_URL = re.compile(rf"{re.escape(SHIPMENTS_URL)}/(\w+)$")
LABEL_PDF_URL = re.compile(rf"{re.escape(BASE)}/v3/parcels/(\w+)/documents/label$")
LABELS_PDF_URL = f"{BASE}/v3/parcel-documents/label"

Headers = dict[str, str]
Answer = tuple[int, Headers, str | bytes]


@dataclass
class Shipment:
    id: str
    order_id: str
    order_number: str
    parcel_id: int
    #: GETs of the shipment answered ANNOUNCING before ``final`` shows.
    pending_polls: int = 0
    final: str = "READY_TO_SEND"
    carrier_error: str = ""
    polls: int = 0

    @property
    def tracking_number(self) -> str:
        return f"3STEST{self.parcel_id}"

    def status(self) -> str:
        return "ANNOUNCING" if self.polls < self.pending_polls else self.final

    def as_json(self) -> dict[str, Any]:
        code = self.status()
        errors = []
        if code == "ANNOUNCEMENT_FAILED":
            errors = [{"status": "400", "code": "parcel_announcement_error", "detail": self.carrier_error}]
        return {
            "id": self.id,
            "order_number": self.order_number,
            "carrier": {"code": "postnl", "name": "PostNL"},
            "errors": errors,
            "parcels": [
                {
                    "id": self.parcel_id,
                    "status": {"code": code, "message": code.replace("_", " ").title()},
                    "tracking_number": self.tracking_number if code == "READY_TO_SEND" else None,
                    "tracking_url": f"https://tracking.example/{self.parcel_id}" if code == "READY_TO_SEND" else None,
                    "documents": [{"type": "label", "link": f"{BASE}/v3/parcels/{self.parcel_id}/documents/label"}]
                    if code == "READY_TO_SEND"
                    else [],
                }
            ],
        }


@dataclass
class FakeSendcloud:
    """Register with :meth:`install` inside ``responses.activate``."""

    orders: dict[str, str] = field(default_factory=dict)  # order_id -> order_number
    shipments: dict[str, Shipment] = field(default_factory=dict)
    label_requests: Counter[str] = field(default_factory=Counter)  # order_id -> times asked for a label
    label_bodies: list[dict[str, Any]] = field(default_factory=list)
    #: Per order, the steps the next label requests consume: "ok", "reject:<msg>", "not_visible",
    #: "carrier:<msg>" (created, then ANNOUNCEMENT_FAILED), "pending:<n>" (ANNOUNCING for n polls).
    scripts: dict[str, list[str]] = field(default_factory=dict)
    #: Label request numbers (1-based) whose shipments are created but whose answer times out.
    timeout_after_commit: set[int] = field(default_factory=set)
    #: Label request numbers that time out before Sendcloud did anything.
    timeout_before_commit: set[int] = field(default_factory=set)
    #: The next N shipment reads answer 503.
    failing_reads: int = 0
    #: The next N label downloads (single or bulk) answer with something that is not a PDF.
    failing_downloads: int = 0
    #: The next N bulk downloads leave out the last parcel's page.
    short_bulk_documents: int = 0
    #: The next N bulk downloads answer the pages in reverse order.
    reversed_bulk_documents: int = 0
    #: The next N bulk downloads answer 404 (a label not served yet).
    missing_bulk_documents: int = 0
    #: The next N bulk downloads answer 503.
    unavailable_bulk_documents: int = 0
    #: The next N downloads (single or bulk) answer a PDF cut off half-way.
    truncated_downloads: int = 0
    #: Pages of the shipments list hold at most this many shipments, whatever ``page_size`` asked for.
    list_page_cap: int = 100
    #: The list ignores its filters and answers every shipment (a server that does not know them).
    list_ignores_filters: bool = False
    #: Orders (``order_id``) whose shipments the list leaves out (saved asynchronously: not listed yet).
    unlisted: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(700))
    _parcels: Any = field(default_factory=lambda: itertools.count(90000))
    label_calls: int = 0

    def install(self) -> FakeSendcloud:
        responses.add_callback(responses.POST, ORDERS_URL, callback=self._push)
        responses.add_callback(responses.POST, LABELS_URL, callback=self._labels)
        responses.add_callback(responses.GET, SHIPMENTS_URL, callback=self._list_shipments)
        responses.add_callback(responses.GET, SHIPMENT_URL, callback=self._get_shipment)
        responses.add_callback(responses.GET, LABEL_PDF_URL, callback=self._label_pdf)
        responses.add_callback(responses.GET, LABELS_PDF_URL, callback=self._labels_pdf)
        return self

    def restore_labels(self) -> None:
        """Answer label requests normally again after a test replaced that endpoint."""
        responses.remove(responses.POST, LABELS_URL)
        responses.add_callback(responses.POST, LABELS_URL, callback=self._labels)

    # -- scripting --------------------------------------------------------------------------------------

    def know(self, order_id: str, order_number: str) -> None:
        """An order that is in Sendcloud already (pushed earlier)."""
        self.orders[order_id] = order_number

    def script(self, order_id: str, *steps: str) -> None:
        self.scripts.setdefault(order_id, []).extend(steps)

    def create_shipment(self, order_id: str, step: str = "ok") -> Shipment:
        """A shipment for the order, as a label request would make it (also usable from a test)."""
        shipment = Shipment(
            id=str(next(self._ids)),
            order_id=order_id,
            order_number=self.orders[order_id],
            parcel_id=next(self._parcels),
        )
        if step.startswith("carrier:"):
            shipment.final = "ANNOUNCEMENT_FAILED"
            shipment.carrier_error = step.split(":", 1)[1]
        elif step.startswith("pending:"):
            shipment.pending_polls = int(step.split(":", 1)[1])
        self.shipments[shipment.id] = shipment
        return shipment

    def created_for(self, order_id: str) -> int:
        """Shipments (labels bought) for the order: the duplicate-label detector."""
        return sum(1 for s in self.shipments.values() if s.order_id == order_id)

    def shipment_of(self, order_id: str) -> Shipment:
        [shipment] = [s for s in self.shipments.values() if s.order_id == order_id]
        return shipment

    # -- endpoints --------------------------------------------------------------------------------------

    def _push(self, request: requests.PreparedRequest) -> Answer:
        sent = json.loads(request.body or b"[]")
        data = []
        for index, order in enumerate(sent):
            self.orders[order["order_id"]] = order["order_number"]
            data.append({"id": 5000 + index, "order_id": order["order_id"], "order_number": order["order_number"]})
        return 201, {}, json.dumps({"data": data})

    def _labels(self, request: requests.PreparedRequest) -> Answer:
        self.label_calls += 1
        body = json.loads(request.body or b"{}")
        self.label_bodies.append(body)
        if self.label_calls in self.timeout_before_commit:
            raise requests.exceptions.ReadTimeout("read timed out")
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, selector in enumerate(body["orders"]):
            order_id = selector["order_id"]
            self.label_requests[order_id] += 1
            steps = self.scripts.get(order_id) or []
            step = steps.pop(0) if steps else "ok"
            pointer = {"pointer": f"/data/attributes/orders/[{index}]"}
            if step == "not_visible" or order_id not in self.orders:
                errors.append(
                    {"status": "404", "code": "not_found", "detail": "The order could not be found", "source": pointer}
                )
                continue
            if step.startswith("reject:"):
                detail = step.split(":", 1)[1]
                errors.append({"status": "400", "code": "validation_error", "detail": detail, "source": pointer})
                continue
            shipment = self.create_shipment(order_id, step)
            data.append(
                {
                    "parcel_id": shipment.parcel_id,
                    "parcels_ids": [shipment.parcel_id],
                    "shipment_id": shipment.id,
                    "order_id": order_id,
                    "order_number": shipment.order_number,
                }
            )
        if self.label_calls in self.timeout_after_commit:
            raise requests.exceptions.ReadTimeout("read timed out")
        answer: dict[str, Any] = {"data": data}
        if errors:
            answer["errors"] = errors
        return 202, {}, json.dumps(answer)

    def _list_shipments(self, request: requests.PreparedRequest) -> Answer:
        if self.failing_reads:
            self.failing_reads -= 1
            return 503, {}, ""
        query = parse_qs(urlsplit(request.url or "").query)
        found = [s for s in reversed(self.shipments.values()) if s.order_id not in self.unlisted]  # newest first
        if self.list_ignores_filters:
            query = {k: v for k, v in query.items() if k in ("page_size", "cursor")}
        if "order_number" in query:
            found = [s for s in found if s.order_number == query["order_number"][0]]
        if "shipment_uuids" in query:
            wanted = set(query["shipment_uuids"][0].split(","))
            assert len(wanted) <= 100, "the spec allows at most 100 shipment ids"
            found = [s for s in found if s.id in wanted]
        if "ids" in query:
            parcels = {int(p) for p in query["ids"][0].split(",")}
            found = [s for s in found if s.parcel_id in parcels]
        size = int(query.get("page_size", ["40"])[0])
        assert 1 <= size <= 100, "the spec allows page sizes of 1 to 100"
        size = min(size, self.list_page_cap)
        offset = int(base64.b64decode(query["cursor"][0]).decode()[2:]) if "cursor" in query else 0
        page = found[offset : offset + size]
        data = [s.as_json() for s in page]
        for shipment in page:
            shipment.polls += 1
        headers: Headers = {}
        if offset + size < len(found):
            cursor = base64.b64encode(f"o={offset + size}".encode()).decode()
            rest = {k: v[0] for k, v in query.items() if k != "cursor"}
            rest["cursor"] = cursor
            link = f"{SHIPMENTS_URL}?" + "&".join(f"{k}={v}" for k, v in rest.items())
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, headers, json.dumps({"data": data})

    def _get_shipment(self, request: requests.PreparedRequest) -> Answer:
        if self.failing_reads:
            self.failing_reads -= 1
            return 503, {}, ""
        match = SHIPMENT_URL.match(request.url or "")
        shipment = self.shipments.get(match.group(1)) if match else None
        if shipment is None:
            return 404, {}, json.dumps({"errors": [{"status": "404", "code": "not_found", "detail": "Not found."}]})
        data = shipment.as_json()
        shipment.polls += 1
        return 200, {}, json.dumps({"data": data})

    def by_parcel(self, parcel_id: int) -> Shipment:
        [shipment] = [s for s in self.shipments.values() if s.parcel_id == parcel_id]
        return shipment

    def label_document(self, shipments: list[Shipment]) -> bytes:
        """A real PDF with a page per shipment's label, showing its order and tracking numbers."""
        return build_pages_pdf(
            [
                label_page(
                    order_number=s.order_number,
                    tracking_number=s.tracking_number,
                    carrier="PostNL",
                    parcel_id=s.parcel_id,
                    recipient=["Test Recipient"],
                )
                for s in shipments
            ]
        )

    def _label_pdf(self, request: requests.PreparedRequest) -> Answer:
        if self.failing_downloads:
            self.failing_downloads -= 1
            return 200, {"Content-Type": "text/html"}, "<html>label is being generated</html>"
        match = LABEL_PDF_URL.match(request.url or "")
        shipment = self.by_parcel(int(match.group(1))) if match else None
        if shipment is None:
            return 404, {}, json.dumps({"errors": [{"status": "404", "code": "not_found", "detail": "Not found."}]})
        return 200, {"Content-Type": "application/pdf"}, self._maybe_truncated(self.label_document([shipment]))

    def _maybe_truncated(self, pdf: bytes) -> bytes:
        if not self.truncated_downloads:
            return pdf
        self.truncated_downloads -= 1
        return pdf[: len(pdf) // 3]

    def _labels_pdf(self, request: requests.PreparedRequest) -> Answer:
        query = parse_qs(urlsplit(request.url or "").query)
        parcels = [int(p) for p in query["parcels"]]
        assert 1 <= len(parcels) <= 20, "the spec allows 1 to 20 parcels"
        assert query.get("paper_size") == ["A6"]
        if self.failing_downloads:
            self.failing_downloads -= 1
            return 200, {"Content-Type": "text/html"}, "<html>labels are being generated</html>"
        if self.missing_bulk_documents:
            self.missing_bulk_documents -= 1
            return 404, {}, json.dumps({"errors": [{"status": "404", "code": "not_found", "detail": "Not found."}]})
        if self.unavailable_bulk_documents:
            self.unavailable_bulk_documents -= 1
            return 503, {}, ""
        shipments = [self.by_parcel(p) for p in parcels]
        if self.short_bulk_documents:
            self.short_bulk_documents -= 1
            shipments = shipments[:-1]
        if self.reversed_bulk_documents:
            self.reversed_bulk_documents -= 1
            shipments = shipments[::-1]
        return 200, {"Content-Type": "application/pdf"}, self._maybe_truncated(self.label_document(shipments))


def calls_to(url: str, method: str = "") -> list[responses.Call]:
    """The recorded calls whose URL (without query) is ``url``."""
    return [
        call
        for call in responses.calls
        if (call.request.url or "").split("?")[0] == url and (not method or call.request.method == method)
    ]


def no_waiting(settings: Any, tmp_path: Path) -> None:
    """Poll at once, trust a look-up at once, back off not at all; labels stored under ``tmp_path``.

    The label and guard tests depend on what is sent, not on how long the service waits between calls.
    """
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 0
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 0
    settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS = 0
    settings.SENDCLOUD_RETRY_BASE_SECONDS = 0
    settings.SENDCLOUD_BUDGET_ENABLED = False


def run_chunk_until_done(batch: Any, *, deadline_seconds: float, pause: float) -> None:
    """Run chunk 1 of ``batch`` again and again, as the task's retries would, until it asks for no retry."""
    from sendcloud_integration.pipeline import process

    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        outcome = process.process_chunk(batch_id=batch.pk, chunk_number=1)
        if outcome.retry_in is None:
            return
        time.sleep(min(outcome.retry_in, pause))
    raise AssertionError("the chunk did not finish in time")
