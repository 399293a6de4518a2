"""A worker killed (SIGKILL) while it builds a batch document: the next download sends the build again,
another worker makes the whole document, and the download never answered anything but 202 or 200.

Real processes: gunicorn serves the endpoint, Celery workers build, on PostgreSQL and Redis.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from pypdf import PdfReader

from sendcloud_integration.models import (
    BatchDocument,
    BatchStatus,
    DocumentStatus,
    OrderShipment,
    PushBatch,
    ShipmentParcel,
    ShipmentState,
    StartedBy,
)
from sendcloud_sandbox.pdf import build_label_pdf
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack, wait_for
from webshop.models import Order

pytestmark = [requires_stack, pytest.mark.integration]

LABELS = 2000
STALLED_SECONDS = 3


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {"SENDCLOUD_DOCUMENT_STALLED_SECONDS": str(STALLED_SECONDS)}


def labelled_batch(count: int) -> PushBatch:
    """A finished batch of ``count`` labelled orders, their labels on disk where the processes read them."""
    shop = ShopFactory(slug="docs")
    SendcloudIntegrationFactory(shop=shop)
    batch = PushBatch.objects.create(
        shop=shop, create_label=True, status=BatchStatus.COMPLETED, started_by_kind=StartedBy.COMMAND,
        queued_orders=count, finished_at=timezone.now(),
    )  # fmt: skip
    folder = Path(settings.MEDIA_ROOT) / "labels" / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    label = build_label_pdf(order_number="D", tracking_number="3SDOC", carrier="PostNL", parcel_id=1, recipient=())
    orders = Order.objects.bulk_create(
        Order(shop=shop, order_number=f"D-{n:05d}", status="paid", customer_name="D") for n in range(count)
    )
    shipments = []
    for n, order in enumerate(orders):
        (folder / f"D-{n:05d}.pdf").write_bytes(label)
        shipments.append(
            OrderShipment(
                order=order,
                shop=shop,
                state=ShipmentState.LABELLED,
                batch=batch,
                create_label=True,
                label_file=f"labels/docs/D-{n:05d}.pdf",
                sendcloud_parcel_id=str(n + 1),
                labelled_at=timezone.now(),
            )
        )
    OrderShipment.objects.bulk_create(shipments)
    ShipmentParcel.objects.bulk_create(
        ShipmentParcel(shipment=s, position=1, sendcloud_parcel_id=s.sendcloud_parcel_id, label_file=s.label_file)
        for s in shipments
    )
    return batch


def test_a_worker_killed_mid_build_is_replaced_by_the_next_download(stack: Stack) -> None:
    batch = labelled_batch(LABELS)
    token = issue_token(batch.shop)
    url = f"{stack.web_url}/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch.pk}/labels"

    def get() -> Any:
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    first = stack.worker("first", concurrency=1)
    assert get().status_code == 202
    wait_for(
        lambda: BatchDocument.objects.filter(batch=batch, started_at__isnull=False).exists(),
        timeout=30,
        interval=0.02,
        what="the first worker to start the build",
    )
    first.kill()  # SIGKILL mid-build: no cleanup, no acknowledgement
    document = BatchDocument.objects.get(batch=batch)
    assert document.status == DocumentStatus.BUILDING, "the build finished before the kill: raise LABELS"
    assert not document.file

    stack.worker("second", concurrency=1)
    time.sleep(STALLED_SECONDS + 0.5)  # the dead build's heartbeat is now stale
    statuses = set()

    def stored() -> bool:
        answer = get()
        statuses.add(answer.status_code)
        return answer.status_code == 200

    wait_for(stored, timeout=120, interval=0.5, what="the document to be built by the second worker")
    assert statuses <= {200, 202}
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    assert document.labels_total == LABELS
    with document.file.open("rb") as handle:
        assert len(PdfReader(io.BytesIO(handle.read())).pages) == LABELS
