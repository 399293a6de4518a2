"""The service as it runs in production, in real processes, for integration tests.

``stack`` starts gunicorn (the web process), a Celery worker and Celery beat as subprocesses of the
test, all pointed at the test's PostgreSQL database, a Redis broker of their own and an in-process
Sendcloud sandbox. Tests talk HTTP to the web process and read the database and the sandbox.

By default the stack uses the shared Redis of ``REDIS_URL`` (a database and a queue of its own, nothing
flushed). A test that kills, hangs or empties Redis overrides ``stack_redis`` with ``own_stack_redis``
(one ``redis-server`` of its own for everything, as with only ``REDIS_URL`` set in production) or
``split_stack_redis`` (one for the cache, another for the Celery broker and result backend).

Needs PostgreSQL and Redis (``make test`` finds them on localhost; CI starts them).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.db import connection

from sendcloud_sandbox.config import SandboxConfig
from sendcloud_sandbox.server import SandboxServer
from tests.conftest import postgres_available
from tests.redis_server import REDIS_SERVER, RedisServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

requires_stack = pytest.mark.skipif(
    not (postgres_available() and os.environ.get("REDIS_URL")),
    reason="needs PostgreSQL and Redis (DATABASE_URL=postgres://…, REDIS_URL=redis://…; make test sets them)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """One service process, its output in a log file that failing tests print."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_marker: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log: Any = None

    def start(self, timeout: float = 30) -> Process:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.ready_marker:
            marker = self.ready_marker
            wait_for(
                lambda: self._check_alive() and marker in self.log_path.read_text(errors="replace"),
                timeout=timeout,
                what=f"{self.name} to be ready",
            )
        return self

    def _check_alive(self) -> bool:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
        return True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (a Celery worker's pool children too)."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _with_db(url: str, db: str | int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@dataclass
class StackRedis:
    """Redis servers of the stack's own: ``cache`` is ``REDIS_URL`` (rate limits, the request budget),
    ``broker`` holds the Celery broker and result backend. The same server unless a test splits them."""

    cache: RedisServer
    broker: RedisServer

    def servers(self) -> list[RedisServer]:
        return [self.cache] if self.cache is self.broker else [self.cache, self.broker]


@dataclass
class Stack:
    sandbox: SandboxServer
    web_url: str
    env: dict[str, str]
    tmp: Path
    processes: dict[str, Process] = field(default_factory=dict)
    redis: StackRedis | None = None

    def worker(self, name: str = "worker", concurrency: int = 2) -> Process:
        process = Process(
            name=name,
            argv=[
                str(BIN / "celery"),
                "-A",
                "wemasy",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"{name}@%h",
            ],
            env=self.env,
            log_path=self.tmp / f"{name}.log",
            ready_marker="ready.",
        ).start(timeout=60)
        self.processes[name] = process
        return process

    def beat(self) -> Process:
        process = Process(
            name="beat",
            argv=[
                str(BIN / "celery"),
                "-A",
                "wemasy",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.tmp / "beat-schedule"),
            ],
            env=self.env,
            log_path=self.tmp / "beat.log",
            ready_marker="beat: Starting",
        ).start()
        self.processes["beat"] = process
        return process

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{p.tail()}" for name, p in self.processes.items())


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(config=SandboxConfig(label_delay_seconds=0.2, seed=7)).start()
    yield server
    server.stop()


@pytest.fixture
def stack_settings() -> dict[str, str]:
    """Per-test overrides of the service's environment (tests may change it before ``stack``)."""
    return {}


@pytest.fixture
def stack_redis() -> StackRedis | None:
    """The stack's Redis: None for the shared one of ``REDIS_URL`` (tests override it)."""
    return None


@pytest.fixture
def own_stack_redis(tmp_path: Path) -> Iterator[StackRedis]:
    """One Redis of the test's own for cache, broker and results; killed afterwards."""
    if REDIS_SERVER is None:
        pytest.skip("needs the redis-server binary on PATH")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield StackRedis(cache=server, broker=server)
    finally:
        server.kill()


@pytest.fixture
def split_stack_redis(tmp_path: Path) -> Iterator[StackRedis]:
    """Two Redis servers of the test's own: one for the cache, one for the Celery broker and results."""
    if REDIS_SERVER is None:
        pytest.skip("needs the redis-server binary on PATH")
    cache = RedisServer(tmp_path / "redis-cache").start()
    broker = RedisServer(tmp_path / "redis-broker").start()
    try:
        yield StackRedis(cache=cache, broker=broker)
    finally:
        cache.kill()
        broker.kill()


@pytest.fixture
def stack(
    transactional_db: None,
    sandbox: SandboxServer,
    tmp_path: Path,
    stack_settings: dict[str, str],
    stack_redis: StackRedis | None,
    request: pytest.FixtureRequest,
    settings: Any,
) -> Iterator[Stack]:
    import redis

    settings.MEDIA_ROOT = str(tmp_path / "media")  # the test reads the label files the worker stores
    database_url = _with_db(os.environ["DATABASE_URL"], connection.settings_dict["NAME"])
    if stack_redis is None:
        cache_url = os.environ["REDIS_URL"]
        cache_db = int(urlsplit(cache_url).path.strip("/") or 0)
        broker_url = _with_db(cache_url, 13 if cache_db != 13 else 12)
    else:
        cache_url = stack_redis.cache.url(0)
        broker_url = stack_redis.broker.url(1)
    # Every test gets a queue of its own (below), so nothing is flushed: runs side by side, or a
    # developer's own worker on the same Redis, keep their messages.
    queue = f"it-{uuid.uuid4().hex[:12]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST"))},
        "DJANGO_SETTINGS_MODULE": "wemasy.settings",
        "DJANGO_SECRET_KEY": "integration-tests",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": cache_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "CELERY_VISIBILITY_TIMEOUT": "20",
        # A queue of its own: nothing a previous test left behind can reach this test's workers.
        "CELERY_QUEUE": queue,
        "SENDCLOUD_API_BASE_URL": sandbox.url,
        "SENDCLOUD_BUDGET_ENABLED": "1",
        "SENDCLOUD_READ_TIMEOUT": "2",
        "SENDCLOUD_CONNECT_TIMEOUT": "2",
        "SENDCLOUD_RETRY_BASE_SECONDS": "0.2",
        "SENDCLOUD_RETRY_MAX_SECONDS": "1",
        "SENDCLOUD_MAX_ATTEMPTS": "8",
        "SENDCLOUD_STALE_AFTER_SECONDS": "6",
        "SENDCLOUD_SWEEP_INTERVAL_SECONDS": "2",
        "SENDCLOUD_LABEL_POLL_SECONDS": "0.3",
        "SENDCLOUD_LABEL_POLL_MAX_SECONDS": "1",
        "SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS": "5",
        "API_RATE_LIMIT_PER_MINUTE": "1000",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
        **stack_settings,
    }
    port = free_port()
    stack = Stack(sandbox=sandbox, web_url=f"http://127.0.0.1:{port}", env=env, tmp=tmp_path, redis=stack_redis)
    web = Process(
        name="web",
        argv=[
            str(BIN / "gunicorn"),
            "wemasy.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--timeout",
            "60",
        ],
        env=env,
        log_path=tmp_path / "web.log",
    ).start()
    stack.processes["web"] = web
    wait_for(lambda: _answers(f"{stack.web_url}/healthz"), timeout=30, what="gunicorn")
    try:
        yield stack
    finally:
        for process in stack.processes.values():
            process.stop()
        if stack_redis is None:
            redis.Redis.from_url(broker_url).delete(queue)  # what the stopped workers left behind
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(stack.logs())


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
