"""The errors the Sendcloud services raise for a caller to see. Each door maps them once (``wemasy/errors.py``)."""

from __future__ import annotations

from wemasy.errors import ApplicationError, InvalidInput


class PushRefused(ApplicationError):
    """The push cannot start at all; nothing was changed."""


class IntegrationUnavailable(PushRefused):
    """The shop has no usable Sendcloud integration (missing, inactive, or without credentials)."""

    http_status = 400


class NoOrdersFound(PushRefused):
    """None of the requested ids is an order of this shop."""

    http_status = 404


class LabelsUnavailable(ApplicationError):
    """A batch's labels cannot be served as asked."""

    http_status = 404


class NoLabelsYet(LabelsUnavailable):
    """The batch (or the order asked for) has no stored label yet."""


class LabelFileUnreadable(LabelsUnavailable):
    """A stored label file is missing or damaged: no document was made (a printout missing a label is
    worse than none). The message names the order, never the file's path."""

    http_status = 409


class LabelFormatUnavailable(LabelsUnavailable):
    """A label cannot be had in the format a batch document asks for (Sendcloud refused it, served something
    that is not a label, or refused the shop's keys); the message names the order and why, for a person.
    The document's build fails with it (``DocumentBuildFailed`` then carries the message)."""

    http_status = 409


class OrderNotFound(ApplicationError):
    """No order with that id in this shop (another shop's order looks the same)."""

    http_status = 404


class ShippingDataLocked(ApplicationError):
    """The order's shipping data cannot change now: it has a label, or a batch is working on it. Nothing changed."""

    http_status = 409


class InvalidShippingData(InvalidInput):
    """A shipping method, weight or number of parcels that does not fit the order (or the catalogue)."""


class SendcloudRefused(ApplicationError):
    """Sendcloud answered, and said no (refused credentials, an order it would not store). Nothing changed."""

    http_status = 400


class SendcloudUnavailable(ApplicationError):
    """Sendcloud could not be asked now: no answer, a server error, or the account's request budget is spent.

    Nothing was changed; the message says when to try again when that is known.
    """

    http_status = 503


class LabelFormatNotServedNow(SendcloudUnavailable):
    """Sendcloud did not serve a label in the format a batch document asks for *now* (a server error, a 429,
    no answer, after a few tries). Not the document's fault: its build is tried again later, never failed
    for it. ``retry_after`` is Sendcloud's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DocumentBuildFailed(LabelsUnavailable):
    """The batch document's last build failed (a label missing from storage, a format Sendcloud would not
    serve); the message says which order and why. It is built again when the batch's labels change, or
    when staff ask for it again on the batch's Print page."""

    http_status = 409
