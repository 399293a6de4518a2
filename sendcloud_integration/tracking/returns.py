"""The return portal link of a shipment (``GET /v3/shipments/{id}/return-portal-url``), read once and kept.

Read on demand (the per-order API, the admin), at most once per ``RECHECK`` per shipment, within the
account's GET budget. Sendcloud answers 404 when the account has no return portal (or no brand on the
shipment): that is remembered as "none" too, and the link reads as empty.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from django.utils import timezone

from sendcloud_integration.models import OrderShipment, SendcloudIntegration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, NotFound, SendcloudError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.sendcloud.types import web_url

RECHECK: Final = timedelta(days=1)


def return_portal_url(shipment: OrderShipment, *, refresh: bool = False) -> str:
    """The stored link, read from Sendcloud first when it was never read (or ``refresh``, or a day old)."""
    if not shipment.sendcloud_shipment_id:
        return ""
    now = timezone.now()
    checked = shipment.return_portal_checked_at
    if not refresh and checked is not None and now - checked < RECHECK:
        return shipment.return_portal_url
    integration = SendcloudIntegration.objects.filter(shop_id=shipment.shop_id).first()
    if integration is None or not integration.has_credentials:
        return shipment.return_portal_url
    if budget.acquire(public_key=integration.public_key, kind=budget.Kind.SAFE):
        return shipment.return_portal_url  # the budget is spent: the stored answer will do
    call_log = CallLog(shop_id=shipment.shop_id, order_ids=[shipment.order_id])
    try:
        url = web_url(build_client(integration, call_log).return_portal_url(shipment.sendcloud_shipment_id))
    except NotFound:
        url = ""
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        return shipment.return_portal_url
    except SendcloudError:
        return shipment.return_portal_url  # asked again next time
    finally:
        call_log.flush()
    OrderShipment.objects.filter(pk=shipment.pk).update(return_portal_url=url[:500], return_portal_checked_at=now)
    shipment.return_portal_url, shipment.return_portal_checked_at = url, now
    return url
