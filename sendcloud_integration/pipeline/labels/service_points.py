"""Before a label is requested: is the order's service point still taking parcels?

Service points close (holidays, a shop that stops, a full locker), and a label bought for a closed point
is a parcel sent back, so each order for a point is checked with
``POST /v3/service-points/{id}/check-availability`` right before its label request. A point that is not
available, or that Sendcloud does not know, fails the order (phase LABEL) with a message saying so, and no
label is requested for it.

The check is a POST, so it takes a slot of the unsafe budget like the label request itself, and the checks
must never starve the request they prepare (a group of 20 pickup orders at a budget of 20 writes a minute
would otherwise check 20 points, find no slot for the label, and check them all again next run, forever).
Two rules hold that off:

- a check takes its slot only while one more stays free (``headroom=1``), so once the checks the budget
  allows are made, the label request of the rows they cleared still finds its slot; the rows left
  unchecked wait in LABEL_QUEUED for the next run;
- a point found open is recorded on the row (``service_point_checked_at`` and ``service_point_checked_id``,
  written before the label request), and a row whose point was found open in the last
  :data:`CHECK_FRESH` is not checked again: a run that lost the label's slot to another worker leaves
  its checks for the next run to use.

The label's slot is not taken before the checks instead: it would be held in flight through the checks,
away from the account's other requests (a slot counts until its request's answer, ``sendcloud/budget.py``).

Only Sendcloud's own point id can be checked (the endpoint takes no carrier id): an order that names its
point only by the carrier's id goes on unchecked, and the carrier decides.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Case, CharField, Value, When
from django.utils import timezone

from sendcloud_integration.models import OrderShipment, ShipmentState
from sendcloud_integration.pipeline.labels.rows import fail
from sendcloud_integration.pipeline.labels.run import LabelRun
from sendcloud_integration.pipeline.outcome import backoff_seconds, gave_up
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.errors import AuthenticationError, NotFound, SendcloudError, TransientError

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

#: A point Sendcloud said was open this recently is not checked again before the label request.
CHECK_FRESH = timedelta(minutes=5)


def unavailable_message(point_id: str) -> str:
    return (
        f"The service point {point_id} is not available any more (Sendcloud's availability check said so); "
        "no label was bought. Choose another service point for the order and re-push it."
    )


def check_service_points(run: LabelRun, rows: list[OrderShipment]) -> list[OrderShipment]:
    """The rows that may be labelled now: those without a point to check, and those whose point is open.

    Rows whose point is closed or unknown fail. Rows whose check could not be made now (the budget has no
    slot to spare for it, Sendcloud is in trouble) stay LABEL_QUEUED and are left out; the run comes back
    for them. A point found open is recorded on its row before this returns.
    """
    cleared: list[OrderShipment] = []
    found_open: list[OrderShipment] = []
    now = timezone.now()
    try:
        for row in rows:
            point_id = row.order.service_point_id.strip()
            if not point_id or checked_recently(row, point_id, now):
                cleared.append(row)
            elif not (run.unsafe_blocked or run.out_of_time()) and point_is_open(run, row, point_id):
                cleared.append(row)
                found_open.append(row)
    finally:  # also when the run halts (refused credentials) midway: the checks made stand
        record_open(found_open)
    return cleared


def point_is_open(run: LabelRun, row: OrderShipment, point_id: str) -> bool:
    """Ask Sendcloud whether the row's point takes parcels. False also when it was not asked (no slot to
    spare: the run waits) or could not answer (a retry is scheduled), and when the row failed."""
    # headroom=1: the label request of the rows cleared so far keeps its slot.
    wait = budget.acquire(public_key=run.integration.public_key, kind=budget.Kind.UNSAFE, headroom=1)
    if wait:
        run.unsafe_blocked = True
        run.wait_for(wait)
        return False
    run.heartbeat()
    run.call_log.for_orders([row.order_id])
    try:
        available = run.client.check_service_point(point_id)
    except AuthenticationError as exc:
        run.halt(exc)
    except NotFound:
        run.count_failed(
            fail(
                [row],
                f"The service point {point_id} is unknown to Sendcloud; no label was bought. "
                "Choose another service point for the order and re-push it.",
            )
        )
        return False
    except TransientError as exc:
        logger.warning("batch=%s order=%s service point check failed: %s", row.batch_id, row.order_id, exc)
        if run.exhausted:
            run.count_failed(fail([row], gave_up(run.attempt, f"service point check: {exc.message}")))
        else:
            run.failure(exc.message, backoff_seconds(run.attempt, exc.retry_after))
        return False
    except (SendcloudError, ValueError) as exc:
        run.count_failed(fail([row], f"The service point {point_id} could not be checked: {exc}"))
        return False
    if not available:
        logger.info("batch=%s order=%s service point %s unavailable", row.batch_id, row.order_id, point_id)
        run.count_failed(fail([row], unavailable_message(point_id)))
    return available


def checked_recently(row: OrderShipment, point_id: str, now: datetime) -> bool:
    """Whether Sendcloud said this very point was open within :data:`CHECK_FRESH`."""
    checked_at = row.service_point_checked_at
    return row.service_point_checked_id == point_id and checked_at is not None and checked_at >= now - CHECK_FRESH


def record_open(rows: list[OrderShipment]) -> None:
    """Remember on each row that its point was found open, now (one statement for the rows).

    Not a state change: the rows stay LABEL_QUEUED. Written only while they are, so a row another worker
    moved on meanwhile is left as that worker has it.
    """
    if not rows:
        return
    stamp = timezone.now()
    for row in rows:
        row.service_point_checked_at = stamp
        row.service_point_checked_id = row.order.service_point_id.strip()
    OrderShipment.objects.filter(pk__in=[row.pk for row in rows], state=ShipmentState.LABEL_QUEUED).update(
        service_point_checked_at=stamp,
        service_point_checked_id=Case(
            *(When(pk=row.pk, then=Value(row.service_point_checked_id)) for row in rows),
            output_field=CharField(),
        ),
    )
