"""Per-account rate limits with Sendcloud's documented numbers.

Unsafe methods (POST, PUT, PATCH, DELETE): 100 requests per minute with bursts of at most 15 per
second; GET: 1000 per minute; over the limit: 429 without any Retry-After header. Sliding windows of
accepted-request timestamps give exact answers at these small volumes; a scale factor shrinks every
limit so tests can hit them in milliseconds rather than minutes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MINUTE = 60.0
SECOND = 1.0


@dataclass(frozen=True)
class Limits:
    """Effective limits after scaling; each at least 1 so a scaled limit never blocks everything."""

    unsafe_per_minute: int
    unsafe_per_second: int
    safe_per_minute: int

    @classmethod
    def scaled(cls, unsafe_per_minute: int, unsafe_per_second: int, safe_per_minute: int, scale: float) -> Limits:
        """Apply ``scale`` (0.1 = ten times fewer requests allowed)."""
        return cls(
            unsafe_per_minute=max(1, int(unsafe_per_minute * scale)),
            unsafe_per_second=max(1, int(unsafe_per_second * scale)),
            safe_per_minute=max(1, int(safe_per_minute * scale)),
        )


class RateLimiter:
    """Thread-safe sliding-window limiter keyed by account."""

    def __init__(self, limits: Limits, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._limits = limits
        self._enabled = enabled
        self._clock = clock
        self._unsafe: dict[str, deque[float]] = {}
        self._safe: dict[str, deque[float]] = {}

    def configure(self, limits: Limits, *, enabled: bool) -> None:
        """Change the limits at run time; the windows already filled stay."""
        with self._lock:
            self._limits = limits
            self._enabled = enabled

    def reset(self) -> None:
        """Forget every past request."""
        with self._lock:
            self._unsafe.clear()
            self._safe.clear()

    def allow(self, key: str, *, unsafe: bool) -> bool:
        """Record and allow a request, or refuse it (refused requests use no budget)."""
        with self._lock:
            if not self._enabled:
                return True
            now = self._clock()
            windows = self._unsafe if unsafe else self._safe
            window = windows.setdefault(key, deque())
            while window and window[0] <= now - MINUTE:
                window.popleft()
            per_minute = self._limits.unsafe_per_minute if unsafe else self._limits.safe_per_minute
            if len(window) >= per_minute:
                return False
            if unsafe and self._count_since(window, now - SECOND) >= self._limits.unsafe_per_second:
                return False
            window.append(now)
            return True

    @staticmethod
    def _count_since(window: deque[float], since: float) -> int:
        """Requests in the window newer than ``since``, scanning from the newest end only."""
        count = 0
        for stamp in reversed(window):
            if stamp <= since:
                break
            count += 1
        return count
