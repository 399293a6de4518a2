"""Log plumbing: every log line carries the ids of the work it belongs to.

``request_id`` is set per HTTP request (``wemasy/api/middleware.py``) and travels with the tasks it sends
(``wemasy/celery.py``: a message header); ``batch_id`` and ``chunk`` per task
(``sendcloud_integration/tasks.py``, with :func:`log_context`); ``order_id`` while the label pipeline reads
Sendcloud about one order (``LabelRun.safe``). A log call about one order or one Sendcloud call may also
name it as a field: ``logger.info(..., extra={"order_id": …})`` or ``extra={"sendcloud_path": …}`` (the
transport does, for every call). :class:`ContextFilter` puts all of
them on every record, ``None`` where unknown, so that any formatter may use them:

* ``LOG_FORMAT=plain`` (the default): one readable line, ``[req=…]`` as before.
* ``LOG_FORMAT=json``: one JSON object per line (python-json-logger) with ``time``, ``level``, ``logger``,
  ``message`` and the fields above, plus ``exc_info`` for a traceback, for a log pipeline to index.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

#: What a record outside any request says for its request id.
NO_REQUEST_ID = "-"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST_ID)
batch_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("batch_id", default=None)
chunk_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("chunk", default=None)
order_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("order_id", default=None)

#: The fields every record gets, and where each comes from when the log call did not name it.
CONTEXT_FIELDS: dict[str, contextvars.ContextVar[Any]] = {
    "request_id": request_id_var,
    "batch_id": batch_id_var,
    "chunk": chunk_var,
    "order_id": order_id_var,
}
#: Fields only a log call names (``extra=``); None otherwise.
CALL_FIELDS = ("sendcloud_path",)

#: The JSON format's fields, in order (python-json-logger reads the names out of this string).
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s " + " ".join(
    f"%({name})s" for name in (*CONTEXT_FIELDS, *CALL_FIELDS)
)
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


@contextmanager
def log_context(*, batch_id: object = None, chunk: int | None = None, order_id: int | None = None) -> Iterator[None]:
    """Within this block, every log record carries these ids (the ones given; the others stay as they are)."""
    with ExitStack() as undo:
        if batch_id is not None:
            undo.callback(batch_id_var.reset, batch_id_var.set(str(batch_id)))
        if chunk is not None:
            undo.callback(chunk_var.reset, chunk_var.set(chunk))
        if order_id is not None:
            undo.callback(order_id_var.reset, order_id_var.set(order_id))
        yield


class ContextFilter(logging.Filter):
    """Adds the context fields to every record; a value the log call gave (``extra=``) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in CONTEXT_FIELDS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        for name in CALL_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        return True


#: The former name (settings of older deployments may still refer to it).
RequestIdFilter = ContextFilter
