"""The one place that builds a Sendcloud client for a shop's integration, from the settings.

Kept apart from ``client.py`` so that the client stays free of Django: this module reads the
integration's keys from the model and the base URL and timeouts from the settings.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.types import CallRecord
from wemasy import metrics


def build_client(integration: SendcloudIntegration, call_log: CallLog) -> SendcloudV3Client:
    """A client with the integration's credentials whose every call is recorded in ``call_log`` (and counted)."""
    return SendcloudV3Client(
        base_url=settings.SENDCLOUD_API_BASE_URL,
        public_key=integration.public_key,
        secret_key=integration.secret_key,
        connect_timeout=settings.SENDCLOUD_CONNECT_TIMEOUT,
        read_timeout=settings.SENDCLOUD_READ_TIMEOUT,
        on_call=_on_call(integration.public_key, call_log),
    )


def build_client_for_keys(public_key: str, secret_key: str, call_log: CallLog) -> SendcloudV3Client:
    """A client with credentials that are not stored yet (to verify them before they are)."""
    return SendcloudV3Client(
        base_url=settings.SENDCLOUD_API_BASE_URL,
        public_key=public_key,
        secret_key=secret_key,
        connect_timeout=settings.SENDCLOUD_CONNECT_TIMEOUT,
        read_timeout=settings.SENDCLOUD_READ_TIMEOUT,
        on_call=_on_call(public_key, call_log),
    )


def _on_call(public_key: str, call_log: CallLog) -> Callable[[CallRecord], None]:
    """What happens after every attempt: its budget slot is settled (first: the moment matters), then the
    call is counted on ``/metrics`` and logged for staff."""
    observe = metrics.observe_sendcloud_calls(call_log)

    def on_call(record: CallRecord) -> None:
        budget.settle(public_key=public_key, kind=budget.Kind.of(record.method))
        observe(record)

    return on_call
