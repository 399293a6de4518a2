"""A batch's stored documents: asking for one, and knowing whether it is ready, being built, or failed.

The one owner of "can this batch document be served now" for the API and the admin. A document
(``BatchDocument``: one per batch, variant and sort) is never built in a request: asking for one that is
missing or out of date marks its row as wanted and sends its build to a worker (``pipeline.dispatch``) on
commit, and the caller answers "come back later". The row is the truth, so a build lost with a worker or
the broker is sent again by the next request that finds it stalled.

Out of date means the labels it was made of changed (``selectors.documents.labels_fingerprint``): an order
labelled again, moved to a later batch, or given a customs declaration.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sendcloud_integration.exceptions import DocumentBuildFailed, NoLabelsYet
from sendcloud_integration.models import BatchDocument, DocumentStatus, PushBatch
from sendcloud_integration.pipeline import dispatch
from sendcloud_integration.printing.profiles import DocumentSpec, resolve_spec
from sendcloud_integration.selectors.documents import has_labels, labels_fingerprint

logger = logging.getLogger(__name__)

#: What ``Retry-After`` says while a batch is still making its labels.
RETRY_WHILE_LABELLING: Final = 10


class Availability(enum.StrEnum):
    READY = "ready"
    BUILDING = "building"
    WAITING_FOR_LABELS = "waiting_for_labels"


@dataclass(frozen=True)
class DocumentState:
    """What a request for a document gets: the document when ready, or when to ask again and the progress."""

    availability: Availability
    spec: DocumentSpec
    document: BatchDocument | None = None

    @property
    def retry_after(self) -> int:
        """Seconds until it is worth asking again: from the build's pace when it has one, within 1..60."""
        document = self.document
        if self.availability is Availability.WAITING_FOR_LABELS or document is None:
            return RETRY_WHILE_LABELLING
        if not document.started_at or not document.labels_done or not document.labels_total:
            return 5
        elapsed = (timezone.now() - document.started_at).total_seconds()
        left = elapsed / document.labels_done * (document.labels_total - document.labels_done)
        return max(1, min(60, round(left)))

    @property
    def percentage(self) -> int:
        document = self.document
        if document is None or not document.labels_total:
            return 0
        if document.status == DocumentStatus.READY:
            return 100
        return min(99, document.labels_done * 100 // document.labels_total)


def document_for(
    *,
    batch: PushBatch,
    label_format: str | None = None,
    paper_size: str | None = None,
    dpi: int | None = None,
    sort: str | None = None,
) -> DocumentState:
    """The batch's document in the shop's printer profile with these overrides: ready, or on its way.

    Raises :class:`NoLabelsYet` when the batch has no label, :class:`DocumentBuildFailed` when the last build
    of these same labels failed (its message names the order), ``InvalidInput`` for a bad override.
    """
    spec = resolve_spec(batch.shop, label_format=label_format, paper_size=paper_size, dpi=dpi, sort=sort)
    return request_document(batch=batch, spec=spec)


def request_document(*, batch: PushBatch, spec: DocumentSpec) -> DocumentState:
    """See :func:`document_for`; for a spec already resolved."""
    if not has_labels(batch=batch):
        raise NoLabelsYet("This batch has no labels yet.")
    if not batch.is_finished:
        return DocumentState(Availability.WAITING_FOR_LABELS, spec)
    key = labels_fingerprint(batch=batch)
    with transaction.atomic():
        document, created = BatchDocument.objects.select_for_update().get_or_create(
            batch=batch,
            variant=spec.variant,
            sort=spec.sort,
            defaults={
                "label_format": spec.label_format,
                "paper_size": spec.paper_size,
                "dpi": spec.dpi,
                "source_key": key,
            },
        )
        send = created
        if not created and document.source_key != key:
            _want_again(document, source_key=key)
            send = True
        elif document.status == DocumentStatus.BUILDING and _stalled(document):
            logger.warning("batch document=%s build stalled; sending it again", document.pk)
            # The stalled build loses its claim (its heartbeat no longer matches), and the next resend is a
            # window away: requests in the meantime wait for this one.
            document.started_at = document.heartbeat_at = None
            document.requested_at = timezone.now()
            document.save(update_fields=["started_at", "heartbeat_at", "requested_at"])
            send = True
        if send:
            transaction.on_commit(lambda: dispatch.build_batch_document(document.pk))
    if document.status == DocumentStatus.FAILED:
        raise DocumentBuildFailed(document.error)
    if document.status == DocumentStatus.READY:
        return DocumentState(Availability.READY, spec, document)
    return DocumentState(Availability.BUILDING, spec, document)


def build_again(*, document: BatchDocument) -> None:
    """Staff asked for a document again (after a failure, or to be sure): it is built anew from the labels."""
    with transaction.atomic():
        locked = BatchDocument.objects.select_for_update().get(pk=document.pk)
        _want_again(locked, source_key=labels_fingerprint(batch=locked.batch))
        transaction.on_commit(lambda: dispatch.build_batch_document(locked.pk))


def build_default_document(*, batch_id: uuid.UUID) -> DocumentState | None:
    """When a batch finishes: start the document its shop prints by default, if it has labels to print."""
    batch = PushBatch.objects.select_related("shop").get(pk=batch_id)
    if not batch.create_label or not has_labels(batch=batch):
        return None
    try:
        return request_document(batch=batch, spec=resolve_spec(batch.shop))
    except DocumentBuildFailed:  # the same labels failed before: nothing new to try until they change
        return None


def batch_documents(*, batch: PushBatch) -> list[BatchDocument]:
    """The batch's stored documents (for the Print page)."""
    return list(BatchDocument.objects.filter(batch=batch).order_by("variant", "sort"))


def _want_again(document: BatchDocument, *, source_key: str) -> None:
    """Mark a locked row as wanted for these labels; a build still running for older labels loses its say."""
    document.status = DocumentStatus.BUILDING
    document.source_key = source_key
    document.build_token = uuid.uuid4()
    document.error = ""
    document.labels_done = 0
    document.started_at = None
    document.heartbeat_at = None
    document.requested_at = timezone.now()
    document.save(
        update_fields=[
            "status",
            "source_key",
            "build_token",
            "error",
            "labels_done",
            "started_at",
            "heartbeat_at",
            "requested_at",
        ]
    )


def stalled_after() -> timedelta:
    """A build whose heartbeat is older than this is taken to be dead (``SENDCLOUD_DOCUMENT_STALLED_SECONDS``).

    A build not started within half of it is sent again too: its message may have been lost with the broker.
    """
    return timedelta(seconds=settings.SENDCLOUD_DOCUMENT_STALLED_SECONDS)


def _stalled(document: BatchDocument) -> bool:
    now = timezone.now()
    if document.started_at is None:
        return now - document.requested_at > stalled_after() / 2
    return document.heartbeat_at is None or now - document.heartbeat_at > stalled_after()
