"""Every Prometheus metric of the service, defined once, for any layer to record.

This module sits below every layer: it imports only ``prometheus_client`` and the standard library, so
the push, the pipeline and the Sendcloud adapter may all record here with one line, and nothing here
knows a model. What is read from the database or the broker at scrape time (shipment states, queue
lengths) is collected by the ``/metrics`` view (``wemasy/metrics_view.py``), not here.

Multi-process mode: with ``PROMETHEUS_MULTIPROC_DIR`` set (before this module is first imported),
every process — each gunicorn worker, each Celery pool process — writes its values to files in that
directory, and ``/metrics`` adds them up. gunicorn (``wemasy/gunicorn_conf.py``) and the Celery worker
(``wemasy/celery.py``) remove the files of processes that no longer run when they start, and mark
their children dead when those exit. Without the variable, each process keeps its own values in
memory (tests, ``make run``), and ``/metrics`` shows those of the process that answers.

Label values are few and fixed: Sendcloud paths appear as templates (``/v3/shipments/{id}``), never
with an id in them, and no shop or order id is ever a label.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Counter, Histogram, multiprocess

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # The first value a process records creates its file there: the directory must exist by then.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# --- The push (the REST endpoint, the admin, the command) ---------------------------------------------

PUSHES = Counter(
    "wemasy_pushes",
    "Pushes, by the door that started them and their outcome (queued, nothing_queued, dry_run, refused).",
    ["door", "outcome"],
)
PUSH_ORDERS = Counter(
    "wemasy_push_orders",
    "Orders named in pushes, by how the push classified them (new, retry, skipped).",
    ["category"],
)

# --- The pipeline (the Celery workers) ----------------------------------------------------------------

PIPELINE_ORDERS = Counter(
    "wemasy_pipeline_orders",
    "Orders the workers finished a step for, by outcome (pushed, labelled, failed).",
    ["outcome"],
)
CHUNKS = Counter(
    "wemasy_chunks",
    "Chunk runs, by outcome (done, handed_back, skipped: already done or taken).",
    ["outcome"],
)
BATCH_DURATION = Histogram(
    "wemasy_batch_duration_seconds",
    "From a batch's push to its finish, by final status.",
    ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf")),
)

# --- Sendcloud ----------------------------------------------------------------------------------------

SENDCLOUD_CALLS = Counter(
    "wemasy_sendcloud_calls",
    "HTTP calls to Sendcloud, by method, endpoint (a path template) and status (the code, or no_answer).",
    ["method", "endpoint", "status"],
)
SENDCLOUD_CALL_DURATION = Histogram(
    "wemasy_sendcloud_call_duration_seconds",
    "How long Sendcloud took to answer, by method and endpoint.",
    ["method", "endpoint"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf")),
)
SENDCLOUD_RATE_LIMITED = Counter(
    "wemasy_sendcloud_rate_limited",
    "429 answers from Sendcloud (the request budget should keep this at zero), by method and endpoint.",
    ["method", "endpoint"],
)
BUDGET_WAITS = Counter(
    "wemasy_sendcloud_budget_waits",
    "Times a request found the account's request budget spent, by kind (safe, unsafe) and what followed "
    "(slept: waited in the process; deferred: too long to wait, so a task re-schedules itself and a "
    "request answers 503).",
    ["kind", "outcome"],
)
BUDGET_SLEEP = Histogram(
    "wemasy_sendcloud_budget_sleep_seconds",
    "Seconds a worker slept for a request budget slot, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, float("inf")),
)

# --- Webhooks: Sendcloud's deliveries to the receiver (``tracking/webhooks.py`` ``receive``) ----------------

WEBHOOK_DELIVERIES = Counter(
    "wemasy_webhook_deliveries",
    "Sendcloud webhook deliveries received, by outcome: accepted (stored and handed to a worker), "
    "stored_for_the_sweep (stored; the broker did not take the message), bad_signature, unknown_webhook.",
    ["outcome"],
)

# --- Recording helpers: one line at each hook -----------------------------------------------------------

_ID_SEGMENT = re.compile(r"[0-9]")


def endpoint_template(path: str) -> str:
    """``/v3/shipments/123/x`` → ``/v3/shipments/{id}/x``: any segment with a digit in it is an id.

    Sendcloud's own path words (``orders``, ``create-labels-async``, ``parcel-documents``) have none,
    except the version, which is kept.
    """
    segments = path.split("?", 1)[0].split("/")
    return "/".join(
        segment if index == 1 or not _ID_SEGMENT.search(segment) else "{id}" for index, segment in enumerate(segments)
    )


class _Call(Protocol):
    method: str
    path: str
    status_code: int | None
    duration_ms: int


def observe_sendcloud_calls(forward: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """An ``on_call`` for the Sendcloud transport: records each call here, then passes it on to ``forward``."""

    def on_call(record: _Call) -> None:
        endpoint = endpoint_template(record.path)
        status = "no_answer" if record.status_code is None else str(record.status_code)
        SENDCLOUD_CALLS.labels(record.method, endpoint, status).inc()
        SENDCLOUD_CALL_DURATION.labels(record.method, endpoint).observe(record.duration_ms / 1000)
        if record.status_code == 429:
            SENDCLOUD_RATE_LIMITED.labels(record.method, endpoint).inc()
        if forward is not None:
            forward(record)

    return on_call


def record_push(*, door: str, outcome: str, new: int = 0, retry: int = 0, skipped: int = 0) -> None:
    PUSHES.labels(door, outcome).inc()
    for category, count in (("new", new), ("retry", retry), ("skipped", skipped)):
        if count:
            PUSH_ORDERS.labels(category).inc(count)


def record_chunk(*, outcome: str, pushed: int = 0, labelled: int = 0, failed: int = 0) -> None:
    CHUNKS.labels(outcome).inc()
    for name, count in (("pushed", pushed), ("labelled", labelled), ("failed", failed)):
        if count:
            PIPELINE_ORDERS.labels(name).inc(count)


def record_budget_deferred(*, kind: str, wait: float) -> None:
    """The budget said wait longer than a worker sleeps: the task re-schedules itself (nothing when 0)."""
    if wait:
        BUDGET_WAITS.labels(str(kind), "deferred").inc()


def record_budget_sleep(*, kind: str, seconds: float) -> None:
    BUDGET_WAITS.labels(str(kind), "slept").inc()
    BUDGET_SLEEP.labels(str(kind)).observe(seconds)


# --- Multi-process bookkeeping ---------------------------------------------------------------------------


def multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def clear_dead_processes() -> int:
    """At a server's start: remove the value files of processes that no longer run; returns how many.

    Not the whole directory: gunicorn and the Celery worker share it and start in either order, and one
    must not wipe the files of the other's live processes. Counters of finished processes disappear with
    their files, which Prometheus reads as a counter reset (``rate()`` handles it).
    """
    directory = multiproc_dir()
    if directory is None:
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for name in glob.glob(str(directory / "*.db")):
        pid = Path(name).stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            os.remove(name)
            removed += 1
    return removed


def mark_process_dead(pid: int) -> None:
    """A child (gunicorn worker, Celery pool process) exited: its live gauges no longer count."""
    if multiproc_dir() is not None:
        multiprocess.mark_process_dead(pid)
