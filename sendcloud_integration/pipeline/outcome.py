"""What one run of a chunk reports, and the waits between runs: backoff, jitter, the give-up message."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ChunkOutcome:
    """What the task reports. ``retry_in`` set means: run this chunk again after that many seconds.

    ``counts_attempt`` is False for waits that are nobody's failure (a spent request budget, a label
    still being made): only failures count against ``SENDCLOUD_MAX_ATTEMPTS``.
    """

    pushed: int = 0
    labelled: int = 0
    failed: int = 0
    retry_in: float | None = None
    counts_attempt: bool = True

    def as_dict(self) -> dict[str, int]:
        return {"pushed": self.pushed, "labelled": self.labelled, "failed": self.failed}


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least what Sendcloud asked for."""
    cap = min(settings.SENDCLOUD_RETRY_MAX_SECONDS, settings.SENDCLOUD_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    delay = random.uniform(cap / 2, cap) if cap > 0 else 0.0
    return max(delay, retry_after or 0.0)


def spread(wait: float) -> float:
    """A budget wait plus a little jitter (up to a quarter of a second), so chunks that wait together do not
    all wake at the same instant. Little, because the wait is exact and the account's window holds only a
    few chunks (``pipeline.release``): a second of jitter cost every minute of a long push half a second."""
    return wait + random.uniform(0, min(0.25, wait))


def gave_up(attempts: int, last_error: str) -> str:
    """The message an order fails with when its chunk's attempts are spent (the one wording for it)."""
    return f"Gave up after {attempts} attempts; last error: {last_error}"
