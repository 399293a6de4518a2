"""The Sendcloud request budget is never exceeded: at most 100 writes in any 60 s, 15 in any second, 1000 GETs a minute.

Sendcloud counts per account; one request too many is a 429 and a chunk handed back. The budget's windows
are a little *longer* than Sendcloud's (a safety margin against clock and network jitter), never shorter.
A simulated minute checks every window of a worker that sends as fast as the budget lets it; the Redis
store (the production one) is checked in real time on a key of its own.
"""

from __future__ import annotations

import itertools
import os
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


def send_as_fast_as_allowed(kind: Kind, *, seconds: float) -> list[float]:
    """A worker that sends whenever the budget grants a slot, and waits exactly as long as it is told.

    Returns the grant times, relative to the first.
    """
    clock = Clock()
    start = clock.now
    grants: list[float] = []
    with mock.patch.object(budget.time, "time", clock):
        while clock.now - start < seconds:
            wait = budget.take(public_key="simulated-account", kind=kind)
            if wait == 0.0:
                grants.append(clock.now - start)
                clock.now += 0.005
            else:
                clock.now += wait
    return grants


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
    grants = send_as_fast_as_allowed(kind, seconds=150)

    for span, limit in SENDCLOUD_LIMITS[kind]:
        assert most_in_any_window(grants, span) <= limit, f"more than {limit} requests within {span:g} s"


@pytest.mark.usefixtures("file_budget")
@pytest.mark.parametrize("kind", [Kind.UNSAFE, Kind.SAFE])
def test_the_budget_grants_the_whole_minute_and_not_one_request_more(settings: Any, kind: Kind) -> None:
    """All of the minute's requests go out in the first minute (none is held back needlessly); the next
    one only once the first has left Sendcloud's window, plus the margin."""
    grants = send_as_fast_as_allowed(kind, seconds=70)
    minute = SENDCLOUD_LIMITS[kind][0][1]

    assert sum(1 for at in grants if at < 60) == minute
    assert 60.0 < grants[minute] <= 60.0 + settings.SENDCLOUD_BUDGET_MARGIN_SECONDS + 0.1


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
        granted = [budget.take(public_key=public_key, kind=Kind.UNSAFE) for _ in range(100)]
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
