"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered from there.

Two signal handlers serve the metrics' multi-process mode (``wemasy/metrics.py``): the worker removes the
value files of processes that no longer run when it starts, and each pool process marks itself dead
when it exits.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown

from wemasy import metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")

app = Celery("wemasy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _clear_dead_metric_files(**kwargs: Any) -> None:
    metrics.clear_dead_processes()


@worker_process_shutdown.connect
def _mark_pool_process_dead(pid: int | None = None, **kwargs: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())
