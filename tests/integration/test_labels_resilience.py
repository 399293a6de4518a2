"""Labels through real processes: every order ends terminal, and never gets a second label.

Sendcloud's read limit (1000 GETs a minute) would make these tests minutes long, so both the sandbox
and the service allow more reads here; ``bench/throughput.py --mode labels`` runs the real limits.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
from pypdf import PdfReader

from sendcloud_integration.models import BatchStatus, OrderShipment, ShipmentState
from sendcloud_integration.sendcloud.payloads import sendcloud_order_id
from sendcloud_sandbox.server import SandboxServer
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack, wait_for
from tests.integration.helpers import push, wait_until_finished
from webshop.demo import make_orders
from webshop.models import Shop

pytestmark = [requires_stack, pytest.mark.integration]

FAST_READS = {"SENDCLOUD_SAFE_PER_MINUTE": "20000"}


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return dict(FAST_READS)


@pytest.fixture(autouse=True)
def _fast_sandbox_reads(sandbox: SandboxServer) -> None:
    sandbox.update_config(safe_per_minute=20000)


def label_shop(slug: str) -> tuple[Shop, str]:
    shop = ShopFactory(slug=slug)
    SendcloudIntegrationFactory(shop=shop, shipping_option_code="postnl:standard")
    return shop, issue_token(shop)


def assert_one_label_each(sandbox: SandboxServer, expected_orders: int) -> None:
    state = sandbox.snapshot(include_items=False)
    assert state["duplicate_labels"] == 0, state["orders_with_duplicate_labels"]
    labels_per_order: dict[str, int] = state["labels_per_order"]  # type: ignore[assignment]
    assert max(labels_per_order.values(), default=0) <= 1
    assert len(labels_per_order) == expected_orders


def test_five_hundred_orders_with_labels(stack: Stack) -> None:
    stack.worker()
    shop, token = label_shop("labels")
    orders = make_orders(shop, 500)

    answer = push(stack, token, [o.pk for o in orders], create_label=True)

    assert answer["labels_will_be_created"] == "yes"
    batch = wait_until_finished(answer["batch"]["id"], timeout=240)
    assert (batch.status, batch.labelled_count, batch.failed_count) == (BatchStatus.COMPLETED, 500, 0)
    labelled = OrderShipment.objects.filter(batch=batch, state=ShipmentState.LABELLED)
    assert labelled.count() == 500
    assert not labelled.filter(tracking_number="").exists()
    sample = labelled.select_related("order").first()
    assert sample is not None
    with sample.label_file.open("rb") as handle:
        text = PdfReader(handle).pages[0].extract_text()
    assert sample.order.order_number in text
    assert_one_label_each(stack.sandbox, 500)


class TestFaultyLabels:
    @pytest.fixture
    def stack_settings(self) -> dict[str, str]:
        return {**FAST_READS, "SENDCLOUD_UNSAFE_PER_MINUTE": "2000", "SENDCLOUD_UNSAFE_PER_SECOND": "100"}

    def test_labels_with_a_fifth_of_the_answers_faulty(self, stack: Stack) -> None:
        stack.sandbox.update_config(timeout_seconds=3, slow_seconds=0.3, unsafe_per_minute=2000, unsafe_per_second=100)
        # 20% faults everywhere, and on label requests "commit then time out" in particular: the
        # labels are made but the answer never comes, so only a look-up can tell.
        stack.sandbox.set_faults(
            {"POST /orders/create-labels-async": [{"kind": "commit_then_timeout", "probability": 0.2, "seconds": 3}]},
            fault_rate=0.2,
            seed=5,
        )
        stack.worker()
        stack.beat()
        shop, token = label_shop("faulty-labels")
        orders = make_orders(shop, 300)

        answer = push(stack, token, [o.pk for o in orders], create_label=True)

        batch = wait_until_finished(answer["batch"]["id"], timeout=300)
        faults = {k for r in stack.sandbox.request_log() if r.get("fault") for k in str(r["fault"]).split(",")}
        assert "commit_then_timeout" in faults
        assert batch.labelled_count + batch.failed_count == 300
        # The only failures allowed are the carrier's refusals (random "announcement_failed" faults):
        # nothing was lost or given up on because of a timeout, a reset or a 5xx.
        state = stack.sandbox.snapshot(include_items=True)
        shipments: list[dict[str, Any]] = state["shipments"]["items"]  # type: ignore[index]
        refused = {s["order_id"] for s in shipments if s["status"] == "ANNOUNCEMENT_FAILED"}
        failed = OrderShipment.objects.filter(batch=batch, state=ShipmentState.FAILED).select_related("order")
        assert {sendcloud_order_id(f.order) for f in failed} <= refused
        assert all(f.failed_phase == "label" and f.last_error for f in failed)
        assert batch.labelled_count >= 200
        assert state["duplicate_labels"] == 0, state["orders_with_duplicate_labels"]


def test_worker_killed_while_labels_are_requested_then_restarted(stack: Stack) -> None:
    # Slow label requests keep the worker inside create-labels-async when it is killed.
    stack.sandbox.set_faults(
        {"POST /orders/create-labels-async": [{"kind": "slow", "probability": 1.0, "seconds": 1.0}]}
    )
    worker = stack.worker()
    stack.beat()
    shop, token = label_shop("killed-labels")
    orders = make_orders(shop, 300)

    answer = push(stack, token, [o.pk for o in orders], create_label=True)
    batch_id = answer["batch"]["id"]
    wait_for(
        lambda: OrderShipment.objects.filter(batch_id=batch_id, label_requested_at__isnull=False).count() >= 40,
        timeout=90,
        what="label requests to be under way",
    )
    worker.kill(signal.SIGKILL)
    assert OrderShipment.objects.filter(batch_id=batch_id).exclude(state=ShipmentState.LABELLED).exists()

    stack.sandbox.set_faults({})
    stack.worker(name="worker-2")
    batch = wait_until_finished(batch_id, timeout=120)
    assert (batch.status, batch.labelled_count) == (BatchStatus.COMPLETED, 300)
    assert_one_label_each(stack.sandbox, 300)


def test_same_orders_pushed_twice_at_once_get_one_label_each(stack: Stack) -> None:
    stack.worker()
    shop, token = label_shop("twice")
    orders = make_orders(shop, 200)
    ids = [o.pk for o in orders]
    answers: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def push_all() -> None:
        barrier.wait(timeout=10)
        answers.append(push(stack, token, ids, create_label=True))

    threads = [threading.Thread(target=push_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 2
    assert sorted(a["summary"]["queued_orders"] for a in answers) == [0, 200]
    loser = next(a for a in answers if a["summary"]["queued_orders"] == 0)
    assert all("already queued in batch" in line for line in loser["details"]["skipped_orders"])
    winner = next(a for a in answers if a["summary"]["queued_orders"] == 200)
    batch = wait_until_finished(winner["batch"]["id"], timeout=180)
    assert batch.labelled_count == 200

    again = push(stack, token, ids, create_label=True)  # and once more, after the fact
    assert again["summary"]["queued_orders"] == 0
    assert {line.split(": ", 1)[1] for line in again["details"]["skipped_orders"]} == {"label already created"}
    assert_one_label_each(stack.sandbox, 200)
