"""The errors the Sendcloud services raise for a caller to see. Each door maps them once (``wemasy/errors.py``)."""

from __future__ import annotations

from wemasy.errors import ApplicationError


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
