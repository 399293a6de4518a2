"""The Sendcloud request budget is never exceeded: at most 100 writes in any 60 s, 15 in any second, 1000 GETs a minute.

Sendcloud counts per account, at the moment a request *arrives*; one request too many is a 429 and a chunk
handed back. Between a grant and the arrival lies whatever the worker does before sending (a busy thread may
wait for the CPU) and the network; the budget counts a request until its answer is in, so no such delay can
make Sendcloud see more than its limit. A simulated run of concurrent senders with random delays checks
every window of Sendcloud's at the requests' arrival times; the Redis store (the production one) is checked
in real time on a key of its own.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.budget import Kind
from tests.conftest import requires_redis

SENDCLOUD_LIMITS = {Kind.UNSAFE: [(60.0, 100), (1.0, 15)], Kind.SAFE: [(60.0, 1000)]}


@pytest.fixture
def file_budget(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    budget.reset_store()
    yield
    budget.reset_store()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def send_as_fast_as_allowed(
    kind: Kind, *, seconds: float, senders: int = 1, delay: float = 0.0, answer: float = 0.005, seed: int = 0
) -> list[float]:
    """Senders that send whenever the budget grants a slot, wait exactly as long as they are told, and send
    the next request once the last one was answered.

    Each request arrives at Sendcloud up to ``delay`` seconds after its grant (at random) and is answered
    up to ``answer`` seconds after it arrived, when the client settles its slot. Returns the arrival times,
    sorted, relative to the start.
    """
    rng = random.Random(seed)
    clock = Clock()
    start = clock.now
    key = f"{budget.account_key('simulated-account')}:{kind}"
    windows = budget.windows(kind)
    store = budget.store()
    arrivals: list[float] = []
    # (time, order, what, sender, member): a sender trying for a slot, or a request being answered.
    events: list[tuple[float, int, str, int, str]] = [(start, n, "try", n, "") for n in range(senders)]
    order = itertools.count(senders)
    with mock.patch.object(budget.time, "time", clock):
        while events:
            at, _, what, sender, member = heapq.heappop(events)
            clock.now = at
            if what == "answer":
                store.settle(key, [member])
                if at - start < seconds:
                    heapq.heappush(events, (at, next(order), "try", sender, ""))
                continue
            member = budget.new_member()
            wait = store.take(key, windows, member=member)
            if wait:
                heapq.heappush(events, (at + wait, next(order), "try", sender, ""))
                continue
            arrived = at + rng.uniform(0, delay)
            arrivals.append(arrived - start)
            heapq.heappush(events, (arrived + rng.uniform(0, answer), next(order), "answer", sender, member))
    return sorted(arrivals)


def most_in_any_window(grants: list[float], span: float) -> int:
    """The largest number of grants within any window of ``span`` seconds (Sendcloud's way of counting)."""
    most = 0
    start = 0
    for end, at in enumerate(grants):
        while grants[start] <= at - span:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.usefixtures("file_budget")
@pytest.mark.parametrize("kind", [Kind.UNSAFE, Kind.SAFE])
def test_a_worker_sending_flat_out_never_exceeds_any_of_sendclouds_windows(kind: Kind) -> None:
    arrivals = send_as_fast_as_allowed(kind, seconds=150)

    for span, limit in SENDCLOUD_LIMITS[kind]:
        assert most_in_any_window(arrivals, span) <= limit, f"more than {limit} requests within {span:g} s"


@pytest.mark.usefixtures("file_budget")
@pytest.mark.parametrize("seed", range(2))
def test_late_requests_never_exceed_any_window_whatever_the_delays(seed: int) -> None:
    """32 senders (four workers of eight threads) on a loaded machine: a request reaches Sendcloud up to 1.5 s
    after its grant (longer than any margin) and is answered up to 0.5 s later. Counted until answered, none
    is one too many."""
    arrivals = send_as_fast_as_allowed(Kind.UNSAFE, seconds=130, senders=32, delay=1.5, answer=0.5, seed=seed)

    assert len(arrivals) > 200  # the run spans three minutes' allowances
    for span, limit in SENDCLOUD_LIMITS[Kind.UNSAFE]:
        assert most_in_any_window(arrivals, span) <= limit, f"more than {limit} requests within {span:g} s"


@pytest.mark.usefixtures("file_budget")
def test_counting_grants_alone_lets_late_requests_through() -> None:
    """The check above can fail: with each request counted at its grant only (settled at once, as the
    budget did before it waited for answers), the same delays put more than 15 writes into one second."""
    store = budget.store()
    real_take = store.take

    def take_and_settle_at_once(key: str, windows: Any, **kwargs: Any) -> float:
        wait = real_take(key, windows, **kwargs)
        if not wait and kwargs.get("member"):
            store.settle(key, [kwargs["member"]])
        return wait

    with mock.patch.object(store, "take", take_and_settle_at_once):
        arrivals = send_as_fast_as_allowed(Kind.UNSAFE, seconds=130, senders=32, delay=1.5, answer=0.5, seed=0)

    assert most_in_any_window(arrivals, 1.0) > 15


@pytest.mark.usefixtures("file_budget")
@pytest.mark.parametrize("kind", [Kind.UNSAFE, Kind.SAFE])
def test_the_budget_grants_the_whole_minute_and_not_one_request_more(settings: Any, kind: Kind) -> None:
    """All of the minute's requests go out in the first minute (none is held back needlessly); the next
    one only once the first has left Sendcloud's window, plus the margin."""
    arrivals = send_as_fast_as_allowed(kind, seconds=70)
    minute = SENDCLOUD_LIMITS[kind][0][1]

    assert sum(1 for at in arrivals if at < 60) == minute
    assert 60.0 < arrivals[minute] <= 60.0 + settings.SENDCLOUD_BUDGET_MARGIN_SECONDS + 0.1


@pytest.mark.usefixtures("file_budget")
def test_a_burst_runs_at_sendclouds_rate_less_only_the_margin(settings: Any) -> None:
    """The first minute's hundred writes go out at 15 per (1 s + the burst margin + the answer time), no
    slower: what the push's limit efficiency is made of."""
    arrivals = send_as_fast_as_allowed(Kind.UNSAFE, seconds=20, senders=15, answer=0.05)
    hundredth = arrivals[99]
    groups = 100 // 15  # six full seconds of 15 before the last ten
    assert hundredth <= groups * (1 + settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS + 0.05) + 0.05


@pytest.mark.usefixtures("file_budget")
def test_an_unanswered_request_holds_its_slot_until_the_clients_timeouts_pass(settings: Any) -> None:
    """A worker killed mid-request never settles: its slot counts until twice the client's timeouts have
    passed (it cannot arrive later), then frees up; meanwhile a full window says to look again shortly."""
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 1
    clock = Clock()
    granted = clock.now
    key, windows = f"{budget.account_key('killed')}:{Kind.UNSAFE}", budget.windows(Kind.UNSAFE)
    store = budget.store()
    with mock.patch.object(budget.time, "time", clock):
        assert store.take(key, windows, member="the killed worker's") == 0.0
        clock.now += 5
        assert store.take(key, windows) == budget.IN_FLIGHT_RECHECK_SECONDS
        clock.now = granted + budget.hold_seconds()
        assert store.take(key, windows) > 0  # now counted as if answered then
        clock.now += 1 + settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS
        assert store.take(key, windows) == 0.0


@pytest.mark.usefixtures("file_budget")
def test_a_slot_left_unanswered_counts_from_the_threads_next_take(settings: Any) -> None:
    """A request refused before it was sent (no answer, no settle) does not hold its slot for the whole hold:
    the thread's next take for the account counts it from then, one window."""
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 1
    clock = Clock()
    window = 1 + settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS
    with mock.patch.object(budget.time, "time", clock):
        assert budget.take(public_key="leaky", kind=Kind.UNSAFE) == 0.0  # and then no request
        clock.now += 0.5
        assert budget.take(public_key="leaky", kind=Kind.UNSAFE) == pytest.approx(window)
        clock.now += window
        assert budget.take(public_key="leaky", kind=Kind.UNSAFE) == 0.0


@pytest.mark.usefixtures("file_budget")
def test_an_answer_frees_the_slot_a_second_after_it_came(settings: Any) -> None:
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 1
    clock = Clock()
    window = 1 + settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS
    with mock.patch.object(budget.time, "time", clock):
        assert budget.take(public_key="answered", kind=Kind.UNSAFE) == 0.0
        clock.now += 3  # a slow answer
        budget.settle(public_key="answered", kind=Kind.UNSAFE)
        assert budget.take(public_key="answered", kind=Kind.UNSAFE) == pytest.approx(window)
        budget.settle(public_key="answered", kind=Kind.SAFE)  # another kind's answer settles nothing here
        clock.now += window
        assert budget.take(public_key="answered", kind=Kind.UNSAFE) == 0.0


@requires_redis
def test_redis_refuses_the_101st_write_until_sixty_seconds_after_the_first(settings: Any) -> None:
    """The production store, in real time. The per-second rule is lifted so a hundred writes fit in a moment."""
    settings.SENDCLOUD_BUDGET_ENABLED = True
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.SENDCLOUD_UNSAFE_PER_SECOND = 1000
    public_key = f"guard-test-{uuid.uuid4()}"  # a key of its own on the shared Redis
    budget.reset_store()
    try:
        first = time.monotonic()
        granted = []
        for _ in range(100):
            granted.append(budget.take(public_key=public_key, kind=Kind.UNSAFE))
            budget.settle(public_key=public_key, kind=Kind.UNSAFE)  # answered at once
        peeked = budget.peek(public_key=public_key, kind=Kind.UNSAFE)
        refused = budget.take(public_key=public_key, kind=Kind.UNSAFE)
        elapsed = time.monotonic() - first

        assert granted == [0.0] * 100
        assert refused > 0
        assert peeked > 0
        assert elapsed + refused >= 60.0, "the 101st write would reach Sendcloud within the same minute"
        assert refused <= budget.windows(Kind.UNSAFE)[0].seconds
    finally:
        budget.reset_store()
        import redis

        key = f"wemasy:sendcloud-budget:{budget.account_key(public_key)}:{Kind.UNSAFE}"
        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(key)


def test_the_window_check_counts_like_sendcloud() -> None:
    """The helper above must itself be right, or the tests prove nothing."""
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([float(i) for i in range(5)], 1.0) == 1
    assert most_in_any_window(list(itertools.repeat(0.0, 4)), 1.0) == 4
