"""The request log and counters behind ``GET /_sandbox/requests`` and ``/_sandbox/state``.

Tests and benchmarks assert on what the client actually sent (how many POSTs, which got faults,
which statuses), so every API request is recorded with its outcome. The log is bounded; the
counters are not, so totals stay right in long benchmark runs.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LogEntry:
    """One API request: ``status`` None means the sandbox answered nothing (timeout, reset)."""

    time: str
    method: str
    path: str
    route: str | None
    account: str | None
    status: int | None
    fault: str | None
    duration_ms: float
    #: The request's JSON body, kept only while the config's ``record_bodies`` is on (tests check payloads).
    body: Any = None


class RequestLog:
    """Thread-safe bounded log plus running counters."""

    def __init__(self, max_entries: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._total = 0
        self._by_status: Counter[str] = Counter()
        self._by_fault: Counter[str] = Counter()
        self._by_route: Counter[str] = Counter()

    def resize(self, max_entries: int) -> None:
        """Change the bound, keeping the newest entries."""
        with self._lock:
            self._entries = deque(self._entries, maxlen=max_entries)

    def record(self, entry: LogEntry) -> None:
        """Add one request."""
        with self._lock:
            self._entries.append(entry)
            self._total += 1
            self._by_status["none" if entry.status is None else str(entry.status)] += 1
            if entry.fault:
                for kind in entry.fault.split(","):
                    self._by_fault[kind] += 1
            self._by_route[entry.route or "unknown"] += 1

    def tail(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (all when None), oldest first."""
        with self._lock:
            entries = list(self._entries)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return [asdict(entry) for entry in entries]

    def counters(self) -> dict[str, Any]:
        """Totals since the last reset."""
        with self._lock:
            return {
                "total": self._total,
                "by_status": dict(self._by_status),
                "by_fault": dict(self._by_fault),
                "by_route": dict(self._by_route),
            }

    def clear(self) -> None:
        """Forget entries and counters."""
        with self._lock:
            self._entries.clear()
            self._total = 0
            self._by_status.clear()
            self._by_fault.clear()
            self._by_route.clear()
