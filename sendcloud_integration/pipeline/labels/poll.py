"""Step 3 of a label run: read the state of the rows' shipments, a hundred per ``GET /v3/shipments``.

GETs are the scarce budget here (1000 a minute for the account), so rows that are due are read in pages
of ``shipment_uuids``; rows not due yet fill a page's spare room for free. A ready label is queued for
download (step 4), a carrier refusal or a cancellation fails the order, anything else keeps waiting.
"""

from __future__ import annotations

import logging
from functools import partial

from sendcloud_integration.limits import MAX_IDS_PER_SHIPMENT_FILTER, MAX_SHIPMENTS_PAGE_SIZE
from sendcloud_integration.models import OrderShipment, ShipmentState
from sendcloud_integration.pipeline.labels.rows import fail
from sendcloud_integration.pipeline.labels.run import LabelRun, ReadyLabel, Skip
from sendcloud_integration.sendcloud.errors import NotFound, SendcloudError, TransientError
from sendcloud_integration.sendcloud.types import ShipmentInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

#: Shipments read per ``GET /v3/shipments`` when polling: the spec's largest page and id filter (100).
POLL_PAGE = min(MAX_SHIPMENTS_PAGE_SIZE, MAX_IDS_PER_SHIPMENT_FILTER)


def poll(run: LabelRun, rows: list[OrderShipment]) -> None:
    """Read the state of the rows' shipments: one ``GET /v3/shipments`` per 100, not one GET per order.

    GETs are the scarce budget here (1000 a minute for the account), so the rows that are due are read
    in pages of ``shipment_uuids``; rows not due yet fill the pages' spare room for free. A lone row is
    read with ``GET /v3/shipments/{id}``, which costs the same single GET.
    """
    candidates = [r for r in rows if r.state == ShipmentState.LABELLING and r.sendcloud_shipment_id]
    if not candidates:
        return
    run.heartbeat(force=True)
    due_in = {row.pk: run.due_in(row) for row in candidates}
    due = [r for r in candidates if due_in[r.pk] <= 0]
    early = [r for r in candidates if due_in[r.pk] > 0]
    room = -len(due) % POLL_PAGE
    polled = due + early[:room] if due else []
    for row in early[len(polled) - len(due) :]:
        run.wait_for(due_in[row.pk])
    for start in range(0, len(polled), POLL_PAGE):
        if run.safe_blocked or run.out_of_time():
            break
        page = polled[start : start + POLL_PAGE]
        if len(page) == 1:
            poll_one(run, page[0])
        else:
            poll_many(run, page)


def poll_one(run: LabelRun, row: OrderShipment) -> None:
    try:
        info = run.safe(row, partial(run.client.get_shipment, row.sendcloud_shipment_id))
    except NotFound:
        run.pending(row)  # saved asynchronously: not readable yet
        return
    except Skip:
        return
    apply(run, row, info)


def poll_many(run: LabelRun, rows: list[OrderShipment]) -> None:
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
        call = partial(run.client.list_shipments, shipment_ids=wanted, page_size=POLL_PAGE, cursor=cursor)
        try:
            page = run.read(rows, call)
        except Skip:
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
            apply(run, row, shipment)
        elif failure is None and trusted:
            run.pending(row)
        else:
            unread.append(row)
    if failure is not None:
        if unread:
            run.read_failed(unread, failure)
        return
    for row in unread:
        if run.safe_blocked or run.out_of_time():
            break
        poll_one(run, row)


def apply(run: LabelRun, row: OrderShipment, info: ShipmentInfo) -> None:
    """Act on a shipment's state: queue the ready label for download, fail a refusal, or keep waiting."""
    if info.failed_message is not None:
        run.count_failed(fail([row], f"The carrier refused the shipment: {info.failed_message}"))
    elif info.is_cancelled:
        run.count_failed(fail([row], "The shipment was cancelled in Sendcloud before its label was stored."))
    elif info.is_ready:
        # Every parcel of the shipment gets its label stored; the one the row knew of comes first.
        primary = next((p for p in info.parcels if p.parcel_id == row.sendcloud_parcel_id), info.parcels[0])
        parcels = [primary, *(p for p in info.parcels if p is not primary)]
        run.ready.append(ReadyLabel(row=row, info=info, parcels=parcels))
    else:
        run.pending(row)
