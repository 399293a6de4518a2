"""One order's stored label, and where labels are stored: for the API's ``?order=`` and the builder.

A batch's labels as one document are stored batch documents (``documents``, ``builder``): never merged in a
request. No label yet is :class:`NoLabelsYet`; a stored label that is missing or cannot be read is
:class:`LabelFileUnreadable`, naming the order (never the file's path).
"""

from __future__ import annotations

import logging
from typing import BinaryIO, cast

from django.core.files.storage import Storage
from django.db.models import FileField

from sendcloud_integration.exceptions import LabelFileUnreadable, NoLabelsYet
from sendcloud_integration.models import OrderShipment, PushBatch
from sendcloud_integration.selectors.batches import batch_order_shipment

logger = logging.getLogger(__name__)


def label_storage() -> Storage:
    """Where ``OrderShipment.label_file`` keeps its files (the default storage unless configured)."""
    return cast(FileField, OrderShipment._meta.get_field("label_file")).storage


def order_label_pdf(*, batch: PushBatch, order_id: int) -> BinaryIO:
    """One order's stored label, as it is (no merge), open for reading."""
    shipment = batch_order_shipment(batch=batch, order_id=order_id)
    if shipment is None:
        raise NoLabelsYet("No such order in this batch.")
    if not shipment.label_file:
        raise NoLabelsYet("This order has no label yet.")
    try:
        return cast(BinaryIO, label_storage().open(shipment.label_file.name, "rb"))
    except OSError as exc:
        logger.warning("batch=%s label of order id %s could not be read: %s", batch.pk, order_id, type(exc).__name__)
        raise LabelFileUnreadable(
            f"The label of this order could not be read ({type(exc).__name__}). "
            "Re-push the order with labels to fetch it again."
        ) from exc
