"""The shared Sendcloud request budget: exact, shared across processes, never blocking."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import responses
from django.conf import settings

from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.budget import FileStore, Kind, RedisStore, Window
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import TransientError
from sendcloud_integration.sendcloud.factory import build_client
from tests.conftest import requires_redis


@pytest.fixture
def redis_store() -> RedisStore:
    import redis

    url = os.environ["REDIS_URL"]
    pattern = f"{settings.SENDCLOUD_BUDGET_KEY_PREFIX}:sendcloud-budget:*"
    redis.Redis.from_url(url).delete(*(redis.Redis.from_url(url).keys(pattern) or ["x"]))
    return RedisStore(url)


def take_many(store: Any, key: str, windows: list[Window], n: int) -> list[float]:
    return [store.take(key, windows) for _ in range(n)]


def take_answered(store: Any, key: str, windows: list[Window], **kwargs: Any) -> float:
    """Take a slot and, when granted, settle it at once: a request answered in no time."""
    member = budget.new_member()
    wait = float(store.take(key, windows, member=member, **kwargs))
    if not wait:
        store.settle(key, [member])
    return wait


@requires_redis
def test_redis_grants_exactly_the_limit_then_says_how_long_to_wait(redis_store: RedisStore) -> None:
    waits = take_many(redis_store, "acct:unsafe", [Window(2, 5)], 7)
    assert waits[:5] == [0.0] * 5
    assert all(0 < wait <= 2 for wait in waits[5:])


@requires_redis
def test_redis_slot_comes_back_when_the_window_slides(redis_store: RedisStore) -> None:
    windows = [Window(0.5, 2)]
    assert [take_answered(redis_store, "slide", windows) for _ in range(2)] == [0.0, 0.0]
    wait = redis_store.take("slide", windows)
    assert 0.4 < wait <= 0.5
    time.sleep(wait + 0.05)
    assert redis_store.take("slide", windows) == 0.0


@requires_redis
def test_redis_checks_every_window(redis_store: RedisStore) -> None:
    windows = [Window(60, 100), Window(1, 3)]
    assert take_many(redis_store, "burst", windows, 3) == [0.0] * 3
    assert 0 < redis_store.take("burst", windows) <= 1


@requires_redis
def test_peek_looks_without_taking(redis_store: RedisStore) -> None:
    windows = [Window(60, 1)]
    assert redis_store.take("peek", windows, consume=False) == 0.0
    assert redis_store.take("peek", windows, consume=False) == 0.0
    assert redis_store.take("peek", windows) == 0.0
    assert redis_store.take("peek", windows, consume=False) > 0


def test_file_store_peek_looks_without_taking(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.take("k", [Window(60, 1)], consume=False) == 0.0
    assert store.take("k", [Window(60, 1)]) == 0.0
    assert store.take("k", [Window(60, 1)], consume=False) > 0


@requires_redis
def test_accounts_have_separate_budgets(redis_store: RedisStore) -> None:
    windows = [Window(60, 1)]
    assert redis_store.take("a", windows) == 0.0
    assert redis_store.take("b", windows) == 0.0
    assert redis_store.take("a", windows) > 0


def _hammer(url: str, count: int, queue: Any) -> None:
    store = RedisStore(url)
    queue.put(sum(1 for _ in range(count) if store.take("shared", [Window(30, 50)]) == 0.0))


@requires_redis
def test_redis_budget_is_exact_across_processes(redis_store: RedisStore) -> None:
    queue: Any = multiprocessing.get_context("fork").Queue()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_hammer, args=(os.environ["REDIS_URL"], 40, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    granted = sum(queue.get(timeout=5) for _ in workers)
    assert granted == 50  # 160 attempts, a limit of 50: exactly 50 granted


@requires_redis
def test_redis_budget_is_exact_across_the_threads_of_one_worker(redis_store: RedisStore) -> None:
    """The threads pool: one store (one connection pool, one member counter) shared by 16 threads."""
    windows = [Window(60, 50)]
    barrier = threading.Barrier(16)
    granted: list[int] = []

    def hammer() -> None:
        barrier.wait(30)
        granted.append(sum(1 for _ in range(20) if redis_store.take("threads", windows) == 0))

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(granted) == 50  # 320 attempts, a limit of 50: exactly 50 granted


def _headroom_holds(store: Any) -> None:
    """Three slots, headroom 1: two grants leave the third free for a caller without headroom."""
    windows = [Window(60, 3)]
    assert [store.take("room", windows, headroom=1) for _ in range(2)] == [0.0, 0.0]
    assert store.take("room", windows, headroom=1) > 0  # would take the last slot
    assert store.take("room", windows) == 0.0  # the request it was kept for gets it
    assert store.take("room", windows) > 0
    assert store.take("tight", [Window(60, 1)], headroom=1) == 0.0  # a limit of 1 still grants one


@requires_redis
def test_redis_headroom_leaves_slots_for_another_request(redis_store: RedisStore) -> None:
    _headroom_holds(redis_store)


def test_file_store_headroom_leaves_slots_for_another_request(tmp_path: Path) -> None:
    _headroom_holds(FileStore(tmp_path))


def test_file_store_grants_the_limit(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    waits = take_many(store, "acct", [Window(2, 3)], 5)
    assert waits[:3] == [0.0] * 3
    assert all(0 < wait <= 2 for wait in waits[3:])


def test_budget_uses_documented_limits_and_hides_the_key(settings: Any, tmp_path: Path) -> None:
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    budget.reset_store()
    try:
        assert [(w.limit) for w in budget.windows(Kind.UNSAFE)] == [100, 15]
        assert [w.seconds for w in budget.windows(Kind.UNSAFE)] == [60.25, 1.1], "each window with its margin"
        assert [(w.limit) for w in budget.windows(Kind.SAFE)] == [1000]
        assert budget.take(public_key="very-secret-public-key", kind=Kind.UNSAFE) == 0.0
        names = [p.name for p in (tmp_path / "budget").iterdir()]
        assert names
        assert all("very-secret" not in name for name in names)
    finally:
        budget.reset_store()


def test_disabled_budget_always_grants(settings: Any) -> None:
    settings.SENDCLOUD_BUDGET_ENABLED = False
    assert all(budget.take(public_key="k", kind=Kind.UNSAFE) == 0.0 for _ in range(500))


def test_acquire_sleeps_through_a_short_wait(settings: Any) -> None:
    settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS = 2
    with (
        mock.patch.object(budget, "take", side_effect=[0.3, 0.0]) as take,
        mock.patch.object(budget.time, "sleep") as sleep,
    ):
        assert budget.acquire(public_key="k", kind=Kind.UNSAFE) == 0.0
    assert take.call_count == 2
    assert 0.3 <= sleep.call_args.args[0] <= 0.35


def test_acquire_hands_a_long_wait_back_without_sleeping(settings: Any) -> None:
    settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS = 2
    with mock.patch.object(budget, "take", return_value=45.0), mock.patch.object(budget.time, "sleep") as sleep:
        assert budget.acquire(public_key="k", kind=Kind.UNSAFE) == 45.0
    sleep.assert_not_called()


def test_acquire_stops_sleeping_after_twice_the_limit(settings: Any) -> None:
    settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS = 1
    with mock.patch.object(budget, "take", return_value=0.9), mock.patch.object(budget.time, "sleep") as sleep:
        assert budget.acquire(public_key="k", kind=Kind.UNSAFE) == 0.9
    assert sleep.call_count == 2  # 0.9 + 0.9 <= 2 * 1; a third would pass it


@requires_redis
def test_redis_counts_a_request_until_its_answer(redis_store: RedisStore) -> None:
    """A grant counts as in flight (look again shortly) however long its request takes; once settled, it
    counts from the answer on, for the whole window."""
    windows = [Window(0.5, 1)]
    member = budget.new_member()
    assert redis_store.take("answer", windows, member=member) == 0.0
    time.sleep(0.6)  # longer than the window: a log of grant times would free the slot by now
    assert redis_store.take("answer", windows) == budget.IN_FLIGHT_RECHECK_SECONDS
    redis_store.settle("answer", [member])
    assert 0.4 < redis_store.take("answer", windows) <= 0.5


@pytest.fixture
def client_budget(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """The file budget with one request a minute of each kind, and clients that talk to a mocked Sendcloud."""
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.SENDCLOUD_SAFE_PER_MINUTE = settings.SENDCLOUD_UNSAFE_PER_MINUTE = 1
    settings.SENDCLOUD_API_BASE_URL = "https://sendcloud.test/api"
    budget.reset_store()
    yield tmp_path / "budget"
    budget.reset_store()


@responses.activate
def test_every_call_of_a_client_settles_its_slot(client_budget: Path) -> None:
    """The client settles the slot its caller took, for an answer and for a failure alike: the next request
    of the account waits a window from the answer, not 'in flight' until the client's timeouts pass."""
    responses.get("https://sendcloud.test/api/v3/integrations", json={"data": []})
    responses.get("https://sendcloud.test/api/v3/integrations", status=503)
    integration = mock.Mock(public_key="settled-account", secret_key="s")
    client = build_client(integration, CallLog(shop_id=1))
    for outcome in ("answer", "failure"):
        assert budget.take(public_key="settled-account", kind=Kind.SAFE) == 0.0, outcome
        assert budget.peek(public_key="settled-account", kind=Kind.SAFE) == budget.IN_FLIGHT_RECHECK_SECONDS
        try:
            client.list_integrations()
        except TransientError:
            assert outcome == "failure"
        assert 59 < budget.peek(public_key="settled-account", kind=Kind.SAFE) <= 60.25, outcome
        budget.reset_store()
        for path in client_budget.iterdir():
            path.unlink()


@responses.activate
def test_a_write_settles_the_write_slot(client_budget: Path) -> None:
    """The kind follows the method: a PATCH's answer settles the account's write slot, not its read slot."""
    responses.patch("https://sendcloud.test/api/v3/integrations/7", status=204)
    client = build_client(mock.Mock(public_key="writing-account", secret_key="s"), CallLog(shop_id=1))
    assert budget.take(public_key="writing-account", kind=Kind.UNSAFE) == 0.0
    client.set_integration_webhook(7, active=True, url="https://shop.example/webhooks/sendcloud/t")
    assert 59 < budget.peek(public_key="writing-account", kind=Kind.UNSAFE) <= 60.25
