"""One shared Sendcloud request budget per Sendcloud account, respected by every worker everywhere.

Sendcloud allows, per account, 100 unsafe requests (POST, PUT, PATCH, DELETE) a minute with at most
15 a second, and 1000 GETs a minute; beyond that it answers 429. Each worker asking for 100 a minute
on its own would blow through that, so every request first takes a slot here.

The budget is a sliding-window log (a sorted set of request times) per account and kind, checked and
updated in one Lua script, so it is exact and atomic across processes and machines, and it uses
Redis's clock, so the workers' clocks do not matter. A caller that gets no slot is told how long to
wait and must not block its worker meanwhile: the task re-schedules itself.

**When a request counts.** Sendcloud counts a request when it arrives, which is some time after its
slot was granted: a thread of a busy worker may wait for the CPU between the grant and the send. A log
of grant times would have to guess that delay with a margin (and a guess too short is a 429). So a
slot is counted at the latest moment its request can have arrived: while the request is in flight,
``hold`` seconds after the grant (twice the client's connect and read timeouts: by then it has been
answered or abandoned), and once its answer is in, the moment the answer came (:func:`settle`, called by
the client for every attempt). Sendcloud counted the request before it answered, so the log never puts a
request earlier than Sendcloud does, whatever the delays, and the margins only need to cover the clocks'
resolution. A worker killed mid-request leaves its slot held until ``hold`` has passed: one slot for a
few minutes, never a request too many. A slot whose request was never answered in a thread that lives
on (refused before sending) is settled at that thread's next take for the account.

Without Redis (the embedded development defaults) the same log lives in a file under ``var/``,
guarded by ``flock``: shared by the processes of one machine, which is all a dev setup has.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import itertools
import json
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from redis.exceptions import RedisError

from wemasy import metrics

logger = logging.getLogger(__name__)

#: How soon to look again when every slot of a window is held by a request still in flight: its answer,
#: which gives the slot its place in time, comes when Sendcloud has done the work (a tenth of a second to
#: a second or two for a hundred orders).
IN_FLIGHT_RECHECK_SECONDS = 0.2


class Kind(enum.StrEnum):
    SAFE = "safe"  # GET
    UNSAFE = "unsafe"  # POST, PUT, PATCH, DELETE

    @classmethod
    def of(cls, method: str) -> Kind:
        return cls.SAFE if method.upper() in {"GET", "HEAD", "OPTIONS"} else cls.UNSAFE


@dataclass(frozen=True)
class Window:
    seconds: float
    limit: int


def spent_message(wait: float) -> str:
    """What a person reads when the account's budget has no slot now (every door that asks Sendcloud directly)."""
    return f"The Sendcloud request budget of this account is spent; try again in {math.ceil(wait)} s."


def windows(kind: Kind) -> list[Window]:
    """The limits for a kind of request, each window widened by a small margin.

    A request is logged at the latest moment it can have reached Sendcloud (see the module's docstring),
    so the margins are not a guess at network or scheduling delays; they cover the clocks' resolution and
    leave a little to spare. The per-second window has a margin of its own because there every tenth of a
    second costs the burst rate (15 writes per 1.1 s is 9 % slower than per 1 s), where it costs the
    minute window a sixth of a percent.
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


def hold_seconds() -> float:
    """How long an unanswered request counts as in flight: twice the client's connect and read timeouts.

    Twice, because the timeouts bound each wait, not the request: a connection attempt per address, then
    the TLS handshake and the body's send may each take up to the read timeout. Only a request whose
    thread died before settling it is held that long (a killed worker): one slot for a few minutes.
    """
    return 2.0 * float(settings.SENDCLOUD_CONNECT_TIMEOUT + settings.SENDCLOUD_READ_TIMEOUT)


class Store(Protocol):
    def take(
        self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0, member: str = ""
    ) -> float: ...

    def settle(self, key: str, members: list[str]) -> None: ...


_members = itertools.count(1)


def new_member() -> str:
    """A name for one grant in the log, unique across processes, threads and time.

    ``next()`` on a count is atomic under the GIL: the threads of one worker never share a member (two
    grants under one member would be one entry in the log, and one request too many).
    """
    return f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}-{next(_members)}"


def _granting(limit: int, headroom: int) -> int:
    """How many grants a window allows a caller that must leave ``headroom`` slots free (never fewer than 1)."""
    return max(1, limit - headroom)


# KEYS[1]: the log; ARGV: member, '1' to take a slot or '0' to only look, the headroom (slots the caller
# must leave free in every window), the hold in milliseconds (a grant counts that far ahead until it is
# settled), then (seconds, limit) pairs. Returns 0 when a slot is (or was) free, else the wait in ms.
_LUA_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local longest = 0
local wait = 0
local headroom = tonumber(ARGV[3])
local hold = tonumber(ARGV[4])
local recheck = tonumber(ARGV[5])
for i = 6, #ARGV, 2 do
  local span = tonumber(ARGV[i]) * 1000
  local limit = math.max(1, tonumber(ARGV[i + 1]) - headroom)
  if span > longest then longest = span end
  local count = redis.call('ZCOUNT', KEYS[1], now - span, '+inf')
  if count >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - span, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
    local stamp = tonumber(oldest[2])
    local until_free = stamp + span - now
    if stamp > now then until_free = recheck end
    if until_free > wait then wait = until_free end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
if wait > 0 then return math.max(1, math.ceil(wait)) end
if ARGV[2] == '0' then return 0 end
redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
redis.call('PEXPIRE', KEYS[1], longest + hold + 1000)
return 0
"""

