"""``LOG_FORMAT=json``: one JSON object per line, with the request, batch, chunk and order ids and the
Sendcloud path as fields, from the web process and from a Celery worker."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import responses
from pythonjsonlogger.json import JsonFormatter
from rest_framework.test import APIClient

from sendcloud_integration import tasks
from sendcloud_integration.pipeline.labels.run import LabelRun, OrphanScope
from sendcloud_integration.sendcloud.call_log import CallLog
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory
from webshop.models import Shop
from wemasy.devtools.run import message_of
from wemasy.logging import JSON_FIELDS, JSON_RENAMES, ContextFilter, log_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The root logger's records so far, formatted as ``LOG_FORMAT=json`` formats them, each line parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=JSON_FIELDS, rename_fields=JSON_RENAMES))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_log_context_sets_the_ids_for_its_block_and_a_call_field_wins() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    with log_context(batch_id="b-1", chunk=3):
        ContextFilter().filter(record)
        named = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
        named.order_id = 42
        ContextFilter().filter(named)
    after = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    ContextFilter().filter(after)
    assert (record.batch_id, record.chunk, record.order_id, record.sendcloud_path) == ("b-1", 3, None, None)
    assert (named.batch_id, named.order_id) == ("b-1", 42)
    assert (after.batch_id, after.chunk) == (None, None)


@pytest.mark.django_db
@responses.activate
def test_the_push_and_its_worker_log_json_with_every_id(
    client_for: APIClient, shop: Shop, integration: object, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    def accept_all(request: Any) -> tuple[int, dict[str, str], str]:
        sent = json.loads(request.body)
        return 201, {}, json.dumps({"data": [{"id": 9000 + i, "order_id": o["order_id"]} for i, o in enumerate(sent)]})

    responses.add_callback(responses.POST, "https://sendcloud.test/api/v3/orders", callback=accept_all)
    orders = OrderFactory.create_batch(2, shop=shop)
    response = client_for.post(
        PUSH_URL,
        {"create_label": False, "order_ids": [o.pk for o in orders]},
        format="json",
        HTTP_X_REQUEST_ID="req-json-logs-1",
    )
    assert response.status_code == 200
    batch_id = response.json()["batch"]["id"]
    tasks.process_chunk.apply(args=[batch_id, 1])  # the task as a worker runs it (in this process)
    records = json_lines()

    push = next(r for r in records if r["logger"] == "sendcloud_integration.push.services")
    assert (push["request_id"], push["batch_id"], push["level"]) == ("req-json-logs-1", batch_id, "INFO")
    assert push["message"].startswith(f"push batch={batch_id}")
    call = next(r for r in records if r["sendcloud_path"] == "/v3/orders")
    assert (call["batch_id"], call["chunk"]) == (batch_id, 1)
    done = next(r for r in records if r["logger"] == "sendcloud_integration.pipeline.process")
    assert (done["batch_id"], done["chunk"], done["sendcloud_path"]) == (batch_id, 1, None)
    assert {"time", "level", "logger", "message", "request_id", "batch_id", "chunk", "order_id"} <= set(done)


def test_a_label_run_names_the_order_on_what_it_logs_about_one_order(
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    run = LabelRun(
        integration=SimpleNamespace(public_key="pk"),  # type: ignore[arg-type]
        client=mock.Mock(),
        call_log=CallLog(shop_id=1),
        scope=OrphanScope(),
    )
    row = SimpleNamespace(order_id=4711, batch_id=None)

    def get_one() -> str:
        logging.getLogger("sendcloud_integration.sendcloud.transport").info(
            "Sendcloud GET /v3/shipments/9 -> 200 in 5 ms", extra={"sendcloud_path": "/v3/shipments/9"}
        )
        return "shipment"

    with log_context(batch_id="b-7"):
        assert run.safe(row, get_one) == "shipment"  # type: ignore[arg-type]
    logging.getLogger("x").info("after the call")
    during, after = json_lines()[-2:]
    assert (during["order_id"], during["batch_id"], during["sendcloud_path"]) == (4711, "b-7", "/v3/shipments/9")
    assert (after["order_id"], after["batch_id"]) == (None, None)


def test_a_celery_worker_writes_only_json_lines_and_make_run_sees_it_ready(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
        "VAR_DIR": str(tmp_path),
    }
    argv = [sys.executable, "-m", "celery", "-q", "-A", "wemasy", "worker", "--pool", "solo", "--loglevel", "INFO"]
    worker = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            lines.append(line.rstrip("\n"))
            if message_of(lines[-1]).endswith(" ready.") or time.monotonic() > deadline:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert message_of(lines[-1]).endswith(" ready."), lines[-5:]
    records = [json.loads(line) for line in lines if line.strip()]  # every line up to ready is JSON
    assert records[-1]["logger"] == "celery.apps.worker"
    assert all({"time", "level", "logger", "message", "request_id", "batch_id"} <= set(r) for r in records)


def test_the_launcher_reads_the_message_of_a_json_line() -> None:
    assert message_of('{"message": "celery@vm ready.", "level": "INFO"}') == "celery@vm ready."
    assert message_of("[2026-12-01 10:00:00: INFO/MainProcess] celery@vm ready.").endswith(" ready.")
    assert message_of("{not json") == "{not json"


def test_a_task_sent_during_a_request_runs_with_its_request_id() -> None:
    from celery.app.task import Context

    from wemasy.celery import REQUEST_ID_HEADER, _adopt_request_id, _drop_request_id, _send_request_id
    from wemasy.logging import request_id_var

    outside: dict[str, Any] = {}
    _send_request_id(headers=outside)
    assert outside == {}  # no request, no header
    token = request_id_var.set("req-to-worker-1")
    try:
        sent: dict[str, Any] = {}
        _send_request_id(headers=sent)
    finally:
        request_id_var.reset(token)
    assert sent == {REQUEST_ID_HEADER: "req-to-worker-1"}

    task = SimpleNamespace(request=Context({"id": "t-1", **sent}))
    _adopt_request_id(task_id="t-1", task=task)
    assert request_id_var.get() == "req-to-worker-1"
    _drop_request_id(task_id="t-1")
    assert request_id_var.get() == "-"
