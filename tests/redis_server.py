"""A Redis of a test's own, to kill, hang and bring back empty (never the shared one of ``REDIS_URL``).

``redis-server`` on a free port, keeping nothing on disk (``--save "" --appendonly no``), so a restart
comes back empty, as a production Redis without persistence does after a crash. The states a test
can put it in:

- ``kill()``: the process is gone; connecting is refused at once.
- ``hang()``: the process is stopped (SIGSTOP); connections are accepted by the kernel, nothing is
  answered, so only a client's own timeouts end its wait. ``kill()`` or ``restart()`` ends it.
- ``restart()``: a fresh, empty server on the same port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")

requires_redis_server = pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary on PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process dies only once it runs again
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def hang(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started Redis of this test's own; stopped afterwards whatever state the test left it in."""
    if REDIS_SERVER is None:
        pytest.skip("needs the redis-server binary on PATH")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()