# KEYS[1]: the log; ARGV: the members whose requests were answered. Each one still in the log is moved to
# now (an entry that has left the log already stays gone).
_LUA_SETTLE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[i])
end
return 0
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        # Bounded like every Redis call of the service: a hung Redis fails a take (the chunk is handed back)
        # or a settle (logged) within a second, never holds a request that Sendcloud has answered already.
        timeout = max(1.0, settings.REDIS_REQUEST_TIMEOUT)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._take = self._client.register_script(_LUA_TAKE)
        self._settle = self._client.register_script(_LUA_SETTLE)

    @staticmethod
    def _key(key: str) -> str:
        return f"{settings.SENDCLOUD_BUDGET_KEY_PREFIX}:sendcloud-budget:{key}"

    def take(
        self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0, member: str = ""
    ) -> float:
        hold_ms = int(hold_seconds() * 1000)
        args: list[Any] = [member or new_member(), "1" if consume else "0", headroom, hold_ms]
        args.append(int(IN_FLIGHT_RECHECK_SECONDS * 1000))
        for window in windows:
            args.extend([window.seconds, window.limit])
        wait_ms = int(self._take(keys=[self._key(key)], args=args))
        return wait_ms / 1000

    def settle(self, key: str, members: list[str]) -> None:
        self._settle(keys=[self._key(key)], args=members)


