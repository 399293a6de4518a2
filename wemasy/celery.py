"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered from there.

Signal handlers:

* the request id travels with the work: a task sent while a request id is set (the push's
  ``start_batch``, and the chord that task sends in turn) carries it in a message header, and the task
  runs with it set, so the worker's log lines of a batch name the API request that pushed it;
* the metrics' multi-process mode (``wemasy/metrics.py``): the worker removes the value files of
  processes that no longer run when it starts, and each pool process marks itself dead when it exits;
* a booted worker freezes the objects of its boot out of the garbage collector's reach
  (``wemasy/boot.py``). Collecting less often as well (a higher ``gc.set_threshold``) saved a little more
  CPU but cost 15-45 MB of peak memory, so Python's thresholds stay.
"""

import contextvars
import os
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from wemasy import metrics
from wemasy.boot import freeze_booted_objects
from wemasy.logging import NO_REQUEST_ID, request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")

app = Celery("wemasy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _clear_dead_metric_files(**kwargs: Any) -> None:
    metrics.clear_dead_processes()


@worker_ready.connect
@worker_process_init.connect  # a prefork pool's processes, forked before the worker is ready
def _freeze_what_the_boot_loaded(**kwargs: Any) -> None:
    freeze_booted_objects()


@worker_process_shutdown.connect
def _mark_pool_process_dead(pid: int | None = None, **kwargs: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())


#: The message header that carries the request id.
REQUEST_ID_HEADER = "wemasy_request_id"
_request_tokens: dict[str, contextvars.Token[str]] = {}


@before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id != NO_REQUEST_ID:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _adopt_request_id(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request_id = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None)
    if task_id and isinstance(request_id, str):
        _request_tokens[task_id] = request_id_var.set(request_id)


@task_postrun.connect
def _drop_request_id(task_id: str | None = None, **kwargs: Any) -> None:
    token = _request_tokens.pop(task_id or "", None)
    if token is not None:
        request_id_var.reset(token)
