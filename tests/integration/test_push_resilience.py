"""Pushes through real processes when Sendcloud misbehaves and workers die (issue: proof under faults).

Every test ends with every order in a terminal state and the sandbox's duplicate detector at zero.
"""

from __future__ import annotations

import signal
import time

import pytest

from sendcloud_integration.models import BatchStatus, OrderShipment, PushBatch, ShipmentState
from sendcloud_sandbox.server import SandboxServer
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack, wait_for
from tests.integration.helpers import push, wait_until_finished
from webshop.demo import Kind, make_orders
from webshop.models import Shop

pytestmark = [requires_stack, pytest.mark.integration]


def demo_shop(slug: str) -> tuple[Shop, str]:
    shop = ShopFactory(slug=slug)
    SendcloudIntegrationFactory(shop=shop, shipping_option_code="")
    return shop, issue_token(shop)


def sandbox_429s(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.request_log() if r["status"] == 429)


def test_thousand_orders_without_faults(stack: Stack) -> None:
    stack.worker()
    shop, token = demo_shop("thousand")
    orders = make_orders(shop, 1000)

    answer = push(stack, token, [o.pk for o in orders])

    batch = wait_until_finished(answer["batch"]["id"], timeout=120)
    assert (batch.status, batch.pushed_count, batch.failed_count) == (BatchStatus.COMPLETED, 1000, 0)
    state = stack.sandbox.snapshot(include_items=False)
    assert state["orders"]["count"] == 1000
    assert state["duplicate_labels"] == 0
    assert sandbox_429s(stack.sandbox) == 0


def test_one_invalid_order_per_chunk_fails_alone_with_sendclouds_message(stack: Stack) -> None:
    stack.worker()
    shop, token = demo_shop("invalid")
    kinds = [Kind.NORMAL] * 100
    kinds[37] = Kind.INVALID  # a Dutch postal code cut short: our pre-check passes it, Sendcloud does not
    orders = make_orders(shop, 1000, kinds=kinds)

    answer = push(stack, token, [o.pk for o in orders])

    batch = wait_until_finished(answer["batch"]["id"], timeout=120)
    assert (batch.status, batch.pushed_count, batch.failed_count) == (BatchStatus.COMPLETED_WITH_ERRORS, 990, 10)
    failed = OrderShipment.objects.filter(batch=batch, state=ShipmentState.FAILED).select_related("order")
    assert sorted(f.order.order_number for f in failed) == sorted(o.order_number for o in orders[37::100])
    for shipment in failed:
        assert shipment.failed_phase == "push"
        assert "Enter a valid Dutch postal code" in shipment.last_error
        assert "postal_code" in shipment.last_error
    assert upsert_requests(stack.sandbox) == 20  # each chunk: one refused request, one resubmission
    assert stack.sandbox.snapshot(include_items=False)["orders"]["count"] == 990
    assert stack.sandbox.snapshot(include_items=False)["duplicate_labels"] == 0


def upsert_requests(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.request_log() if r["method"] == "POST" and r["path"] == "/api/v3/orders")


class TestFaultySendcloud:
    @pytest.fixture
    def stack_settings(self) -> dict[str, str]:
        # Chunks of 10 make ~100 upserts, enough for every fault kind to show up at a 20% rate.
        return {
            "SENDCLOUD_CHUNK_SIZE": "10",
            "SENDCLOUD_UNSAFE_PER_MINUTE": "1000",
            "SENDCLOUD_UNSAFE_PER_SECOND": "50",
        }

    def test_thousand_orders_with_a_fifth_of_the_answers_faulty(self, stack: Stack) -> None:
        # All transport faults, 20% of answers: 429s, 5xx with HTML or empty bodies, slow answers,
        # timeouts, "commit then time out", connection resets, malformed JSON, "still processing".
        stack.sandbox.update_config(timeout_seconds=3, slow_seconds=0.3, unsafe_per_minute=1000, unsafe_per_second=50)
        stack.sandbox.set_faults({}, fault_rate=0.2, seed=11)
        stack.worker()
        shop, token = demo_shop("faulty")
        orders = make_orders(shop, 1000)

        answer = push(stack, token, [o.pk for o in orders])

        batch = wait_until_finished(answer["batch"]["id"], timeout=240)
        log = stack.sandbox.request_log()
        faults = {kind for r in log if r.get("fault") for kind in str(r["fault"]).split(",")}
        assert len(faults) >= 6, f"the run should have met most fault kinds, met {faults}"
        assert sum(1 for r in log if r.get("fault")) >= 15
        assert (batch.pushed_count, batch.failed_count) == (1000, 0)
        assert batch.status == BatchStatus.COMPLETED
        state = stack.sandbox.snapshot(include_items=False)
        assert state["orders"]["count"] == 1000
        assert state["duplicate_labels"] == 0


