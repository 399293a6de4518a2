"""Step 2 of a label run: ask Sendcloud for labels, at most 20 orders per ``create-labels-async``.

Orders are grouped by the shipping option they ship with, because ``ship_with`` is a field of the whole
request: one group per option (and per 20 orders), so an express order is never labelled with the shop's
default. An order in several parcels sends them as its ``parcels`` in the same request: one shipment,
one label per parcel, and still one request per order.

The guard is written before each request: the group's rows move LABEL_QUEUED → LABELLING with
``label_requested_at`` set, in one conditional update, and only the rows that update moved are sent. From
then on a row with ``label_requested_at`` and no shipment id has an uncertain outcome, and is looked up
(step 1) before it could ever be asked for again. ``label_requested_at`` is cleared only when Sendcloud
certainly made no label.

An order delivered to a service point has the point checked first (``service_points``): a closed point
fails the order before any label is bought, and the checks never take the slot of the request they clear.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Value, When
from django.utils import timezone

from sendcloud_integration.limits import MAX_ORDERS_PER_LABEL_REQUEST
from sendcloud_integration.models import OrderShipment, ShipmentState
from sendcloud_integration.pipeline.labels.resolve import adopt, look_up
from sendcloud_integration.pipeline.labels.rows import fail, is_live, requeue, ship_with, shipping_code
from sendcloud_integration.pipeline.labels.run import LabelRun, Skip
from sendcloud_integration.pipeline.labels.service_points import check_service_points
from sendcloud_integration.pipeline.outcome import backoff_seconds, gave_up
from sendcloud_integration.sendcloud import budget, payloads
from sendcloud_integration.sendcloud.errors import AuthenticationError, Conflict, SendcloudError, TransientError
from sendcloud_integration.sendcloud.shipping_data import shipping_data
from sendcloud_integration.sendcloud.types import LabelRequestResult, ShipmentInfo

logger = logging.getLogger("sendcloud_integration.pipeline.labels")

LABELS_PATH = "/v3/orders/create-labels-async"
#: A request for orders pushed this recently may meet "not found": Sendcloud saves orders asynchronously.
JUST_PUSHED = timedelta(minutes=10)


def request(run: LabelRun, rows: list[OrderShipment]) -> list[OrderShipment]:
    """Ask for labels in groups of at most 20; returns the rows Sendcloud made a shipment for."""
    if not rows:
        return []
    if not run.may_request:
        run.count_failed(
            fail(rows, "The label was never requested because its batch ended; re-push the order to create it.")
        )
        return []
    accepted: list[OrderShipment] = []
    for code, group in label_groups(run, rows):
        if run.unsafe_blocked or run.out_of_time():
            break
        # An order for a service point is requested only once Sendcloud says its point takes parcels:
        # checked group by group, right before the group's request. The checks leave the request its
        # slot (service_points explains how), so the rows they cleared are asked for even when the
        # budget ran out during the checks.
        group = check_service_points(run, group)
        if not group:
            continue
        wait = budget.acquire(public_key=run.integration.public_key, kind=budget.Kind.UNSAFE)
        if wait:
            run.unsafe_blocked = True
            run.wait_for(wait)
            break
        accepted += request_group(run, group, code)
    return accepted


def label_groups(run: LabelRun, rows: list[OrderShipment]) -> list[tuple[str, list[OrderShipment]]]:
    """The rows in requests of at most 20 that share a shipping option, in row order within each option."""
    by_code: dict[str, list[OrderShipment]] = {}
    for row in rows:
        by_code.setdefault(shipping_code(row, run.integration), []).append(row)
    return [
        (code, same[start : start + MAX_ORDERS_PER_LABEL_REQUEST])
        for code, same in by_code.items()
        for start in range(0, len(same), MAX_ORDERS_PER_LABEL_REQUEST)
    ]


def request_group(run: LabelRun, group: list[OrderShipment], code: str = "") -> list[OrderShipment]:
    run.heartbeat(force=True)
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
    parcels = {
        order_id: split
        for order_id, row in by_order_id.items()
        if (split := payloads.label_parcels(shipping_data(row.order, run.integration))) is not None
    }
    just_pushed = any(r.pushed_at is not None and r.pushed_at >= run.now - JUST_PUSHED for r in group)
    run.call_log.for_orders([row.order_id for row in group])
    logger.info(
        "batch=%s requesting labels path=%s orders=%s", group[0].batch_id, LABELS_PATH, [r.order_id for r in group]
    )
    try:
        result = run.client.create_labels(
            integration_id=run.integration.integration_id,
            orders=list(by_order_id),
            sender_address_id=run.integration.sender_address_id,
            ship_with=ship_with(code),
            orders_just_pushed=just_pushed,
            parcels=parcels,
        )
    except AuthenticationError as exc:
        # 401/403: Sendcloud did not act, so these rows certainly have no label.
        run.count_failed(fail(group, exc.message, clear_request=True))
        run.halt(exc)
    except Conflict as exc:
        return conflict(run, group, exc)
    except TransientError as exc:
        transient_request(run, group, exc)
        return []
    except SendcloudError as exc:
        # The request as a whole was refused (4xx): no label was made for any of its orders.
        run.count_failed(fail(group, f"Sendcloud refused the label request: {exc.message}", clear_request=True))
        return []
    return record(run, group, by_order_id, result)


def record(
    run: LabelRun, group: list[OrderShipment], by_order_id: dict[str, OrderShipment], result: LabelRequestResult
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
    accepted = store_ids(run, [row for row in group if row.pk in ids], ids)

    retry_message = ""
    for order_id, message in result.rejected.items():
        row = by_order_id[order_id]
        if order_id not in result.retryable:
            run.count_failed(fail([row], f"Sendcloud refused the label: {message}", clear_request=True))
        elif run.exhausted:
            error = gave_up(run.attempt, message)
            run.count_failed(fail([row], error, clear_request=True))
        else:
            # Temporary (e.g. not visible yet after its push): Sendcloud made nothing, so ask again later.
            requeue([row])
            retry_message = retry_message or message
    if retry_message:
        run.failure(f"Sendcloud could not label yet: {retry_message}", backoff_seconds(run.attempt))

    answered = {row.pk for row in accepted} | {by_order_id[o].pk for o in result.rejected}
    silent = [row for row in group if row.pk not in answered]
    if silent:
        # Unaccounted for (or accepted without a shipment id): uncertain, so looked up before any new request.
        logger.warning(
            "batch=%s Sendcloud said nothing clear about orders=%s; their shipments will be looked up",
            group[0].batch_id,
            [r.order_id for r in silent],
        )
        run.failure(
            "Sendcloud did not say whether it made a label for some orders; looking them up.",
            max(backoff_seconds(run.attempt), float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS)),
        )
    return accepted


def store_ids(run: LabelRun, rows: list[OrderShipment], ids: dict[int, tuple[str, str]]) -> list[OrderShipment]:
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
        updated_at=run.now,
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
        row.updated_at = run.now
    return rows


def conflict(run: LabelRun, group: list[OrderShipment], exc: Conflict) -> list[OrderShipment]:
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
                found = look_up(run, row)
            except Skip:
                continue
        if found is not None and is_live(found):
            adopt(run, row, found)
        else:
            # The request was refused (4xx), so nothing was made for this order by it.
            requeue([row])
            if run.exhausted:
                error = gave_up(run.attempt, exc.message)
                run.count_failed(fail([row], error))
            else:
                run.failure(exc.message, backoff_seconds(run.attempt))
    return []


def transient_request(run: LabelRun, group: list[OrderShipment], exc: TransientError) -> None:
    """Sendcloud is in trouble: send no more label requests in this run, and come back later."""
    run.unsafe_blocked = True
    if exc.outcome_uncertain:
        # Sendcloud may have made the labels: the rows stay LABELLING without a shipment id and are
        # looked up (after the grace period) before anything is asked again — even on the last attempt.
        logger.warning(
            "batch=%s orders=%s label request outcome uncertain (%s); will look them up",
            group[0].batch_id,
            [r.order_id for r in group],
            exc.message,
        )
        run.failure(
            exc.message,
            max(
                backoff_seconds(run.attempt, exc.retry_after),
                float(settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS),
            ),
        )
        return
    # Sendcloud did not act (429, connection refused, still processing): no label exists.
    requeue(group)
    if run.exhausted:
        error = gave_up(run.attempt, exc.message)
        run.count_failed(fail(group, error))
        return
    run.failure(exc.message, backoff_seconds(run.attempt, exc.retry_after))
