"""Turning an integration's webhook on or off in Sendcloud, and reading whether it is on.

``PATCH /v3/integrations/{id}`` with ``webhook_active`` and ``webhook_url`` (spec ``v3/integrations``),
then ``GET /v3/integrations/{id}`` to read back what Sendcloud holds, which is what the integration row
then shows (``webhook_active``, ``webhook_url``, ``webhook_configured_at``). Each call takes a slot of the
account's budget first. The URL is ``SENDCLOUD_PUBLIC_URL`` + ``/webhooks/sendcloud/<token>``: it names no
shop. While the webhook is off, the polling fallback (``polling.py``) reads the statuses instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from sendcloud_integration.models import SendcloudIntegration, integration_problem
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client
from sendcloud_integration.tracking.errors import (
    NoPublicUrl,
    SendcloudRefused,
    SendcloudUnavailable,
    TrackingUnavailable,
)
from sendcloud_integration.tracking.webhooks import webhook_path


@dataclass(frozen=True)
class WebhookState:
    active: bool
    url: str
    #: Whether Sendcloud sends to this service's receiver (on, and at our URL).
    ours: bool


def receiver_url(integration: SendcloudIntegration) -> str:
    base = settings.SENDCLOUD_PUBLIC_URL
    if not base:
        raise NoPublicUrl(
            "Set SENDCLOUD_PUBLIC_URL to the address Sendcloud reaches this service at (https://…) first."
        )
    return f"{base}{webhook_path(integration)}"


def _usable(integration: SendcloudIntegration) -> None:
    problem = integration_problem(integration)
    if problem is not None:
        raise TrackingUnavailable(f"The shop's Sendcloud integration cannot be used ({problem.value}).")


def _slot(integration: SendcloudIntegration, kind: budget.Kind) -> None:
    wait = budget.acquire(public_key=integration.public_key, kind=kind)
    if wait:
        raise SendcloudUnavailable(budget.spent_message(wait))


def set_webhook(integration: SendcloudIntegration, *, active: bool) -> WebhookState:
    """Turn the integration's webhook on (at our URL) or off in Sendcloud; returns what Sendcloud then holds."""
    _usable(integration)
    url = receiver_url(integration)
    with _sendcloud(integration, refused="Sendcloud refused the webhook settings") as client:
        _slot(integration, budget.Kind.UNSAFE)
        client.set_integration_webhook(integration.integration_id, active=active, url=url)
        return _read_back(integration, client)


def webhook_status(integration: SendcloudIntegration) -> WebhookState:
    """Read the webhook settings from Sendcloud (one GET) and store them on the integration."""
    _usable(integration)
    with _sendcloud(integration, refused="Sendcloud refused") as client:
        return _read_back(integration, client)


@contextmanager
def _sendcloud(integration: SendcloudIntegration, *, refused: str) -> Iterator[SendcloudV3Client]:
    """A client of the integration's account whose errors leave as this package's, the calls logged once."""
    call_log = CallLog(shop_id=integration.shop_id)
    try:
        yield build_client(integration, call_log)
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        raise SendcloudRefused(f"Sendcloud refused the credentials: {exc.message}") from exc
    except TransientError as exc:
        raise SendcloudUnavailable(f"Sendcloud did not answer: {exc.message} Try again.") from exc
    except SendcloudError as exc:
        raise SendcloudRefused(f"{refused}: {exc.message}") from exc
    finally:
        call_log.flush()


def _read_back(integration: SendcloudIntegration, client: SendcloudV3Client) -> WebhookState:
    _slot(integration, budget.Kind.SAFE)
    held = client.get_integration_webhook(integration.integration_id)
    now = timezone.now()
    SendcloudIntegration.objects.filter(pk=integration.pk).update(
        webhook_active=held.active, webhook_url=held.url[:500], webhook_configured_at=now
    )
    integration.webhook_active, integration.webhook_url, integration.webhook_configured_at = held.active, held.url, now
    ours = bool(settings.SENDCLOUD_PUBLIC_URL) and held.url == receiver_url(integration)
    return WebhookState(active=held.active, url=held.url, ours=held.active and ours)
