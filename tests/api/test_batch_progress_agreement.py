"""One label batch, driven through every state: the API, the dashboard, the admin list and the command agree.

Each door shows a batch's progress; before they shared ``BatchCounts`` the dashboard counted a PUSHED
order of a label batch as done while the API counted it as waiting, so staff and clients saw different
percentages for the same batch. At every step below all four must report the same numbers.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from rest_framework.test import APIClient

from sendcloud_integration.models import ChunkStatus, OrderShipment, Phase, PushBatch, PushChunk, ShipmentState
from sendcloud_integration.pipeline import batches
from sendcloud_integration.push import services
from sendcloud_integration.selectors.batches import watch_batches
from tests.admin.conftest import login
from tests.factories import OrderFactory
from webshop.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_superuser("progress-staff", "staff@example.com", "a-long-password-1")


#: (state of each of the four orders, whether the batch is finished by then)
STEPS: list[tuple[list[str], bool]] = [
    ([ShipmentState.QUEUED] * 4, False),
    ([ShipmentState.PUSHING] * 4, False),
    ([ShipmentState.PUSHED, ShipmentState.PUSHED, ShipmentState.PUSHING, ShipmentState.FAILED], False),
    ([ShipmentState.LABEL_QUEUED, ShipmentState.PUSHED, ShipmentState.PUSHED, ShipmentState.FAILED], False),
    ([ShipmentState.LABELLING, ShipmentState.LABEL_QUEUED, ShipmentState.PUSHED, ShipmentState.FAILED], False),
    ([ShipmentState.LABELLED, ShipmentState.LABELLING, ShipmentState.LABELLING, ShipmentState.FAILED], False),
    ([ShipmentState.LABELLED, ShipmentState.LABELLED, ShipmentState.LABELLING, ShipmentState.FAILED], False),
    ([ShipmentState.LABELLED, ShipmentState.LABELLED, ShipmentState.LABELLED, ShipmentState.FAILED], True),
]

#: What each step must read as: (pushed, labelled, failed, in_flight, done, percent).
EXPECTED = [
    (0, 0, 0, 4, 0, 0),
    (0, 0, 0, 4, 0, 0),
    (2, 0, 1, 1, 1, 25),  # PUSHED still waits for its label: only the failed order is done
    (3, 0, 1, 1, 1, 25),
    (3, 0, 1, 2, 1, 25),
    (3, 1, 1, 2, 2, 50),
    (3, 2, 1, 1, 3, 75),
    (3, 3, 1, 0, 4, 100),
]


def api_view(client: APIClient, batch: PushBatch) -> tuple[int, ...]:
    body = client.get(f"/api/services/webshop/v1/orders/sendcloud/shipments/batches/{batch.pk}").json()["batch"]
    counts = body["counts"]
    done = body["counts"]["queued"] - counts["in_flight"] - counts["by_state"]["pushed"]
    return (counts["pushed"], counts["labelled"], counts["failed"], counts["in_flight"], done, body["progress_percent"])


def dashboard_view(admin: Any, batch: PushBatch) -> tuple[int, ...]:
    feed = admin.get(reverse("admin:sendcloud_integration_dashboard_progress"), {"id": str(batch.pk)}).json()
    (item,) = feed["batches"]
    return (item["pushed"], item["labelled"], item["failed"], item["in_flight"], item["done"], item["percent"])


def admin_list_view(admin: Any, batch: PushBatch) -> tuple[int, int]:
    html = admin.get(reverse("admin:sendcloud_integration_pushbatch_changelist")).content.decode()
    percent = re.search(rf'data-batch="{batch.pk}" role="progressbar"[^>]*aria-valuenow="(\d+)"', html)
    done = re.search(rf'data-batch="{batch.pk}"[^>]*>\d+% · (\d+)/4', html)
    assert percent, "the batch's progress bar is on the list"
    assert done, "the batch's progress text is on the list"
    return int(done.group(1)), int(percent.group(1))


def command_view(batch: PushBatch) -> tuple[int, ...]:
    (watch,) = watch_batches(batch_ids=[str(batch.pk)])
    percent = 100 if watch.is_finished else min(99, watch.done * 100 // watch.queued)
    return (watch.pushed, watch.labelled, watch.failed, watch.in_flight, watch.done, percent)


@pytest.mark.usefixtures("integration")
def test_every_door_reports_the_same_progress_at_every_step(client_for: APIClient, shop: Shop, staff: User) -> None:
    orders = [OrderFactory(shop=shop, order_number=f"A-{n}") for n in range(1, 5)]
    result = services.push_orders(
        shop=shop, order_ids=[o.pk for o in orders], create_label=True, actor=services.Actor.command("test")
    )
    batch = PushBatch.objects.get(pk=result.batch_id)
    admin = login(staff)

    for step, ((states, finished), expected) in enumerate(zip(STEPS, EXPECTED, strict=True)):
        for order, state in zip(orders, states, strict=True):
            extra = {"failed_phase": Phase.PUSH, "last_error": "refused"} if state == ShipmentState.FAILED else {}
            OrderShipment.objects.filter(order=order).update(state=state, **extra)
        if finished:
            PushChunk.objects.filter(batch=batch).update(status=ChunkStatus.DONE)
            assert batches.finish_batch(batch_id=batch.pk).is_finished

        seen = {
            "api": api_view(client_for, batch),
            "dashboard": dashboard_view(admin, batch),
            "command": command_view(batch),
        }
        assert all(view == expected for view in seen.values()), f"step {step}: {seen} != {expected}"
        assert admin_list_view(admin, batch) == (expected[4], expected[5]), f"step {step}: admin list"