class FileStore:
    """The same sliding log in a JSON file (member → time), for development without Redis."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _update(self, key: str, change: Any) -> Any:
        path = self._directory / f"{key}.json"
        with path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            raw = handle.read()
            stored = json.loads(raw) if raw else {}
            log: dict[str, float] = stored if isinstance(stored, dict) else {}
            result = change(log, time.time())
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(log))
        return result

    def take(
        self, key: str, windows: list[Window], *, consume: bool = True, headroom: int = 0, member: str = ""
    ) -> float:
        def change(log: dict[str, float], now: float) -> float:
            longest = max(window.seconds for window in windows)
            for name in [name for name, stamp in log.items() if stamp <= now - longest]:
                del log[name]
            wait = 0.0
            for window in windows:
                recent = sorted(stamp for stamp in log.values() if stamp > now - window.seconds)
                limit = _granting(window.limit, headroom)
                if len(recent) >= limit:
                    stamp = recent[len(recent) - limit]
                    wait = max(wait, IN_FLIGHT_RECHECK_SECONDS if stamp > now else stamp + window.seconds - now)
            if wait <= 0 and consume:
                log[member or new_member()] = now + hold_seconds()
            return wait if wait > 0 else 0.0

        return float(self._update(key, change))

    def settle(self, key: str, members: list[str]) -> None:
        def change(log: dict[str, float], now: float) -> None:
            for name in members:
                if name in log:
                    log[name] = now

        self._update(key, change)


_store: Store | None = None


def store() -> Store:
    global _store
    if _store is None:
        redis_url = settings.REDIS_URL
        _store = RedisStore(redis_url) if redis_url else FileStore(Path(settings.VAR_DIR) / "budget")
    return _store


#: This thread's grants whose requests have not been answered yet, by budget key (see :func:`settle`).
_in_flight = threading.local()


def _pending() -> dict[str, list[str]]:
    pending: dict[str, list[str]] | None = getattr(_in_flight, "grants", None)
    if pending is None:
        pending = _in_flight.grants = {}
    return pending


def _key(public_key: str, kind: Kind) -> str:
    return f"{account_key(public_key)}:{kind}"


def take(*, public_key: str, kind: Kind, headroom: int = 0) -> float:
    """Take one request slot for the account. Returns 0.0 when granted, else seconds to wait.

    With ``headroom``, the slot is granted only if that many more stay free in every window: a request
    that prepares another (a service-point check before its label request) leaves the other its slot.
    The grant counts as in flight until :func:`settle` is told the request was answered. Callers take a
    slot right before its one request; a slot of this thread still unsettled here belongs to a request
    that never got an answer (a refusal before sending, an error the client raised): it is settled now,
    so it counts one window from now rather than for the whole hold.
    """
    if not settings.SENDCLOUD_BUDGET_ENABLED:
        return 0.0
    key, member = _key(public_key, kind), new_member()
    _settle_pending(key)
    wait = store().take(key, windows(kind), headroom=headroom, member=member)
    if not wait:
        _pending()[key] = [member]
    return wait


def settle(*, public_key: str, kind: Kind) -> None:
    """The request this thread was granted a slot for has been answered (or has failed): count it from now.

    The Sendcloud client calls this for every attempt it makes (``factory.build_client``). Every request
    arrived before its answer, so counting the thread's unsettled slot from this moment never puts it
    earlier than Sendcloud counted it. A failure to reach Redis here costs nothing but the slot's early
    return: the grant stays counted for its hold.
    """
    if settings.SENDCLOUD_BUDGET_ENABLED:
        _settle_pending(_key(public_key, kind))


def _settle_pending(key: str) -> None:
    members = _pending().pop(key, None)
    if not members:
        return
    try:
        store().settle(key, members)
    except (RedisError, OSError) as exc:  # the request's outcome must not depend on its bookkeeping
        logger.warning("The request budget could not record an answered request (%s); its slot stays held.", exc)


def peek(*, public_key: str, kind: Kind) -> float:
    """Seconds until a slot frees up (0.0 when one is free now), without taking it.

    For a caller with expensive preparation to do: look first, prepare, then ``take`` right before
    sending. Taking early would hold the slot in flight through the preparation, away from the
    account's other requests.
    """
    if not settings.SENDCLOUD_BUDGET_ENABLED:
        return 0.0
    return store().take(_key(public_key, kind), windows(kind), consume=False)


def long_wait(*, public_key: str, kind: Kind) -> float:
    """The wait for a slot when it is too long to sleep through (see :func:`acquire`), else 0.0.

    For a caller that prepares its request before taking the slot: a short wait passes while it prepares.
    """
    wait = peek(public_key=public_key, kind=kind)
    if wait <= settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS:
        return 0.0
    metrics.record_budget_deferred(kind=kind, wait=wait)
    return wait


def acquire(*, public_key: str, kind: Kind, headroom: int = 0) -> float:
    """Take a slot, sleeping through short waits.

    A wait of at most ``SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS`` (the per-second burst window) is
    slept through in the worker, up to twice that in all: re-scheduling the task for it would cost a
    broker round trip and a countdown message, and a worker holding many countdown messages is
    exactly the situation in which Celery workers are known to stop fetching work. Longer waits
    (the per-minute window) are returned, and the caller re-schedules itself without holding its
    worker. Returns 0.0 when the slot was granted, else the seconds still to wait.
    ``headroom`` is :func:`take`'s (a slot only if that many more stay free).
    """
    limit = settings.SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS
    slept = 0.0
    while True:
        wait = take(public_key=public_key, kind=kind, headroom=headroom)
        if not wait or wait > limit or slept + wait > 2 * limit:
            metrics.record_budget_deferred(kind=kind, wait=wait)
            return wait
        pause = wait + random.uniform(0, 0.05)  # spread processes that were told the same wait
        metrics.record_budget_sleep(kind=kind, seconds=pause)
        time.sleep(pause)
        slept += pause


def reset_store() -> None:
    """Forget the cached store and this thread's grants in flight (tests change settings between runs)."""
    global _store
    _store = None
    _pending().clear()
