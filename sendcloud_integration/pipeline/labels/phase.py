"""The label phase of a chunk: ask Sendcloud for labels, wait for them, store them — never twice.

``pipeline.process.process_chunk`` calls :func:`label_phase` after the push phase of a batch that creates
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

from collections.abc import Sequence

from sendcloud_integration.models import (
    OrderShipment,
    Phase,
    PushChunk,
    SendcloudIntegration,
    ShipmentState,
    integration_problem,
)
from sendcloud_integration.pipeline.labels.download import download
from sendcloud_integration.pipeline.labels.poll import poll
from sendcloud_integration.pipeline.labels.request import request
from sendcloud_integration.pipeline.labels.resolve import resolve
from sendcloud_integration.pipeline.labels.rows import LABEL_STATES, fail, has_evidence, known_current
from sendcloud_integration.pipeline.labels.run import ChunkScope, Halt, LabelRun, OrphanScope
from sendcloud_integration.pipeline.outcome import ChunkOutcome
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.factory import build_client
from webshop.models import load_lines_and_parcels


def label_phase(
    *,
    chunk: PushChunk,
    integration: SendcloudIntegration,
    client: SendcloudV3Client,
    call_log: CallLog,
) -> ChunkOutcome:
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
    load_lines_and_parcels(row.order for row in rows)
    if not rows:
        return ChunkOutcome()
    run = LabelRun(integration=integration, client=client, call_log=call_log, scope=ChunkScope(chunk))
    work_through(run, rows)
    return run.outcome(
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
        if integration is None or integration_problem(integration) is not None:
            settled += fail(
                shop_rows,
                "The shop's SendCloud integration is unusable, so this label could not be checked; "
                "re-push the order once it is fixed.",
            )
            continue
        call_log = CallLog(shop_id=shop_id)
        try:
            run = LabelRun(
                integration=integration,
                client=build_client(integration, call_log),
                call_log=call_log,
                scope=OrphanScope(),
            )
            work_through(run, shop_rows)
        finally:
            call_log.flush()
        settled += run.labelled + run.failed
    return settled


def work_through(run: LabelRun, rows: list[OrderShipment]) -> None:
    """Resolve rows with evidence, request labels for the clean ones, poll the known shipments, and
    download the labels that are ready (in bulk, after every read, so they share their GETs)."""
    run.rows = rows
    to_resolve = [r for r in rows if has_evidence(r) and not known_current(r)]
    to_poll = [r for r in rows if known_current(r)]
    to_request = [r for r in rows if r.state == ShipmentState.LABEL_QUEUED and not has_evidence(r)]
    try:
        for row in to_resolve:
            if run.safe_blocked or run.out_of_time():
                break
            if resolve(run, row):
                to_request.append(row)
        to_request.sort(key=lambda r: r.pk)
        accepted = request(run, to_request)
        poll(run, to_poll + accepted)
        download(run, run.ready)
    except Halt:
        run.wait = run.failure_wait = None  # every label row of the run has failed: nothing to come back for
        return
    finally:
        run.mark_polled()
