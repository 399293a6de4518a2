"""The errors the tracking services raise for a door to show (each door maps ``ApplicationError`` once)."""

from __future__ import annotations

from sendcloud_integration.exceptions import SendcloudRefused, SendcloudUnavailable
from wemasy.errors import ApplicationError

__all__ = ["NoPublicUrl", "SendcloudRefused", "SendcloudUnavailable", "TrackingUnavailable"]


class TrackingUnavailable(ApplicationError):
    """The shop has no usable Sendcloud integration for this."""

    http_status = 400


class NoPublicUrl(ApplicationError):
    """The webhook cannot be set: the service does not know its public address (``SENDCLOUD_PUBLIC_URL``)."""

    http_status = 400
