"""A batch's labels as one PDF, and one order's label: the one owner for the API and the admin.

Both doors serve the same document and fail the same way. No label yet is :class:`NoLabelsYet`; a stored
label that is missing or cannot be read stops the merge with :class:`LabelFileUnreadable`, naming the
order (never the file's path): a printout silently short of one label is worse than an error a person
looks into. Each door maps those errors once (``wemasy/errors.py``).

The merged document is written into a temporary file that spills to disk past ``SPOOL_MAX_MEMORY`` and
is handed to the caller open and rewound; the caller streams it and closes it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

from django.core.files.storage import Storage
from django.db.models import FileField

from sendcloud_integration.exceptions import LabelFileUnreadable, NoLabelsYet
from sendcloud_integration.models import OrderShipment, PushBatch
from sendcloud_integration.printing.merge import iter_stored_files, write_merged_pdf
from sendcloud_integration.selectors.batches import batch_label_files, batch_order_shipment

logger = logging.getLogger(__name__)

#: Above this size the merged PDF is spooled to a temporary file instead of kept in memory.
SPOOL_MAX_MEMORY = 8 * 1024 * 1024


def label_storage() -> Storage:
    """Where ``OrderShipment.label_file`` keeps its files (the default storage unless configured)."""
    return cast(FileField, OrderShipment._meta.get_field("label_file")).storage


def batch_labels_pdf(*, batch: PushBatch) -> BinaryIO:
    """Every label of the batch in one PDF, in order-number order (the order a warehouse prints); an order's
    customs declaration, when it has one, comes right after its label(s)."""
    files = batch_label_files(batch=batch)
    if not files:
        raise NoLabelsYet("This batch has no labels yet.")
    # Not a ``with``: the caller streams the file and closes it when it is done.
    output = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY))  # noqa: SIM115
    reading: list[str] = []
    try:
        write_merged_pdf(iter_stored_files(_naming(files, reading), storage=label_storage()), output)
    except Exception as exc:  # pypdf raises many kinds of error on a damaged file; each means "unreadable"
        output.close()
        order_number = reading[-1] if reading else "?"
        logger.warning("batch=%s label of order %s could not be read: %s", batch.pk, order_number, type(exc).__name__)
        raise LabelFileUnreadable(
            f"The label of order {order_number} could not be read ({type(exc).__name__}); "
            "no merged PDF was made. Re-push the order with labels to fetch it again."
        ) from exc
    output.seek(0)
    return output


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


def _naming(files: Sequence[tuple[str, str]], reading: list[str]) -> Iterator[str]:
    """The storage names, one at a time as the merge asks for them; ``reading`` ends with the current order."""
    for order_number, name in files:
        reading.append(order_number)
        yield name
