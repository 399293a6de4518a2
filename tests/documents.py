"""Helpers for the stored batch documents: finish a batch, run the builds a request asked for, download.

A request never builds a document; it marks the row as wanted and dispatches the build on commit. Tests
run the wanted builds in-process (``build_wanted``) instead of through a broker, then ask again.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from sendcloud_integration.models import BatchDocument, BatchStatus, DocumentStatus, PushBatch
from sendcloud_integration.pipeline import dispatch
from sendcloud_integration.printing import builder

BATCHES_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/"


def labels_url(batch_id: object) -> str:
    return f"{BATCHES_URL}{batch_id}/labels"


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The document ids whose build was sent to the broker (nothing is sent: the list records it)."""
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "build_batch_document", sent.append)
    return sent


def finish(batch: PushBatch) -> None:
    """What ``finish_batch`` does as far as the documents care: the batch's labels are done."""
    PushBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPLETED, finished_at=timezone.now())
    batch.refresh_from_db()


def build_wanted() -> list[builder.BuildOutcome]:
    """Run every build a request asked for, as a worker would."""
    wanted = BatchDocument.objects.filter(status=DocumentStatus.BUILDING).values_list("pk", flat=True)
    return [builder.build_document(document_id=pk) for pk in list(wanted)]


def download(client: APIClient, batch: PushBatch, params: dict[str, Any] | None = None, **headers: Any) -> Any:
    """The labels document of a batch whose labels are done: asked for, built (202), asked for again."""
    if not batch.is_finished:
        finish(batch)
    response = client.get(labels_url(batch.pk), params or {}, **headers)
    if response.status_code == 202:
        build_wanted()
        response = client.get(labels_url(batch.pk), params or {}, **headers)
    return response


def content_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)
