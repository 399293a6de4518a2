"""gunicorn's settings hooks (``gunicorn -c python:wemasy.gunicorn_conf``).

Each worker, once it has loaded the application, freezes the objects of its boot out of the garbage
collector's reach (``wemasy/boot.py``).

For the metrics' multi-process mode: with ``PROMETHEUS_MULTIPROC_DIR`` set, each gunicorn worker writes
its metric values to files there and ``/metrics`` adds them up (``wemasy/metrics.py``). The master removes
the files of processes that no longer run before it forks its workers, and marks each worker dead when it
exits, so that its live gauges stop counting. Every other setting stays on the command line (Procfile).
"""

from __future__ import annotations

from typing import Any

from wemasy import metrics
from wemasy.boot import freeze_booted_objects


def on_starting(server: Any) -> None:
    metrics.clear_dead_processes()


def child_exit(server: Any, worker: Any) -> None:
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    freeze_booted_objects()
