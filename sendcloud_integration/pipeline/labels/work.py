"""The label phase of a chunk: ask Sendcloud for labels, wait for them, store them — never twice.

``processing.process_chunk`` calls :func:`label_phase` after the push phase of a batch that creates
labels, and again on every re-run of the chunk, until no order of the chunk is left in LABEL_QUEUED or
LABELLING. The work, per run:

1. PUSHED rows that want a label become LABEL_QUEUED (orders already in Sendcloud arrive there directly).
2. Rows that carry evidence of an earlier label request are **resolved first** (see below).
3. LABEL_QUEUED rows are sent to ``POST /v3/orders/create-labels-async`` in groups of at most 20.
4. LABELLING rows whose shipment is known are polled — a hundred at a time with
   ``GET /v3/shipments?shipment_uuids=…`` (a lone row with ``GET /v3/shipments/{id}``); a carrier
   refusal or a label that never comes fails the order (phase LABEL).
5. Ready labels are downloaded twenty at a time with ``GET /v3/parcel-documents/label?parcels=…``
   (one A6 page per parcel), split into one PDF per order and stored. A document that does not match its
   parcels page by page is not trusted: that group is fetched parcel by parcel instead.

Why in bulk: Sendcloud allows 1000 GETs a minute per account but, at 20 orders per label request, some
2000 orders' worth of label requests. One status GET and one PDF GET per order would make the GETs the
bottleneck (about 500 labels a minute); shared reads cost well under 0.1 GETs per order instead.

Anything that must wait — a spent request budget, a label still being made, a back-off after a transient
error — hands the chunk back (``ChunkOutcome.retry_in``); only failures count against the chunk's
``SENDCLOUD_MAX_ATTEMPTS``, waiting does not.

Why an order can never get a second label
-----------------------------------------
A label costs the shop money once announced, and Sendcloud offers no idempotency key on
create-labels-async. So the service keeps its own evidence on the row and never asks again while that
evidence says a label may exist:

* **Before** a request is sent, its rows move LABEL_QUEUED → LABELLING with ``label_requested_at`` set
  and the shipment ids cleared, in one conditional update; only the rows that update moved are sent.
  From then on, *a row with ``label_requested_at`` set and no ``sendcloud_shipment_id`` has an
  uncertain outcome*: the worker may have died, the answer may have timed out, Sendcloud may have
  said nothing about the order.
* ``label_requested_at`` is cleared only when Sendcloud certainly made no label: it answered the
  request with a refusal for the order (per-order error, 4xx, 401/403), or a transient error that
  proves the request was not acted on (429, connection refused, "still processing":
  ``TransientError.outcome_uncertain`` is False), or a look-up found no shipment.
* An uncertain row is never asked for again directly. Its order's shipments are looked up first
  (``GET /v3/shipments?order_number=…``): a live one (being announced or ready) is adopted and
  polled; only when none exists does the row go back to LABEL_QUEUED to be requested again.
* Sendcloud saves asynchronously, and a request whose answer timed out may still be running on
  Sendcloud's side. A look-up right after the timeout could therefore miss the shipment that request
  is about to create, and asking again would buy a second label. So the look-up is only trusted
  ``SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS`` after ``label_requested_at`` (default 60 s, twice the
  default read timeout); before that the chunk is handed back. The same grace keeps a worker that took
  over a stale chunk away from rows whose request the first worker is still sending.
* Every later write to a LABELLING row is conditional on the ``label_requested_at`` it was read with,
  so a worker holding an outdated view can neither forget nor overwrite a newer request.
* A 409 means "it exists already": the shipment it carries is adopted; without one, the group's
  orders are looked up at once (the conflict proves Sendcloud has saved something).
* A row that comes back in a later batch (a re-push of a label-FAILED order) keeps its evidence, so
  it is checked first as well: a known shipment is read (still live → adopted instead of requesting
  anew; failed or cancelled → a new label is requested), an uncertain request is looked up.

The look-up matches by order number, which Sendcloud shipments made from orders carry. If an account
shared the same order numbers across integrations, a shipment of another integration could be
adopted; that errs on the side of no second label.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import NoReturn, TypeVar

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.db.models import Case, Value, When
from django.utils import timezone
from django.utils.text import get_valid_filename
from pypdf import PageObject, PdfReader, PdfWriter

from sendcloud_integration.limits import (
    MAX_IDS_PER_SHIPMENT_FILTER,
    MAX_ORDERS_PER_LABEL_REQUEST,
    MAX_PARCELS_PER_DOCUMENT_REQUEST,
    MAX_SHIPMENTS_PAGE_SIZE,
)
from sendcloud_integration.models import (
    ChunkStatus,
    OrderShipment,
    OrderShipmentQuerySet,
    Phase,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
)
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.sendcloud import budget, payloads
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    SendcloudError,
    TransientError,
)
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import LabelRequestResult, ParcelInfo, ShipmentInfo

logger = logging.getLogger(__name__)

T = TypeVar("T")

LABELS_PATH = "/v3/orders/create-labels-async"
LABEL_STATES = (ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING)
#: A request for orders pushed this recently may meet "not found": Sendcloud saves orders asynchronously.
_JUST_PUSHED = timedelta(minutes=10)
#: How often a long run refreshes its chunk's claim, in seconds (the sweep re-dispatches stale claims).
_HEARTBEAT_SECONDS = 15.0
#: A run hands its chunk back after this long, well within the task's soft time limit; it goes on later.
_RUN_SECONDS = 120.0
#: Shipments read per ``GET /v3/shipments`` when polling: the spec's largest page and id filter (100).
_POLL_PAGE = min(MAX_SHIPMENTS_PAGE_SIZE, MAX_IDS_PER_SHIPMENT_FILTER)
#: Labels are fetched in a label's own paper size, so a bulk document holds one label a page.
LABEL_PAPER_SIZE = "A6"


@dataclass(frozen=True)
class _ReadyLabel:
    """A row whose shipment is ready, and the parcel whose label it will store."""

    row: OrderShipment
    info: ShipmentInfo
    parcel: ParcelInfo


def label_phase(
    *,
    chunk: PushChunk,
    integration: SendcloudIntegration,
    client: SendcloudV3Client,
    call_log: CallLog,
) -> processing.ChunkOutcome:
    """Move the chunk's label work forward as far as it can go now; say when to come back.

    Returns the labels stored and orders failed in this run, and ``retry_in`` while any of the chunk's
    orders is still in LABEL_QUEUED or LABELLING (never ``None`` then, so a DONE chunk has no label
    work left). ``pushed`` is left for the caller to fill.
    """
    OrderShipment.objects.filter(
        batch_id=chunk.batch_id, chunk_number=chunk.number, state=ShipmentState.PUSHED, create_label=True
    ).move(source=[ShipmentState.PUSHED], target=ShipmentState.LABEL_QUEUED)
    rows = list(
        OrderShipment.objects.filter(batch_id=chunk.batch_id, chunk_number=chunk.number, state__in=LABEL_STATES)
        .select_related("order", "shop")
        .order_by("pk")
    )
    if not rows:
        return processing.ChunkOutcome()
    work = _LabelWork(integration=integration, client=client, call_log=call_log, chunk=chunk, may_request=True)
    work.run(rows)
    return work.outcome(
        still_in_flight=lambda: OrderShipment.objects.filter(
            batch_id=chunk.batch_id, chunk_number=chunk.number, state__in=LABEL_STATES
        ).exists()
    )


def fail_label_rows(*, chunk: PushChunk, error: str) -> int:
    """Fail the chunk's label work without calling Sendcloud (the integration became unusable).

    Evidence of earlier requests (``label_requested_at``, shipment ids) stays on the rows, so a later
    re-push looks their shipments up before it could ask for a label again.
    """
    return OrderShipment.objects.filter(
        batch_id=chunk.batch_id, chunk_number=chunk.number, state__in=LABEL_STATES
    ).move(source=LABEL_STATES, target=ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error=error[:2000])


def reconcile_orphans(*, shipment_ids: Sequence[int]) -> int:
    """Settle label rows that no chunk will pick up again (their batch is gone or finished).

    Used by the sweep. It reads Sendcloud (shipment, look-up, label download) exactly like the label
    phase, but never *requests* a label: a ready label is stored, a refusal fails the order, and an
    order with no label at Sendcloud is failed with a message asking for a re-push — which then goes
    through the full guard. Returns the number of rows settled (LABELLED or FAILED).
    """
    rows = list(
        OrderShipment.objects.filter(pk__in=list(shipment_ids), state__in=LABEL_STATES)
        .select_related("order", "shop")
        .order_by("pk")
    )
    by_shop: dict[int, list[OrderShipment]] = {}
    for row in rows:
        by_shop.setdefault(row.shop_id, []).append(row)
    settled = 0
    for shop_id, shop_rows in by_shop.items():
        integration = SendcloudIntegration.objects.filter(shop_id=shop_id).first()
        if integration is None or not integration.is_active or not integration.has_credentials:
            settled += _fail(
                shop_rows,
                "The shop's SendCloud integration is unusable, so this label could not be checked; "
                "re-push the order once it is fixed.",
            )
            continue
        call_log = CallLog(shop_id=shop_id)
        try:
            work = _LabelWork(
                integration=integration,
                client=build_client(integration, call_log),
                call_log=call_log,
                chunk=None,
                may_request=False,
            )
            work.run(shop_rows)
        finally:
            call_log.flush()
        settled += work.labelled + work.failed
    return settled


def label_file_name(row: OrderShipment, parcel_id: str) -> str:
    """``labels/<shop slug>/<order number>-<parcel id>.pdf``: readable for staff, unique per parcel."""
    try:
        stem = get_valid_filename(f"{row.order.order_number}-{parcel_id}")
    except SuspiciousFileOperation:
        stem = f"order-{row.order_id}-{parcel_id}"
    return f"labels/{row.shop.slug}/{stem}.pdf"


def split_label_pages(pdf: bytes, parcels: Sequence[ParcelInfo]) -> list[bytes] | None:
    """Page *i* of a bulk label document as a one-page PDF for ``parcels[i]``; None when not to be trusted.

    The parcel-documents spec documents neither the order nor the number of the pages, and a label on the
    wrong order means a parcel sent to the wrong address. So the split is refused (None) when the
    document cannot be read, when it has not exactly one page per parcel, or when a page shows another
    parcel's tracking number but not its own. A page without readable text (a scanned carrier label)
    cannot be checked that way and is taken in request order.
    """
    try:
        reader = PdfReader(io.BytesIO(pdf))
        if len(reader.pages) != len(parcels):
            return None
        files: list[bytes] = []
        for index, page in enumerate(reader.pages):
            if _shows_another_parcel(page, parcels, index):
                return None
            writer = PdfWriter()
            writer.add_page(page)
            out = io.BytesIO()
            writer.write(out)
            files.append(out.getvalue())
    except Exception:  # pypdf raises many kinds of error on damaged input; each means "do not trust it"
        logger.debug("bulk label document could not be split", exc_info=True)
        return None
    return files


def count_pdf_pages(pdf: bytes) -> int:
    """The number of pages of a PDF, or 0 when it cannot be read (a truncated or damaged download)."""
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except Exception:  # see split_label_pages
        logger.debug("label document could not be read", exc_info=True)
        return 0


def _shows_another_parcel(page: PageObject, parcels: Sequence[ParcelInfo], index: int) -> bool:
    """True when the page's text names another parcel of the document by tracking number, not its own."""
    own = parcels[index].tracking_number
    others = [p.tracking_number for p in parcels if p.tracking_number and p.tracking_number != own]
    if not others:
        return False
    try:
        text = page.extract_text() or ""
    except Exception:  # text that cannot be extracted cannot contradict the order either
        logger.debug("label page text could not be extracted", exc_info=True)
        return False
    if own and own in text:
        return False
    return any(number in text for number in others)


