"""Before a label is requested: is the order's service point still taking parcels?

Service points close (holidays, a shop that stops, a full locker), and a label bought for a closed point
is a parcel sent back, so each order for a point is checked with
``POST /v3/service-points/{id}/check-availability`` right before its label request. A point that is not
available, or that Sendcloud does not know, fails the order (phase LABEL) with a message saying so, and no
label is requested for it. The check is a POST, so it takes a slot of the unsafe budget like the label
request itself.

Only Sendcloud's own point id can be checked (the endpoint takes no carrier id): an order that names its
point only by the carrier's id goes on unchecked, and the carrier decides.
"""

from __future__ import annotations

import logging

from sendcloud_integration.models import OrderShipment
from sendcloud_integration.pipeline.labels.rows import fail
from sendcloud_integration.pipeline.labels.run import LabelRun
from sendcloud_integration.pipeline.outcome import backoff_seconds, gave_up
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.errors import AuthenticationError, NotFound, SendcloudError, TransientError

logger = logging.getLogger("sendcloud_integration.pipeline.labels")


def unavailable_message(point_id: str) -> str:
    return (
        f"The service point {point_id} is not available any more (Sendcloud's availability check said so); "
        "no label was bought. Choose another service point for the order and re-push it."
    )


def check_service_points(run: LabelRun, rows: list[OrderShipment]) -> list[OrderShipment]:
    """The rows that may be labelled now: those without a point to check, and those whose point is open.

    Rows whose point is closed or unknown fail. Rows whose check could not be made now (the budget is spent,
    Sendcloud is in trouble) stay LABEL_QUEUED and are left out; the run comes back for them.
    """
    cleared: list[OrderShipment] = []
    for row in rows:
        point_id = row.order.service_point_id.strip()
        if not point_id:
            cleared.append(row)
            continue
        if run.unsafe_blocked or run.out_of_time():
            continue
        wait = budget.acquire(public_key=run.integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            run.unsafe_blocked = True
            run.wait_for(wait)
            continue
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
            continue
        except TransientError as exc:
            logger.warning("batch=%s order=%s service point check failed: %s", row.batch_id, row.order_id, exc)
            if run.exhausted:
                run.count_failed(fail([row], gave_up(run.attempt, f"service point check: {exc.message}")))
            else:
                run.failure(exc.message, backoff_seconds(run.attempt, exc.retry_after))
            continue
        except (SendcloudError, ValueError) as exc:
            run.count_failed(fail([row], f"The service point {point_id} could not be checked: {exc}"))
            continue
        if available:
            cleared.append(row)
        else:
            logger.info("batch=%s order=%s service point %s unavailable", row.batch_id, row.order_id, point_id)
            run.count_failed(fail([row], unavailable_message(point_id)))
    return cleared