def test_worker_killed_mid_batch_then_restarted_finishes_the_batch(stack: Stack) -> None:
    # Slow answers keep chunks in flight long enough to kill the worker while it holds some.
    stack.sandbox.set_faults({"POST /orders": [{"kind": "slow", "probability": 1.0, "seconds": 1.0}]})
    worker = stack.worker()
    stack.beat()
    shop, token = demo_shop("killed")
    orders = make_orders(shop, 1000)

    answer = push(stack, token, [o.pk for o in orders])
    batch_id = answer["batch"]["id"]
    wait_for(
        lambda: OrderShipment.objects.filter(batch_id=batch_id, state=ShipmentState.PUSHED).exists(),
        timeout=60,
        what="the first chunk to be pushed",
    )
    worker.kill(signal.SIGKILL)
    assert not PushBatch.objects.get(pk=batch_id).is_finished, "the kill must land mid-batch"
    in_flight = OrderShipment.objects.filter(batch_id=batch_id).exclude(state=ShipmentState.PUSHED).count()
    assert in_flight > 0

    stack.sandbox.set_faults({})
    restarted_at = time.monotonic()
    stack.worker(name="worker-2")
    # Bound: the stale-claim timeout (6 s) + a sweep interval (2 s) + the work left; 90 s is generous.
    batch = wait_until_finished(batch_id, timeout=90)
    assert time.monotonic() - restarted_at < 90
    assert (batch.status, batch.pushed_count, batch.failed_count) == (BatchStatus.COMPLETED, 1000, 0)
    assert stack.sandbox.snapshot(include_items=False)["orders"]["count"] == 1000
    assert stack.sandbox.snapshot(include_items=False)["duplicate_labels"] == 0


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {}


class TestRateLimitedSandbox:
    """Two workers share one request budget, so a strict Sendcloud never has to say 429."""

    @pytest.fixture
    def stack_settings(self) -> dict[str, str]:
        return {
            "SENDCLOUD_UNSAFE_PER_MINUTE": "40",
            "SENDCLOUD_UNSAFE_PER_SECOND": "3",
            "SENDCLOUD_CHUNK_SIZE": "20",
        }

    def test_two_workers_stay_within_the_limits(self, stack: Stack) -> None:
        stack.sandbox.update_config(unsafe_per_minute=40, unsafe_per_second=3)
        stack.worker(name="worker-a", concurrency=2)
        stack.worker(name="worker-b", concurrency=2)
        shop, token = demo_shop("limited")
        orders = make_orders(shop, 600)

        answer = push(stack, token, [o.pk for o in orders])

        batch = wait_until_finished(answer["batch"]["id"], timeout=120)
        assert (batch.status, batch.pushed_count) == (BatchStatus.COMPLETED, 600)
        assert batch.total_chunks == 30
        assert sandbox_429s(stack.sandbox) == 0
        posts = [r for r in stack.sandbox.request_log() if r["method"] == "POST"]
        assert len(posts) == 30
        assert "worker-a" in stack.processes["worker-a"].tail(400)
        served_by = {name for name in ("worker-a", "worker-b") if "process_chunk" in stack.processes[name].tail(2000)}
        assert served_by == {"worker-a", "worker-b"}, "both workers took chunks"
