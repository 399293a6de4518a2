"""gunicorn's settings hooks for the metrics' multi-process mode (``gunicorn -c python:wemasy.gunicorn_conf``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, each gunicorn worker writes its metric values to files there and
``/metrics`` adds them up (``wemasy/metrics.py``). The master removes the files of processes that no longer
run before it forks its workers, and marks each worker dead when it exits, so that its live gauges stop
counting. Every other setting stays on the command line (Procfile).
"""

from __future__ import annotations

from typing import Any

from wemasy import metrics


def on_starting(server: Any) -> None:
    metrics.clear_dead_processes()


def child_exit(server: Any, worker: Any) -> None:
    metrics.mark_process_dead(worker.pid)
