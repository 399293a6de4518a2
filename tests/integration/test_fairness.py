"""Fair by account, through real processes: a small push is not held up by another account's big one.

Shop A pushes 20,000 orders and shop B, on a Sendcloud account of its own, then pushes 50. B's orders
must reach the sandbox about as fast as on an idle system, while A goes on at its budget's ceiling, and
nobody gets a 429. A does not need to finish: the measurement takes ~25 s.

To keep that short, Sendcloud's limits are shrunk so the per-second window is the one that binds (the
per-minute window is 60 s long, longer than the test): the sandbox allows 5 writes a second per account
and the service's budget is told the same, with its default margin, so its ceiling is 5 writes per
(1 s + the margin). Chunks of 20 orders give A's push 1,000 chunks: a backlog of minutes at that ceiling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from django.conf import settings as django_settings
from django.db import connection

from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState
from sendcloud_sandbox.config import Account, SandboxConfig
from sendcloud_sandbox.server import SandboxServer
from tests.factories import SendcloudIntegrationFactory, ShopFactory, issue_token
from tests.integration.conftest import Stack, requires_stack, wait_for
from tests.integration.helpers import push
from webshop.demo import make_orders
from webshop.models import Order, Shop

pytestmark = [requires_stack, pytest.mark.integration]

PER_SECOND = 5
CHUNK_SIZE = 20
#: The budget's ceiling for one account, in writes a second: PER_SECOND writes per (1 s + the service's
#: default margin for the per-second window; the test's processes get no other).
CEILING = PER_SECOND / (1 + django_settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS)
A_ORDERS = 20_000
B_ORDERS = 50
#: How long A runs before B pushes, and how long after that A's rate is measured.
A_HEAD_START = 6.0
MEASURED = 15.0
CONCURRENCY = 8

ACCOUNT_A = Account(public_key="shop-a-public", secret_key="shop-a-secret", integration_ids=[1001])
ACCOUNT_B = Account(public_key="shop-b-public", secret_key="shop-b-secret", integration_ids=[2002])


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        accounts=[ACCOUNT_A, ACCOUNT_B],
        unsafe_per_second=PER_SECOND,
        unsafe_per_minute=100_000,
        label_delay_seconds=0.2,
        seed=7,
    )
    server = SandboxServer(config=config).start()
    yield server
    server.stop()


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {
        "SENDCLOUD_UNSAFE_PER_SECOND": str(PER_SECOND),
        "SENDCLOUD_UNSAFE_PER_MINUTE": "100000",
        "SENDCLOUD_CHUNK_SIZE": str(CHUNK_SIZE),
        # Chunks waiting in the broker for a thread are not "abandoned": keep the sweep out of this.
        "SENDCLOUD_STALE_AFTER_SECONDS": "120",
    }


def shop_on(account: Account, slug: str) -> tuple[Shop, str]:
    shop = ShopFactory(slug=slug)
    SendcloudIntegrationFactory(
        shop=shop,
        public_key=account.public_key,
        secret_key=account.secret_key,
        integration_id=account.integration_ids[0],
        shipping_option_code="",
    )
    return shop, issue_token(shop)


def seconds_until_in_sendcloud(stack: Stack, token: str, orders: list[Order]) -> float:
    """Push the orders; return how long after the push's answer the last of them was in Sendcloud."""
    answer = push(stack, token, [o.pk for o in orders])
    answered = time.monotonic()
    batch_id = answer["batch"]["id"]

    def all_in_sendcloud() -> bool:
        pushed = OrderShipment.objects.filter(batch_id=batch_id, state=ShipmentState.PUSHED).count()
        return pushed == len(orders)

    wait_for(all_in_sendcloud, timeout=60, interval=0.05, what=f"{len(orders)} orders to reach Sendcloud")
    return time.monotonic() - answered


def accepted_writes(stack: Stack, account: Account) -> list[float]:
    return sorted(
        datetime.fromisoformat(str(r["time"])).timestamp()
        for r in stack.sandbox.request_log()
        if r["account"] == account.public_key and r["path"] == "/api/v3/orders" and r["status"] == 201
    )


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_a_small_push_is_not_held_up_by_another_accounts_backlog(stack: Stack) -> None:
    shop_a, token_a = shop_on(ACCOUNT_A, "big-shop")
    shop_b, token_b = shop_on(ACCOUNT_B, "small-shop")
    orders_a = make_orders(shop_a, A_ORDERS, prefix="A")
    orders_b = make_orders(shop_b, 2 * B_ORDERS, prefix="B")
    stack.worker(concurrency=CONCURRENCY)

    idle = seconds_until_in_sendcloud(stack, token_b, orders_b[:B_ORDERS])

    started = time.time()
    batches_a = [push(stack, token_a, [o.pk for o in orders_a[i : i + 10_000]]) for i in range(0, A_ORDERS, 10_000)]
    time.sleep(A_HEAD_START)
    connections_before = database_connections()
    busy = seconds_until_in_sendcloud(stack, token_b, orders_b[B_ORDERS:])
    time.sleep(max(0.0, started + A_HEAD_START + MEASURED - time.time()))
    connections_after = database_connections()

    writes = [t for t in accepted_writes(stack, ACCOUNT_A) if t >= started]
    rate = (len(writes) - 1) / (writes[-1] - writes[0])
    print(f"B idle {idle:.2f}s, B behind A {busy:.2f}s; A {rate:.2f} writes/s (ceiling {CEILING:.2f})")

    assert busy <= max(2 * idle, idle + 2.0), f"B waited {busy:.1f}s behind A's backlog (idle: {idle:.1f}s)"
    assert rate >= 0.95 * CEILING, f"A sent {rate:.2f} writes a second; its budget allows {CEILING:.2f}"
    assert sum(1 for r in stack.sandbox.request_log() if r["status"] == 429) == 0
    unfinished = PushBatch.objects.filter(pk__in=[b["batch"]["id"] for b in batches_a], finished_at__isnull=True)
    assert unfinished.count() >= 1, "A's push is still going: the measurement ran against a backlog"
    # One connection per busy worker thread at most, closed after each task: nothing piles up.
    assert max(connections_before, connections_after) <= CONCURRENCY + 4
