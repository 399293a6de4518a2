"""One shared Sendcloud request budget per Sendcloud account, respected by every worker everywhere.

Sendcloud allows, per account, 100 unsafe requests (POST, PUT, PATCH, DELETE) a minute with at most
15 a second, and 1000 GETs a minute; beyond that it answers 429. Each worker asking for 100 a minute
on its own would blow through that, so every request first takes a slot here.

The budget is a sliding-window log (a sorted set of grant times) per account and kind, checked and
updated in one Lua script, so it is exact and atomic across processes and machines, and it uses
Redis's clock, so the workers' clocks do not matter. A caller that gets no slot is told how long to
wait and must not block its worker meanwhile: the task re-schedules itself.

Without Redis (the embedded development defaults) the same log lives in a file under ``var/``,
guarded by ``flock``: shared by the processes of one machine, which is all a dev setup has.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import itertools
import json
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from wemasy import metrics


class Kind(enum.StrEnum):
    SAFE = "safe"  # GET
    UNSAFE = "unsafe"  # POST, PUT, PATCH, DELETE


@dataclass(frozen=True)
class Window:
    seconds: float
    limit: int


def spent_message(wait: float) -> str:
    """What a person reads when the account's budget has no slot now (every door that asks Sendcloud directly)."""
    return f"The Sendcloud request budget of this account is spent; try again in {math.ceil(wait)} s."


def windows(kind: Kind) -> list[Window]:
    """The limits for a kind of request, widened by a small margin against clock and network jitter.

    The per-second window has a margin of its own: the same half second that costs the minute window
    under 1 % costs the burst a third of its rate (15 writes per 1.5 s), and with it the push's last
    minute. What a margin must cover is the spread of the delays between a grant and the request's
    arrival at Sendcloud, which the push phase keeps to the request itself (no query in between).
    """
    margin = settings.SENDCLOUD_BUDGET_MARGIN_SECONDS
    if kind is Kind.UNSAFE:
        return [
            Window(60 + margin, settings.SENDCLOUD_UNSAFE_PER_MINUTE),
            Window(1 + settings.SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS, settings.SENDCLOUD_UNSAFE_PER_SECOND),
        ]
    return [Window(60 + margin, settings.SENDCLOUD_SAFE_PER_MINUTE)]


def account_key(public_key: str) -> str:
    """Budgets are keyed by a hash of the public key: the key itself never reaches Redis."""
    return hashlib.sha256(public_key.encode()).hexdigest()[:16]


class Store(Protocol):
    def take(self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0) -> float: ...


def _granting(limit: int, headroom: int) -> int:
    """How many grants a window allows a caller that must leave ``headroom`` slots free (never fewer than 1)."""
    return max(1, limit - headroom)


# KEYS[1]: the log; ARGV: member, '1' to take a slot or '0' to only look, the headroom (slots the caller
# must leave free in every window), then (seconds, limit) pairs.
# Returns 0 when a slot is (or was) free, else the wait in milliseconds.
_LUA_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local longest = 0
local wait = 0
local headroom = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local span = tonumber(ARGV[i]) * 1000
  local limit = math.max(1, tonumber(ARGV[i + 1]) - headroom)
  if span > longest then longest = span end
  local count = redis.call('ZCOUNT', KEYS[1], now - span, '+inf')
  if count >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - span, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
    local until_free = tonumber(oldest[2]) + span - now
    if until_free > wait then wait = until_free end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
if wait > 0 then return math.max(1, math.ceil(wait)) end
if ARGV[2] == '0' then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. now)
redis.call('PEXPIRE', KEYS[1], longest + 1000)
return 0
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self._take = self._client.register_script(_LUA_TAKE)
        # ``next()`` on a count is atomic under the GIL: the threads of one worker never share a member
        # (two grants under one member would be one entry in the log, and one request too many).
        self._counter = itertools.count(1)

    def take(self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0) -> float:
        member = f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}-{next(self._counter)}"
        args: list[Any] = [member, "1" if consume else "0", headroom]
        for window in windows:
            args.extend([window.seconds, window.limit])
        wait_ms = int(self._take(keys=[f"{settings.SENDCLOUD_BUDGET_KEY_PREFIX}:sendcloud-budget:{key}"], args=args))
        return wait_ms / 1000


class FileStore:
    """The same sliding log in a JSON file, for development without Redis."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def take(self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0) -> float:
        path = self._directory / f"{key}.json"
        with path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            raw = handle.read()
            now = time.time()
            longest = max(window.seconds for window in windows)
            log = [stamp for stamp in (json.loads(raw) if raw else []) if stamp > now - longest]
            wait = 0.0
            for window in windows:
                recent = [stamp for stamp in log if stamp > now - window.seconds]
                limit = _granting(window.limit, headroom)
                if len(recent) >= limit:
                    wait = max(wait, recent[len(recent) - limit] + window.seconds - now)
            if wait <= 0 and consume:
                log.append(now)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(log))
        return wait if wait > 0 else 0.0


_store: Store | None = None


def store() -> Store:
    global _store
    if _store is None:
        redis_url = settings.REDIS_URL
        _store = RedisStore(redis_url) if redis_url else FileStore(Path(settings.VAR_DIR) / "budget")
    return _store


def take(*, public_key: str, kind: Kind, headroom: int = 0) -> float:
    """Take one request slot for the account. Returns 0.0 when granted, else seconds to wait.

    With ``headroom``, the slot is granted only if that many more stay free in every window: a request
    that prepares another (a service-point check before its label request) leaves the other its slot.
    """
    if not settings.SENDCLOUD_BUDGET_ENABLED:
        return 0.0
    return store().take(f"{account_key(public_key)}:{kind}", windows(kind), headroom=headroom)


def peek(*, public_key: str, kind: Kind) -> float:
    """Seconds until a slot frees up (0.0 when one is free now), without taking it.

    For a caller with expensive preparation to do: look first, prepare, then ``take`` right before
    sending. Taking early would let the preparation's time pass between the grant and the request's
    arrival at Sendcloud, which then may count it in the next window.
    """
    if not settings.SENDCLOUD_BUDGET_ENABLED:
        return 0.0
    return store().take(f"{account_key(public_key)}:{kind}", windows(kind), consume=False)


def acquire(*, public_key: str, kind: Kind, consume: bool = True, headroom: int = 0) -> float:
    """Take (or, with ``consume=False``, look for) a slot, sleeping through short waits.

    A wait of at most ``SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS`` (the per-second burst window) is
    slept through in the worker, up to twice that in all: re-scheduling the task for it would cost a
    broker round trip and a countdown message, and a worker holding many countdown messages is
    exactly the situation in which Celery workers are known to stop fetching work. Longer waits
    (the per-minute window) are returned, and the caller re-schedules itself without holding its
    worker. Returns 0.0 when the slot was granted (or is free), else the seconds still to wait.
    ``headroom`` is :func:`take`'s (a slot only if that many more stay free).
    """
    limit = settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS
    slept = 0.0
    while True:
        wait = (
            take(public_key=public_key, kind=kind, headroom=headroom)
            if consume
            else peek(public_key=public_key, kind=kind)
        )
        if not wait or wait > limit or slept + wait > 2 * limit:
            metrics.record_budget_deferred(kind=kind, wait=wait)
            return wait
        pause = wait + random.uniform(0, 0.05)  # spread processes that were told the same wait
        metrics.record_budget_sleep(kind=kind, seconds=pause)
        time.sleep(pause)
        slept += pause


def reset_store() -> None:
    """Forget the cached store (tests change settings between runs)."""
    global _store
    _store = None