class _Halt(Exception):
    """Stop everything in this run: the credentials were refused."""


class _Skip(Exception):
    """This call could not be made or failed; its consequences are already recorded."""


class _LabelWork:
    """One run of label work over a set of rows, with its tallies and the reasons to come back.

    ``chunk`` is None when the sweep reconciles orphaned rows: then nothing is requested, failures are
    not counted against a chunk, and waits are simply left for the next sweep.
    """

    def __init__(
        self,
        *,
        integration: SendcloudIntegration,
        client: SendcloudV3Client,
        call_log: CallLog,
        chunk: PushChunk | None,
        may_request: bool,
    ) -> None:
        self.integration = integration
        self.client = client
        self.call_log = call_log
        self.chunk = chunk
        self.may_request = may_request
        self.now = timezone.now()
        attempts = chunk.attempts if chunk is not None else 0
        #: This run's attempt number, as ``_push_phase`` counts it; the last allowed one fails for good.
        self.attempt = attempts + 1
        self.exhausted = chunk is not None and self.attempt >= settings.SENDCLOUD_MAX_ATTEMPTS
        #: Every allowed attempt is spent: an order whose uncertain request proved fruitless is not re-sent.
        self.spent = chunk is not None and attempts >= settings.SENDCLOUD_MAX_ATTEMPTS
        self.labelled = 0
        self.failed = 0
        self.wait: float | None = None  # come back then, not a failure
        self.failure_wait: float | None = None  # come back then, counting an attempt
        self.unsafe_blocked = False
        self.safe_blocked = False
        self.polled_pending: list[int] = []
        #: Rows whose label is ready, collected while polling and downloaded together at the end of the run.
        self.ready: list[_ReadyLabel] = []
        self.rows: list[OrderShipment] = []
        self._last_heartbeat = self._started = time.monotonic()

    # -- the run ---------------------------------------------------------------------------------------

    def run(self, rows: list[OrderShipment]) -> None:
        """Resolve rows with evidence, request labels for the clean ones, poll the known shipments, and
        download the labels that are ready (in bulk, after every read, so they share their GETs)."""
        self.rows = rows
        to_resolve = [r for r in rows if _has_evidence(r) and not _known_current(r)]
        to_poll = [r for r in rows if _known_current(r)]
        to_request = [r for r in rows if r.state == ShipmentState.LABEL_QUEUED and not _has_evidence(r)]
        try:
            for row in to_resolve:
                if self.safe_blocked or self._out_of_time():
                    break
                if self._resolve(row):
                    to_request.append(row)
            to_request.sort(key=lambda r: r.pk)
            accepted = self._request(to_request)
            self._poll(to_poll + accepted)
            self._download(self.ready)
        except _Halt:
            self.wait = self.failure_wait = None  # every label row of the run has failed: nothing to come back for
            return
        finally:
            self._mark_polled()

    def outcome(self, *, still_in_flight: Callable[[], bool]) -> processing.ChunkOutcome:
        """What to tell ``process_chunk``; a hand-back whenever label work remains."""
        if self.failure_wait is not None:
            return processing.ChunkOutcome(
                labelled=self.labelled, failed=self.failed, retry_in=self.failure_wait, counts_attempt=True
            )
        if self.wait is not None:
            return processing.ChunkOutcome(
                labelled=self.labelled, failed=self.failed, retry_in=self.wait, counts_attempt=False
            )
        if still_in_flight():
            # Nothing above asked for a wait, yet rows remain: never complete a chunk with label work left.
            logger.warning("batch=%s chunk=%s label rows left without a reason; polling again", *self._where())
            return processing.ChunkOutcome(
                labelled=self.labelled,
                failed=self.failed,
                retry_in=float(settings.SENDCLOUD_LABEL_POLL_SECONDS),
                counts_attempt=False,
            )
        return processing.ChunkOutcome(labelled=self.labelled, failed=self.failed)

    # -- 1. rows with evidence of an earlier request ---------------------------------------------------

    def _resolve(self, row: OrderShipment) -> bool:
        """Adopt the shipment an earlier request left, if any. True when the order may be requested anew.

        A known shipment id (from an earlier batch) is read directly; otherwise the order's shipments are
        looked up, but only once the grace period after the request has passed.
        """
        found: ShipmentInfo | None
        if row.sendcloud_shipment_id:
            try:
                found = self._safe(row, partial(self.client.get_shipment, row.sendcloud_shipment_id))
            except NotFound:
                found = None
            except _Skip:
                return False
            if found is not None and not _is_live(found):
                found = None
        else:
            if row.label_requested_at is not None:
                waited = (self.now - row.label_requested_at).total_seconds()
                grace = float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS)
                if waited < grace:
                    self._wait_for(grace - waited)
                    return False
            try:
                found = self._look_up(row)
            except _Skip:
                return False
        if found is not None:
            self._adopt(row, found)
            return False
        return self._forget(row)

    def _look_up(self, row: OrderShipment) -> ShipmentInfo | None:
        """The order's live shipment at Sendcloud (being announced or ready), preferring a ready one."""
        number = row.order.order_number
        if not number:  # nothing to look up by: never guess, keep the evidence for staff
            self._count_failed(_fail([row], "The label request's outcome is unknown and the order has no number."))
            raise _Skip
        try:
            shipments = self._safe(row, lambda: self.client.find_shipments(order_number=number))
        except NotFound:
            shipments = []
        live = [s for s in shipments if _is_live(s) and (not s.order_number or s.order_number == number)]
        live.sort(key=lambda s: not s.is_ready)
        if len(live) > 1:
            logger.warning(
                "batch=%s order=%s has %d live shipments at Sendcloud; adopting %s",
                row.batch_id,
                row.order_id,
                len(live),
                live[0].shipment_id,
            )
        return live[0] if live else None

    def _adopt(self, row: OrderShipment, info: ShipmentInfo) -> None:
        """Make ``info`` the row's shipment instead of asking for a label, then act on its state."""
        parcel_id = info.parcels[0].parcel_id if info.parcels else ""
        ids = {"sendcloud_shipment_id": info.shipment_id[:64], "sendcloud_parcel_id": parcel_id[:64]}
        if row.state == ShipmentState.LABELLING:
            changed = _current(row).update(**ids, updated_at=self.now)
        else:
            # A shipment from an earlier batch: the wait for its label starts now.
            changed = OrderShipment.objects.filter(pk=row.pk).move(
                source=[ShipmentState.LABEL_QUEUED],
                target=ShipmentState.LABELLING,
                label_requested_at=self.now,
                last_error="",
                failed_phase="",
                **ids,
            )
            if changed:
                row.state, row.label_requested_at = ShipmentState.LABELLING, self.now
        if not changed:
            return
        row.sendcloud_shipment_id, row.sendcloud_parcel_id = ids["sendcloud_shipment_id"], ids["sendcloud_parcel_id"]
        logger.info(
            "batch=%s order=%s adopted existing Sendcloud shipment %s instead of requesting a label",
            row.batch_id,
            row.order_id,
            info.shipment_id,
        )
        self._apply(row, info)

    def _forget(self, row: OrderShipment) -> bool:
        """No label exists for the row's earlier request: clear the evidence so it may be requested."""
        if not self.may_request or self.spent:
            reason = (
                f"Gave up after {self.attempt - 1} attempts; last error: {self._chunk_error()}"
                if self.may_request
                else "The label request was interrupted and its batch has ended"
            )
            self._count_failed(
                _current(row).move(
                    source=[row.state],
                    target=ShipmentState.FAILED,
                    failed_phase=Phase.LABEL,
                    last_error=f"{reason}. Sendcloud has no label for this order; re-push it to try again."[:2000],
                    label_requested_at=None,
                )
            )
            return False
        if row.state == ShipmentState.LABELLING:
            changed = _requeue([row])
        else:
            changed = OrderShipment.objects.filter(pk=row.pk, state=ShipmentState.LABEL_QUEUED).update(
                label_requested_at=None, sendcloud_shipment_id="", sendcloud_parcel_id="", updated_at=self.now
            )
        if not changed:
            return False
        row.state = ShipmentState.LABEL_QUEUED
        row.label_requested_at = None
        row.sendcloud_shipment_id = row.sendcloud_parcel_id = ""
        logger.info(
            "batch=%s order=%s has no label at Sendcloud; it may be requested again", row.batch_id, row.order_id
        )
        return True

    # -- 2. label requests -----------------------------------------------------------------------------

    def _request(self, rows: list[OrderShipment]) -> list[OrderShipment]:
        """Ask for labels in groups of at most 20; returns the rows Sendcloud made a shipment for."""
        if not rows:
            return []
        if not self.may_request:
            self._count_failed(
                _fail(rows, "The label was never requested because its batch ended; re-push the order to create it.")
            )
            return []
        accepted: list[OrderShipment] = []
        for start in range(0, len(rows), MAX_ORDERS_PER_LABEL_REQUEST):
            if self.unsafe_blocked or self._out_of_time():
                break
            group = rows[start : start + MAX_ORDERS_PER_LABEL_REQUEST]
            wait = budget.acquire(public_key=self.integration.public_key, kind=budget.Kind.UNSAFE)
            if wait:
                self.unsafe_blocked = True
                self._wait_for(wait)
                break
            accepted += self._request_group(group)
        return accepted

    def _request_group(self, group: list[OrderShipment]) -> list[OrderShipment]:
        self._heartbeat(force=True)
        stamp = timezone.now()
        # The guard: recorded before sending, so a crash from here on leaves an uncertain row, not a clean one.
        moved = OrderShipment.objects.filter(pk__in=[r.pk for r in group]).move(
            source=[ShipmentState.LABEL_QUEUED],
            target=ShipmentState.LABELLING,
            label_requested_at=stamp,
            sendcloud_shipment_id="",
            sendcloud_parcel_id="",
            last_error="",
            failed_phase="",
        )
        if moved != len(group):
            mine = set(
                OrderShipment.objects.filter(
                    pk__in=[r.pk for r in group], state=ShipmentState.LABELLING, label_requested_at=stamp
                ).values_list("pk", flat=True)
            )
            group = [r for r in group if r.pk in mine]
        if not group:
            return []
        for row in group:
            row.state = ShipmentState.LABELLING
            row.label_requested_at = stamp
            row.sendcloud_shipment_id = row.sendcloud_parcel_id = ""
        by_order_id = {payloads.sendcloud_order_id(row.order): row for row in group}
        just_pushed = any(r.pushed_at is not None and r.pushed_at >= self.now - _JUST_PUSHED for r in group)
        self.call_log.for_orders([row.order_id for row in group])
        logger.info(
            "batch=%s requesting labels path=%s orders=%s", group[0].batch_id, LABELS_PATH, [r.order_id for r in group]
        )
        try:
            result = self.client.create_labels(
                integration_id=self.integration.integration_id,
                orders=list(by_order_id),
                sender_address_id=self.integration.sender_address_id,
                ship_with=_ship_with(self.integration),
                orders_just_pushed=just_pushed,
            )
        except AuthenticationError as exc:
            # 401/403: Sendcloud did not act, so these rows certainly have no label.
            self._count_failed(_fail(group, exc.message, clear_request=True))
            self._halt(exc)
        except Conflict as exc:
            return self._conflict(group, exc)
        except TransientError as exc:
            self._transient_request(group, exc)
            return []
        except SendcloudError as exc:
            # The request as a whole was refused (4xx): no label was made for any of its orders.
            self._count_failed(_fail(group, f"Sendcloud refused the label request: {exc.message}", clear_request=True))
            return []
        return self._record(group, by_order_id, result)

    def _record(
        self, group: list[OrderShipment], by_order_id: dict[str, OrderShipment], result: LabelRequestResult
    ) -> list[OrderShipment]:
        """Store what the mixed 202 said, order by order. Returns the rows that got a shipment."""
        ids: dict[int, tuple[str, str]] = {}
        for item in result.accepted:
            row = by_order_id.get(item.order_id)
            if row is None:
                logger.warning("batch=%s Sendcloud answered for unknown order_id %s", group[0].batch_id, item.order_id)
                continue
            if not item.shipment_id:
                continue  # accepted, but without a shipment id: stays uncertain and is looked up (below)
            ids[row.pk] = (item.shipment_id[:64], (item.parcel_ids[0] if item.parcel_ids else "")[:64])
        accepted = self._store_ids([row for row in group if row.pk in ids], ids)

        retry_message = ""
        for order_id, message in result.rejected.items():
            row = by_order_id[order_id]
            if order_id not in result.retryable:
                self._count_failed(_fail([row], f"Sendcloud refused the label: {message}", clear_request=True))
            elif self.exhausted:
                error = f"Gave up after {self.attempt} attempts; last error: {message}"
                self._count_failed(_fail([row], error, clear_request=True))
            else:
                # Temporary (e.g. not visible yet after its push): Sendcloud made nothing, so ask again later.
                _requeue([row])
                retry_message = retry_message or message
        if retry_message:
            self._failure(f"Sendcloud could not label yet: {retry_message}", processing.backoff_seconds(self.attempt))

        answered = {row.pk for row in accepted} | {by_order_id[o].pk for o in result.rejected}
        silent = [row for row in group if row.pk not in answered]
        if silent:
            # Unaccounted for (or accepted without a shipment id): uncertain, so looked up before any new request.
            logger.warning(
                "batch=%s Sendcloud said nothing clear about orders=%s; their shipments will be looked up",
                group[0].batch_id,
                [r.order_id for r in silent],
            )
            self._failure(
                "Sendcloud did not say whether it made a label for some orders; looking them up.",
                max(processing.backoff_seconds(self.attempt), float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS)),
            )
        return accepted

    def _store_ids(self, rows: list[OrderShipment], ids: dict[int, tuple[str, str]]) -> list[OrderShipment]:
        """Record the shipments Sendcloud made, in one statement for the whole group.

        Conditional like every write to a LABELLING row: only rows still on this request are updated.
        """
        if not rows:
            return []
        stamp = rows[0].label_requested_at
        changed = OrderShipment.objects.filter(
            pk__in=list(ids), state=ShipmentState.LABELLING, label_requested_at=stamp
        ).update(
            sendcloud_shipment_id=Case(*(When(pk=pk, then=Value(s)) for pk, (s, _) in ids.items())),
            sendcloud_parcel_id=Case(*(When(pk=pk, then=Value(p)) for pk, (_, p) in ids.items())),
            updated_at=self.now,
        )
        if changed != len(rows):  # another worker moved some of them meanwhile: keep only what we wrote
            mine = set(
                OrderShipment.objects.filter(
                    pk__in=list(ids), state=ShipmentState.LABELLING, label_requested_at=stamp
                ).values_list("pk", flat=True)
            )
            rows = [row for row in rows if row.pk in mine]
        for row in rows:
            row.sendcloud_shipment_id, row.sendcloud_parcel_id = ids[row.pk]
            row.updated_at = self.now
        return rows

    def _conflict(self, group: list[OrderShipment], exc: Conflict) -> list[OrderShipment]:
        """409: a shipment exists already. Adopt it; look the others up now instead of asking again."""
        logger.warning("batch=%s %s", group[0].batch_id, exc.message)
        existing = exc.shipment()
        for row in group:
            if existing is not None and (
                len(group) == 1 or (existing.order_number and existing.order_number == row.order.order_number)
            ):
                found: ShipmentInfo | None = existing
            else:
                try:
                    found = self._look_up(row)
                except _Skip:
                    continue
            if found is not None and _is_live(found):
                self._adopt(row, found)
            else:
                # The request was refused (4xx), so nothing was made for this order by it.
                _requeue([row])
                if self.exhausted:
                    error = f"Gave up after {self.attempt} attempts; last error: {exc.message}"
                    self._count_failed(_fail([row], error))
                else:
                    self._failure(exc.message, processing.backoff_seconds(self.attempt))
        return []

    def _transient_request(self, group: list[OrderShipment], exc: TransientError) -> None:
        """Sendcloud is in trouble: send no more label requests in this run, and come back later."""
        self.unsafe_blocked = True
        if exc.outcome_uncertain:
            # Sendcloud may have made the labels: the rows stay LABELLING without a shipment id and are
            # looked up (after the grace period) before anything is asked again — even on the last attempt.
            logger.warning(
                "batch=%s orders=%s label request outcome uncertain (%s); will look them up",
                group[0].batch_id,
                [r.order_id for r in group],
                exc.message,
            )
            self._failure(
                exc.message,
                max(
                    processing.backoff_seconds(self.attempt, exc.retry_after),
                    float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS),
                ),
            )
            return
        # Sendcloud did not act (429, connection refused, still processing): no label exists.
        _requeue(group)
        if self.exhausted:
            error = f"Gave up after {self.attempt} attempts; last error: {exc.message}"
            self._count_failed(_fail(group, error))
            return
        self._failure(exc.message, processing.backoff_seconds(self.attempt, exc.retry_after))

    # -- 3. results ------------------------------------------------------------------------------------

    def _poll(self, rows: list[OrderShipment]) -> None:
        """Read the state of the rows' shipments: one ``GET /v3/shipments`` per 100, not one GET per order.

        GETs are the scarce budget here (1000 a minute for the account), so the rows that are due are read
        in pages of ``shipment_uuids``; rows not due yet fill the pages' spare room for free. A lone row is
        read with ``GET /v3/shipments/{id}``, which costs the same single GET.
        """
        candidates = [r for r in rows if r.state == ShipmentState.LABELLING and r.sendcloud_shipment_id]
        if not candidates:
            return
        self._heartbeat(force=True)
        due_in = {row.pk: self._due_in(row) for row in candidates}
        due = [r for r in candidates if due_in[r.pk] <= 0]
        early = [r for r in candidates if due_in[r.pk] > 0]
        room = -len(due) % _POLL_PAGE
        polled = due + early[:room] if due else []
        for row in early[len(polled) - len(due) :]:
            self._wait_for(due_in[row.pk])
        for start in range(0, len(polled), _POLL_PAGE):
            if self.safe_blocked or self._out_of_time():
                break
            page = polled[start : start + _POLL_PAGE]
            if len(page) == 1:
                self._poll_one(page[0])
            else:
                self._poll_many(page)

    def _poll_one(self, row: OrderShipment) -> None:
        try:
            info = self._safe(row, partial(self.client.get_shipment, row.sendcloud_shipment_id))
        except NotFound:
            self._pending(row)  # saved asynchronously: not readable yet
            return
        except _Skip:
            return
        self._apply(row, info)

    def _poll_many(self, rows: list[OrderShipment]) -> None:
        """Up to 100 rows' shipments through the list endpoint, following its cursor if it pages.

        A shipment missing from a filtered answer is not readable yet, exactly like a 404 on the shipment
        itself. Should the answer hold shipments that were not asked for, the filter was not applied; then
        nothing in it can be trusted to be complete, and the rows still unread are read one by one — as
        they are when the list endpoint refuses the query (a 4xx other than 401/403).
        """
        wanted = list(dict.fromkeys(row.sendcloud_shipment_id for row in rows))
        asked = set(wanted)
        found: dict[str, ShipmentInfo] = {}
        trusted = True
        failure: TransientError | None = None
        cursor: str | None = None
        while True:
            call = partial(self.client.list_shipments, shipment_ids=wanted, page_size=_POLL_PAGE, cursor=cursor)
            try:
                page = self._read(rows, call)
            except _Skip:
                return  # the budget is spent: the rows stay due
            except TransientError as exc:
                failure = exc
                break
            except SendcloudError as exc:
                logger.warning("batch=%s listing shipments failed (%s); reading them one by one", rows[0].batch_id, exc)
                trusted = False
                break
            before = len(found)
            for info in page.shipments:
                if info.shipment_id in asked:
                    found[info.shipment_id] = info
                else:
                    trusted = False
            if not trusted:
                logger.warning(
                    "batch=%s GET /v3/shipments answered shipments that were not asked for; reading one by one",
                    rows[0].batch_id,
                )
            if not trusted or page.next_cursor is None or len(found) == len(wanted) or len(found) == before:
                break
            cursor = page.next_cursor
        unread: list[OrderShipment] = []
        for row in rows:
            shipment = found.get(row.sendcloud_shipment_id)
            if shipment is not None:
                self._apply(row, shipment)
            elif failure is None and trusted:
                self._pending(row)
            else:
                unread.append(row)
        if failure is not None:
            if unread:
                self._read_failed(unread, failure)
            return
        for row in unread:
            if self.safe_blocked or self._out_of_time():
                break
            self._poll_one(row)

    def _apply(self, row: OrderShipment, info: ShipmentInfo) -> None:
        """Act on a shipment's state: queue the ready label for download, fail a refusal, or keep waiting."""
        if info.failed_message is not None:
            self._count_failed(_fail([row], f"The carrier refused the shipment: {info.failed_message}"))
        elif info.is_cancelled:
            self._count_failed(_fail([row], "The shipment was cancelled in Sendcloud before its label was stored."))
        elif info.is_ready:
            parcel = next((p for p in info.parcels if p.parcel_id == row.sendcloud_parcel_id), info.parcels[0])
            self.ready.append(_ReadyLabel(row=row, info=info, parcel=parcel))
        else:
            self._pending(row)

    # -- 4. label documents ----------------------------------------------------------------------------

    def _download(self, ready: list[_ReadyLabel]) -> None:
        """Fetch and store the ready labels: one bulk GET per 20 parcels, split into a file per order.

        A group whose document cannot be trusted page by page is fetched parcel by parcel instead; a
        lone label is fetched on its own (the same single GET).
        """
        for start in range(0, len(ready), MAX_PARCELS_PER_DOCUMENT_REQUEST):
            if self.safe_blocked or self._out_of_time():
                return
            group = ready[start : start + MAX_PARCELS_PER_DOCUMENT_REQUEST]
            if len(group) > 1:
                try:
                    pages = self._download_group(group)
                except _Skip:
                    continue
                if pages is not None:
                    for item, pdf in zip(group, pages, strict=True):
                        self._save(item, pdf)
                    continue
            for item in group:
                if self.safe_blocked or self._out_of_time():
                    return
                self._download_one(item)

    def _download_group(self, group: list[_ReadyLabel]) -> list[bytes] | None:
        """The group's labels as one PDF per parcel, or None when they must be fetched one by one.

        ``GET /v3/parcel-documents/label`` answers one document for all the parcels; page *i* is taken to
        be ``parcels[i]``'s label only when the page count matches and no page shows another parcel's
        tracking number instead of its own (see :func:`split_label_pages`). A 404 (some label not served
        yet) or another refusal also falls back: the single downloads tell which parcel is missing, and
        the others are stored meanwhile. Raises ``_Skip`` when the call could not be made or failed
        transiently; the rows then wait, as for a single download.
        """
        rows = [item.row for item in group]
        parcel_ids = [item.parcel.parcel_id for item in group]
        try:
            pdf = self._read(rows, partial(self.client.download_labels, parcel_ids, paper_size=LABEL_PAPER_SIZE))
        except TransientError as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:
                logger.warning("batch=%s bulk label download was not a PDF; fetching one by one", rows[0].batch_id)
                return None
            for row in rows:
                self._pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
            raise _Skip from None
        except SendcloudError as exc:
            logger.warning("batch=%s bulk label download refused (%s); fetching one by one", rows[0].batch_id, exc)
            return None
        pages = split_label_pages(pdf, [item.parcel for item in group])
        if pages is None:
            logger.warning(
                "batch=%s bulk label document for parcels %s does not match them page by page; fetching one by one",
                rows[0].batch_id,
                parcel_ids,
            )
        return pages

    def _download_one(self, item: _ReadyLabel) -> None:
        """``GET /v3/parcels/{id}/documents/label`` for one row; a missing or unreadable PDF is waited for."""
        row = item.row
        try:
            pdf = self._safe(row, partial(self.client.download_label, item.parcel.parcel_id), transient_is_pending=True)
        except NotFound:
            self._pending(row)  # the document may lag behind the status
            return
        except TransientError as exc:
            # The label exists; its PDF is not served yet (or not now). Waiting costs nothing but GETs,
            # and failing an order whose label was bought would only invite a second one.
            self._pending(row, problem=exc.message, at_least=exc.retry_after or 0.0)
            return
        except _Skip:
            return
        if count_pdf_pages(pdf) < 1:
            self._pending(row, problem="Sendcloud served a label that is not a readable PDF.")
            return
        self._save(item, pdf)

    def _save(self, item: _ReadyLabel, pdf: bytes) -> None:
        """Store the label file and move the row to LABELLED, if it is still on the request we read."""
        row, info, parcel = item.row, item.info, item.parcel
        storage = row.label_file.storage
        name = label_file_name(row, parcel.parcel_id)
        if storage.exists(name):  # a run that died after saving; the same parcel has the same label
            storage.delete(name)
        name = storage.save(name, ContentFile(pdf))
        moved = _current(row).move(
            source=[ShipmentState.LABELLING],
            target=ShipmentState.LABELLED,
            label_file=name,
            sendcloud_parcel_id=parcel.parcel_id[:64],
            tracking_number=parcel.tracking_number[:100],
            tracking_url=parcel.tracking_url[:500],
            carrier=(info.carrier or parcel.carrier)[:100],
            labelled_at=timezone.now(),
            last_error="",
            failed_phase="",
        )
        if moved:
            self.labelled += 1
            logger.info(
                "batch=%s order=%s label stored (shipment %s, parcel %s)",
                row.batch_id,
                row.order_id,
                info.shipment_id,
                parcel.parcel_id,
            )

    def _pending(self, row: OrderShipment, *, problem: str = "", at_least: float = 0.0) -> None:
        """Still being made: wait, but not forever (``SENDCLOUD_LABEL_MAX_WAIT_SECONDS`` after the request).

        A timed-out row keeps its shipment id: a re-push reads that shipment and adopts a late label.
        """
        limit = float(settings.SENDCLOUD_LABEL_MAX_WAIT_SECONDS)
        requested = row.label_requested_at or row.state_changed_at
        if (self.now - requested).total_seconds() >= limit:
            minutes = f"{limit / 60:g} minute{'' if limit == 60 else 's'}"
            error = f"Sendcloud did not produce the label within {minutes}."
            if problem:
                error = f"{error[:-1]}; last error: {problem}"
            self._count_failed(_fail([row], error))
            return
        self.polled_pending.append(row.pk)
        self._wait_for(max(self._interval(row), at_least))

    def _interval(self, row: OrderShipment) -> float:
        """Seconds between two polls of a row: ``POLL_SECONDS`` at first, growing with the wait, capped.

        Polls are shared (a chunk's shipments are read in one list GET, its PDFs fetched 20 at a time), but
        GETs are still limited to 1000 a minute per account, so a label that takes long is asked about less
        often rather than every couple of seconds.
        """
        base = float(settings.SENDCLOUD_LABEL_POLL_SECONDS)
        cap = max(base, float(settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS))
        requested = row.label_requested_at or row.state_changed_at
        return min(max(base, (self.now - requested).total_seconds() / 4), cap)

    def _due_in(self, row: OrderShipment) -> float:
        """Seconds until the row should be polled again (``updated_at`` marks its last poll)."""
        return self._interval(row) - (self.now - row.updated_at).total_seconds()

    def _mark_polled(self) -> None:
        if self.polled_pending:
            OrderShipment.objects.filter(pk__in=self.polled_pending, state=ShipmentState.LABELLING).update(
                updated_at=self.now
            )

    # -- calls, failures, waits ------------------------------------------------------------------------

    def _read(self, rows: Sequence[OrderShipment], call: Callable[[], T]) -> T:
        """One GET about ``rows`` within the SAFE budget. Raises ``_Skip`` when the budget is spent.

        Refused credentials halt the run; every other ``SendcloudError`` is passed on for the caller to
        interpret, because what a failed read means depends on what was read.
        """
        wait = budget.acquire(public_key=self.integration.public_key, kind=budget.Kind.SAFE)
        if wait:
            self.safe_blocked = True
            self._wait_for(wait)
            raise _Skip
        self._heartbeat()
        self.call_log.for_orders([row.order_id for row in rows])
        try:
            return call()
        except AuthenticationError as exc:
            self._halt(exc)

    def _safe(self, row: OrderShipment, call: Callable[[], T], *, transient_is_pending: bool = False) -> T:
        """One GET about ``row`` within the SAFE budget. Raises ``_Skip`` when it could not be used.

        ``NotFound`` is passed on for the caller to interpret, and so is a ``TransientError`` when
        ``transient_is_pending``. Otherwise a transient error counts an attempt; on the last one the row
        fails, keeping its evidence for a later re-push.
        """
        try:
            return self._read([row], call)
        except NotFound:
            raise
        except TransientError as exc:
            if transient_is_pending:
                raise
            self._read_failed([row], exc)
        except SendcloudError as exc:
            self._count_failed(_fail([row], exc.message))
        raise _Skip

    def _read_failed(self, rows: list[OrderShipment], exc: TransientError) -> None:
        """A read about ``rows`` failed transiently: count an attempt, or on the last one fail the rows.

        Failed rows keep their evidence (request time, shipment id): a re-push reads their shipment first.
        """
        logger.warning(
            "batch=%s orders=%s Sendcloud read failed: %s", rows[0].batch_id, [r.order_id for r in rows], exc.message
        )
        if self.exhausted:
            self._count_failed(_fail(rows, f"Gave up after {self.attempt} attempts; last error: {exc.message}"))
        else:
            self._failure(exc.message, processing.backoff_seconds(self.attempt, exc.retry_after))

    def _halt(self, exc: AuthenticationError) -> NoReturn:
        """401/403: the integration is disconnected and every label row of this run fails.

        Their evidence stays: a row may have a label from an earlier, successful request, and a re-push
        after the credentials are fixed looks it up first.
        """
        processing._disconnect(self.integration, exc.message)
        if self.chunk is not None:
            in_flight = OrderShipment.objects.filter(
                batch_id=self.chunk.batch_id, chunk_number=self.chunk.number, state__in=LABEL_STATES
            )
        else:
            in_flight = OrderShipment.objects.filter(pk__in=[r.pk for r in self.rows], state__in=LABEL_STATES)
        self._count_failed(
            in_flight.move(
                source=LABEL_STATES, target=ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error=exc.message
            )
        )
        raise _Halt

    def _failure(self, message: str, wait: float) -> None:
        """A transient failure: come back after ``wait`` and count an attempt."""
        self.failure_wait = wait if self.failure_wait is None else max(self.failure_wait, wait)
        if self.chunk is not None:
            PushChunk.objects.filter(pk=self.chunk.pk).update(last_error=message[:2000])
            self.chunk.last_error = message[:2000]

    def _out_of_time(self) -> bool:
        """True (and a prompt hand-back is due) once this run has taken ``_RUN_SECONDS``."""
        if time.monotonic() - self._started < _RUN_SECONDS:
            return False
        self._wait_for(0.0)
        return True

    def _wait_for(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.wait = seconds if self.wait is None else min(self.wait, seconds)

    def _count_failed(self, count: int) -> None:
        self.failed += count

    def _chunk_error(self) -> str:
        return (self.chunk.last_error if self.chunk is not None else "") or "unknown"

    def _heartbeat(self, *, force: bool = False) -> None:
        """Refresh the chunk's claim, so the sweep does not take a long run for a dead worker."""
        if self.chunk is None or (not force and time.monotonic() - self._last_heartbeat < _HEARTBEAT_SECONDS):
            return
        self._last_heartbeat = time.monotonic()
        PushChunk.objects.filter(pk=self.chunk.pk, status=ChunkStatus.RUNNING).update(claimed_at=timezone.now())

    def _where(self) -> tuple[object, object]:
        return (self.chunk.batch_id, self.chunk.number) if self.chunk is not None else (None, None)


def _has_evidence(row: OrderShipment) -> bool:
    """A label may exist for this row: a request was recorded or a shipment is known."""
    return row.label_requested_at is not None or bool(row.sendcloud_shipment_id) or row.state == ShipmentState.LABELLING


def _known_current(row: OrderShipment) -> bool:
    """LABELLING with its shipment known: this attempt's shipment, to be polled."""
    return row.state == ShipmentState.LABELLING and bool(row.sendcloud_shipment_id)


def _is_live(info: ShipmentInfo) -> bool:
    """Being announced or announced: a label exists or is on its way (not refused, not cancelled)."""
    return info.failed_message is None and not info.is_cancelled


def _current(row: OrderShipment) -> OrderShipmentQuerySet:
    """The row, if it is still in the state and on the request we read it with (optimistic guard)."""
    return OrderShipment.objects.filter(pk=row.pk, state=row.state, label_requested_at=row.label_requested_at)


def _requeue(rows: Iterable[OrderShipment]) -> int:
    """LABELLING → LABEL_QUEUED with the request forgotten: only when Sendcloud certainly made no label."""
    requeued = 0
    for row in rows:
        moved = _current(row).move(
            source=[ShipmentState.LABELLING], target=ShipmentState.LABEL_QUEUED, label_requested_at=None
        )
        if moved:
            row.state, row.label_requested_at = ShipmentState.LABEL_QUEUED, None
        requeued += moved
    return requeued


def _fail(rows: Iterable[OrderShipment], error: str, *, clear_request: bool = False) -> int:
    """Fail label rows (phase LABEL) that are still as we read them. ``clear_request`` only when
    Sendcloud certainly made no label for them."""
    failed = 0
    extra: dict[str, datetime | None] = {"label_requested_at": None} if clear_request else {}
    for row in rows:
        moved = _current(row).move(
            source=[row.state], target=ShipmentState.FAILED, failed_phase=Phase.LABEL, last_error=error[:2000], **extra
        )
        if moved:
            logger.info("batch=%s order=%s label failed: %s", row.batch_id, row.order_id, error)
            row.state = ShipmentState.FAILED
        failed += moved
    return failed


def _ship_with(integration: SendcloudIntegration) -> dict[str, object] | None:
    """The integration's default shipping option, in the shape create-labels-async expects."""
    if not integration.shipping_option_code:
        return None
    return {"type": "shipping_option_code", "properties": {"shipping_option_code": integration.shipping_option_code}}
