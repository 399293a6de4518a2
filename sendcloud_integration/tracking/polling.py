"""The polling fallback for integrations whose webhook is off: read parcel statuses in bulk, within budget.

Beat runs :func:`poll_parcels` (through ``tasks.tracking_sweep``). It reads only parcels that are due
(``ShipmentParcel.next_poll_at``, set by ``events.apply_status`` to a quarter of the parcel's age within
``SENDCLOUD_TRACKING_POLL_MIN_SECONDS``…``MAX``, so a parcel is read less often as it ages; a parcel never
heard of is due once it is ``MIN`` old), never a delivered or cancelled one, up to 100 parcels per
``GET /v3/shipments?ids=…``, each GET after a slot of the account's safe budget. A poll's status is applied
like a webhook's, with the time it was read as its timestamp.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from sendcloud_integration.limits import MAX_IDS_PER_SHIPMENT_FILTER
from sendcloud_integration.models import (
    CANCELLABLE_STATES,
    EventSource,
    SendcloudIntegration,
    ShipmentParcel,
    integration_problem,
)
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.tracking import events

logger = logging.getLogger(__name__)


@dataclass
class PollReport:
    parcels_read: int = 0
    statuses_applied: int = 0
    requests: int = 0
    deferred: int = 0  # due parcels left for the next sweep (budget spent, Sendcloud unavailable)


def due_parcels(integration: SendcloudIntegration, *, limit: int) -> list[ShipmentParcel]:
    """The integration's parcels due for a poll, most overdue first."""
    now = timezone.now()
    never_heard = Q(
        next_poll_at__isnull=True,
        status_changed_at__isnull=True,
        created_at__lte=now - timedelta(seconds=settings.SENDCLOUD_TRACKING_POLL_MIN_SECONDS),
    )
    return list(
        ShipmentParcel.objects.filter(shipment__shop_id=integration.shop_id, shipment__state__in=CANCELLABLE_STATES)
        .filter(Q(next_poll_at__lte=now) | never_heard)
        .order_by("next_poll_at", "created_at")[:limit]
    )


def poll_parcels() -> PollReport:
    """One round of the fallback over every usable integration whose webhook is off."""
    report = PollReport()
    integrations = SendcloudIntegration.objects.filter(is_active=True, webhook_active=False).select_related("shop")
    for integration in integrations:
        if integration_problem(integration) is None and integration.is_connected:
            _poll_integration(integration, report)
    return report


def _poll_integration(integration: SendcloudIntegration, report: PollReport) -> None:
    parcels = due_parcels(integration, limit=settings.SENDCLOUD_TRACKING_POLL_BATCH)
    by_id: dict[str, list[ShipmentParcel]] = defaultdict(list)
    for parcel in parcels:
        by_id[parcel.sendcloud_parcel_id].append(parcel)
    ids = [i for i in by_id if i.isdigit()]
    call_log = CallLog(shop_id=integration.shop_id)
    client = build_client(integration, call_log)
    try:
        for start in range(0, len(ids), MAX_IDS_PER_SHIPMENT_FILTER):
            page_ids = ids[start : start + MAX_IDS_PER_SHIPMENT_FILTER]
            if budget.acquire(public_key=integration.public_key, kind=budget.Kind.SAFE):
                report.deferred += len(ids) - start
                return
            report.requests += 1
            try:
                page = client.list_shipments(parcel_ids=page_ids, page_size=100)
            except AuthenticationError as exc:
                integration.mark_disconnected(exc.message)
                report.deferred += len(ids) - start
                return
            except SendcloudError as exc:
                logger.warning("tracking poll: shop=%s: %s; the rest waits", integration.shop_id, exc)
                report.deferred += len(ids) - start
                return
            read_at = timezone.now().timestamp()
            wanted = set(page_ids)
            for shipment in page.shipments:
                for info in shipment.parcels:
                    if info.parcel_id not in wanted:
                        continue
                    report.parcels_read += 1
                    for parcel in by_id[info.parcel_id]:
                        report.statuses_applied += _apply(parcel, info.status_code, info.status_message, read_at)
    finally:
        call_log.flush()


def _apply(parcel: ShipmentParcel, code: str, message: str, read_at: float) -> int:
    """Apply a polled status when it differs from the current one; else only schedule the next poll."""
    status_id, code = events.statuses.complete(None, code)
    if code == parcel.status_code and (status_id == parcel.status_id or status_id is None):
        now = timezone.now()
        ShipmentParcel.objects.filter(pk=parcel.pk).update(
            next_poll_at=now + events.poll_delay(parcel.created_at, now=now)
        )
        return 0
    update = events.StatusUpdate(
        parcel_id=parcel.sendcloud_parcel_id, status_id=status_id, status_code=code, message=message, timestamp=read_at
    )
    return int(events.apply_status(parcel, update, source=EventSource.POLL) == events.Outcome.APPLIED)
