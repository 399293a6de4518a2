"""Soak test of ``make run`` as a newcomer meets it (issue #8), run by ``.ci/run`` and ``make soak``.

``.venv/bin/python .ci/soak.py [--pushes 20] [--interval 6] [--keep]`` from the repository root.

1. **start**: ``make run`` from this checkout on free ports and a fresh ``VAR_DIR``; waits for the
   token and the ``curl`` it prints.
2. **printed curl**: runs the push ``curl`` exactly as printed (with bash), then the batch ``curl``
   with the batch id put in.
3. **pushes**: ``--pushes`` more batches through the HTTP API with the printed token, one slot every
   ``--interval`` seconds: half with labels, some slots two pushes at once sharing ids, some pushes
   repeating ids of the batch before.
4. **finish**: every batch finishes, only the orders Sendcloud must refuse fail, every label batch
   has all its pushed orders labelled and its PDF downloads, and no process died (no ``stopped``
   line, nothing CRITICAL, no traceback).
5. **ctrl-c**: a push, and at once SIGINT to ``make run``'s process group, as a terminal's
   Ctrl-C; everything exits, the ports are free and no process is left.
6. **restart**: ``make run`` again on the same ``VAR_DIR``: a new token (the old one refused), the
   first run's batches still there, the batch cut short finishes, the printed ``curl`` and a label
   push work.
7. **unreadable message**: a message that is not JSON put on the broker makes the worker stop; make
   run must exit non-zero with one line naming the worker and why, and leave nothing running.

Every process it starts is its descendant (it makes itself the child subreaper on Linux), so none
can escape the final check or the clean-up. Exits 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
API = "/api/services/webshop/v1/orders/sendcloud/shipments"
FINISHED = {"completed", "completed_with_errors", "failed"}
PR_SET_CHILD_SUBREAPER = 36
#: Environment a newcomer's shell would not have, or that CI sets for the test suite.
FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "VAR_DIR", "MEDIA_ROOT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
FOREIGN_PREFIXES = ("CELERY_", "SENDCLOUD_", "DJANGO_", "PYTEST", "API_RATE", "PUSH_MAX")
#: Lines that mean a process fell over while it should have been running.
TROUBLE = re.compile(r"CRITICAL|Traceback \(most recent call last\)|Unrecoverable error|\| \S+ stopped \(rc=")


class SoakFailure(AssertionError):
    pass


def log(message: str) -> None:
    print(f"soak: {message}", flush=True)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def become_subreaper() -> bool:
    """Orphans of what we start (make run's processes lead sessions of their own) become our children."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def descendants(exclude: set[int]) -> list[psutil.Process]:
    """Our living descendants, zombies reaped (except the ``exclude`` pids, which their Popen waits for)."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                if child.pid not in exclude:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(child.pid, os.WNOHANG)
                continue
            alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def describe(processes: list[psutil.Process]) -> str:
    names = []
    for process in processes:
        try:
            names.append(f"{process.pid} {' '.join(process.cmdline())[:90]}")
        except psutil.Error:
            names.append(str(process.pid))
    return "; ".join(names)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Banner:
    token: str
    push_curl: str
    batch_curl: str
    text: str


class MakeRun:
    """One ``make run``, its output collected line by line into a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.lines: list[str] = []
        self.popen: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> MakeRun:
        self.popen = subprocess.Popen(
            ["make", "--no-print-directory", "run"],  # noqa: S607 - the newcomer's command
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own terminal-like process group, for the Ctrl-C
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.popen is not None
        assert self.popen.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as out:
            for raw in iter(self.popen.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self.lines.append(line)
                out.write(line + "\n")
                out.flush()

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_for(self, predicate: Callable[[list[str]], Any], *, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate(self.snapshot())
            if found:
                return found
            if not self.alive:
                time.sleep(0.5)  # let the reader catch the last lines
                found = predicate(self.snapshot())
                if found:
                    return found
                raise SoakFailure(f"make run exited ({self.popen.returncode if self.popen else '?'}) before {what}")
            time.sleep(0.25)
        raise SoakFailure(f"timed out after {timeout:.0f}s waiting for {what}")

    def banner(self, timeout: float) -> Banner:
        def parse(lines: list[str]) -> Banner | None:
            start = next((i for i, line in enumerate(lines) if line.startswith("make run: ready in ")), None)
            if start is None:
                return None
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=" * 50)), None)
            if end is None:
                return None
            block = lines[start:end]
            token_at = next(i for i, line in enumerate(block) if line.startswith("API token"))
            return Banner(
                token=block[token_at + 1].strip(),
                push_curl=command_after(block, "Push "),
                batch_curl=command_after(block, "Read the batch"),
                text="\n".join(block),
            )

        result: Banner = self.wait_for(parse, timeout=timeout, what="the printed token and curl")
        return result

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        if self.popen is not None and self.alive:
            os.killpg(self.popen.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        returncode = self.popen.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return returncode

    def tail(self, count: int = 60) -> str:
        return "\n".join(self.snapshot()[-count:])

    def trouble(self) -> list[str]:
        return [line for line in self.snapshot() if TROUBLE.search(line)]


def command_after(block: list[str], heading: str) -> str:
    """The (backslash-continued) command printed on the lines after ``heading``."""
    start = next(i for i, line in enumerate(block) if line.startswith(heading)) + 1
    lines = []
    for line in block[start:]:
        lines.append(line)
        if not line.rstrip().endswith("\\"):
            break
    return "\n".join(lines)


@dataclass
class Pushed:
    name: str
    batch_id: str
    create_label: bool
    order_ids: list[int]
    queued: list[int] = field(default_factory=list)
    skipped: int = 0
    status: str = "queued"
    polled_at: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    labels_url: str | None = None


#: How many 503s with Retry-After (the rate limit could not be checked: Redis answered later than
#: REDIS_REQUEST_TIMEOUT, which a stalled CI machine can make it do) the whole soak waits out, as the API's
#: contract tells a client to; one more fails the soak, so a Redis that is really gone still does.
UNAVAILABLE_TOLERATED = 3


class Api:
    """The service's HTTP API with the printed token, within its rate limit (waits out a 429, and up to
    ``UNAVAILABLE_TOLERATED`` 503s with Retry-After)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.rate_limited = 0
        self.unavailable = 0
        self.requests = 0
        self._lock = threading.Lock()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base}{path}"
        for _ in range(10):
            with self._lock:
                self.requests += 1
            response = self.session.request(method, url, timeout=30, **kwargs)
            if response.status_code == 503 and "Retry-After" in response.headers:
                with self._lock:
                    self.unavailable += 1
                    if self.unavailable > UNAVAILABLE_TOLERATED:
                        return response
                print(f"soak: {method} {path}: 503, waiting {response.headers['Retry-After']} s as told", flush=True)
            elif response.status_code != 429:
                return response
            else:
                with self._lock:
                    self.rate_limited += 1
            time.sleep(float(response.headers.get("Retry-After", "2")) + 0.2)
        raise SoakFailure(f"{method} {path}: still rate limited after 10 tries")

    def push(self, name: str, order_ids: list[int], *, create_label: bool) -> Pushed:
        response = self.call("POST", f"{API}/push", json={"create_label": create_label, "order_ids": order_ids})
        if response.status_code != 200:
            raise SoakFailure(f"push {name}: HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if not body.get("batch"):
            raise SoakFailure(f"push {name} queued nothing: {body.get('message')}")
        queued = [order["id"] for order in body["details"]["queued_orders"]]
        skipped = int(body["summary"]["skipped_orders"])
        return Pushed(name, body["batch"]["id"], create_label, order_ids, queued, skipped)

    def batch(self, batch_id: str, **params: Any) -> dict[str, Any]:
        response = self.call("GET", f"{API}/batches/{batch_id}", params=params)
        if response.status_code != 200:
            raise SoakFailure(f"batch {batch_id}: HTTP {response.status_code}: {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result


def demo_orders(var_dir: Path) -> tuple[list[int], set[int]]:
    """The demo shop's order ids, and those that must fail: a Dutch postal code cut short (Sendcloud refuses
    it), and the sandbox's closed service point 1000005 (the label phase's availability check fails it)."""
    with contextlib.closing(sqlite3.connect(f"file:{var_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)) as db:
        rows = db.execute(
            "SELECT o.id, a.postal_code, a.country, o.service_point_id FROM webshop_order o "
            "JOIN webshop_shop s ON s.id = o.shop_id "
            "LEFT JOIN webshop_shippingaddress a ON a.order_id = o.id WHERE s.slug = 'demo' ORDER BY o.id"
        ).fetchall()
    refused = {row[0] for row in rows if (row[2] == "NL" and row[1] == "1012") or row[3] == "1000005"}
    return [row[0] for row in rows], refused


def run_printed(command: str) -> dict[str, Any]:
    """A printed curl, run by bash exactly as printed; its answer must be JSON."""
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)  # noqa: S603,S607
    if done.returncode != 0:
        raise SoakFailure(f"printed command failed ({done.returncode}): {done.stderr.strip()[:300]}")
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise SoakFailure(f"printed command did not answer JSON: {done.stdout[:300]!r}") from exc
    return result


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="wemasy-soak-"))
        self.var_dir = self.work / "var"
        self.ports = dict(zip(("PORT", "SANDBOX_PORT", "REDIS_PORT"), free_ports(3), strict=True))
        self.base = f"http://127.0.0.1:{self.ports['PORT']}"
        self.checks: list[Check] = []
        self.runs: list[MakeRun] = []
        self.batches: list[Pushed] = []
        self.subreaper = become_subreaper()

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV and not k.startswith(FOREIGN_PREFIXES)}
        env.update({name: str(port) for name, port in self.ports.items()})
        env.update({"VAR_DIR": str(self.var_dir), "DEMO_ORDERS": str(self.args.orders)})
        return env

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """A named check: passes unless its body raises; the body may add details to the list."""
        started = time.monotonic()
        details: list[str] = []
        log(f"{name} ...")
        try:
            yield details
        except Exception as exc:
            seconds = time.monotonic() - started
            self.checks.append(Check(name, False, f"{type(exc).__name__}: {exc}", seconds))
            log(f"{name}: FAILED after {seconds:.0f}s: {exc}")
            raise
        seconds = time.monotonic() - started
        self.checks.append(Check(name, True, "; ".join(details), seconds))
        log(f"{name}: ok in {seconds:.0f}s{': ' + '; '.join(details) if details else ''}")

    def start(self, number: int) -> tuple[MakeRun, Banner]:
        run = MakeRun(self.environment(), self.work / f"make-run-{number}.log").start()
        self.runs.append(run)
        banner = run.banner(timeout=self.args.start_timeout)
        return run, banner

    # --- phases ---------------------------------------------------------------------------------------

    def first_start(self) -> tuple[MakeRun, Banner]:
        with self.step("1 start: make run prints a token and curl") as details:
            run, banner = self.start(1)
            details.append(f"ports {self.ports}")
        return run, banner

    def printed_curl(self, banner: Banner) -> Pushed:
        with self.step("2 printed curl: push and batch commands work as printed") as details:
            if f"{self.base}/" not in banner.push_curl:
                raise SoakFailure(f"the printed curl does not target {self.base}: {banner.push_curl}")
            answer = run_printed(banner.push_curl)
            if answer.get("error") or not answer.get("batch"):
                raise SoakFailure(f"printed push answered {answer}")
            batch_id = answer["batch"]["id"]
            ids = [q["id"] for q in answer["details"]["queued_orders"]]
            read = run_printed(banner.batch_curl.replace("<BATCH_ID>", batch_id))
            if read.get("batch", {}).get("id") != batch_id:
                raise SoakFailure(f"printed batch curl answered {str(read)[:300]}")
            details.append(f"batch {batch_id[:8]} queued {len(ids)} orders")
        return Pushed("printed curl", batch_id, False, ids, ids)

    def plan(self, pool: list[int]) -> list[list[tuple[str, list[int], bool]]]:
        """Slots of pushes: every third slot two pushes at once sharing 3 ids; every fourth push repeats 4."""
        slots: list[list[tuple[str, list[int], bool]]] = []
        taken = 0
        number = 0
        previous: list[int] = []
        size = self.args.batch_size
        while number < self.args.pushes:
            pair = len(slots) % 3 == 1 and number + 2 <= self.args.pushes
            slot = []
            shared = pool[taken : taken + 3] if pair else []
            taken += len(shared)
            for _ in range(2 if pair else 1):
                ids = pool[taken : taken + size]
                taken += size
                if number % 4 == 3:
                    ids += previous[:4]
                number += 1
                slot.append((f"push {number:02d}", sorted(set(ids + shared)), number % 2 == 1))
                previous = ids
            slots.append(slot)
        return slots

    def pushes(self, api: Api, pool: list[int]) -> None:
        with self.step(f"3 pushes: {self.args.pushes} batches, half with labels, some overlapping") as details:
            slots = self.plan(pool)
            next_at = time.monotonic()
            pairs = moved = 0
            with ThreadPoolExecutor(max_workers=2) as pool_executor:
                for slot in slots:
                    while time.monotonic() < next_at:
                        self.poll_one(api)
                        time.sleep(1.5)
                    futures = [
                        pool_executor.submit(api.push, name, ids, create_label=labels) for name, ids, labels in slot
                    ]
                    pushed = [future.result() for future in futures]
                    self.batches.extend(pushed)
                    if len(pushed) == 2:
                        pairs += 1
                        # Queued by both only when the first had pushed them (no label) before the second, a
                        # label push, read them: label work only, moved to the later batch (by design).
                        moved += len(set(pushed[0].queued) & set(pushed[1].queued))
                    next_at += self.args.interval
            labelled = sum(1 for batch in self.batches if batch.create_label)
            skipped = sum(batch.skipped for batch in self.batches)
            details.append(
                f"{len(self.batches) - 1} pushed ({labelled} with labels) in {len(slots)} slots, {pairs} of them two "
                f"at once sharing ids ({moved} moved on to the label push); {skipped} ids skipped (not shippable, "
                "already queued or pushed)"
            )

    def poll_one(self, api: Api, batches: list[Pushed] | None = None) -> None:
        """Refresh the unfinished batch read longest ago (one request: the API allows 60 a minute)."""
        unfinished = [b for b in (self.batches if batches is None else batches) if b.status not in FINISHED]
        if not unfinished:
            return
        batch = min(unfinished, key=lambda b: b.polled_at)
        body = api.batch(batch.batch_id)["batch"]
        batch.status, batch.counts, batch.labels_url = body["status"], body["counts"], body["labels_url"]
        batch.polled_at = time.monotonic()

    def finish(self, api: Api, run: MakeRun, refused: set[int]) -> None:
        with self.step("4 finish: every batch finishes, no process died") as details:
            deadline = time.monotonic() + self.args.finish_timeout
            while any(batch.status not in FINISHED for batch in self.batches):
                if time.monotonic() > deadline:
                    late = [f"{b.name}={b.status}" for b in self.batches if b.status not in FINISHED]
                    raise SoakFailure(f"not finished after {self.args.finish_timeout:.0f}s: {', '.join(late)}")
                if not run.alive:
                    raise SoakFailure("make run exited while batches were running")
                self.poll_one(api)
                time.sleep(1.0)
            problems = []
            for batch in self.batches:
                if batch.status == "failed":
                    problems.append(f"{batch.name} failed")
                if batch.counts.get("failed"):
                    page = api.batch(batch.batch_id, state="failed", page_size=1000)["orders"]["results"]
                    unexpected = [f"{o['order_number']}: {o['error']}" for o in page if o["id"] not in refused]
                    problems.extend(f"{batch.name}: {text}" for text in unexpected)
                if batch.create_label and batch.counts["labelled"] != batch.counts["pushed"]:
                    problems.append(f"{batch.name}: {batch.counts['labelled']} of {batch.counts['pushed']} labelled")
            for batch in [b for b in self.batches if b.create_label and b.labels_url][:3]:
                pdf = api.call("GET", batch.labels_url or "")
                if pdf.status_code != 200 or not pdf.content.startswith(b"%PDF"):
                    problems.append(f"{batch.name}: labels PDF answered {pdf.status_code}")
            sandbox = requests.get(f"http://127.0.0.1:{self.ports['SANDBOX_PORT']}/_sandbox/state", timeout=30).json()
            labelled = sum(batch.counts.get("labelled", 0) for batch in self.batches)
            if sandbox["duplicate_labels"]:
                problems.append(f"labels bought twice at Sendcloud: {sandbox['orders_with_duplicate_labels'][:10]}")
            if len(sandbox["labels_per_order"]) != labelled:
                problems.append(f"{labelled} orders labelled, the sandbox made {len(sandbox['labels_per_order'])}")
            trouble = run.trouble()
            if trouble:
                problems.append(f"a process fell over: {trouble[0][:200]}")
            if not run.alive:
                problems.append("make run is not running any more")
            if problems:
                raise SoakFailure("; ".join(problems[:8]))
            statuses = sorted({b.status for b in self.batches})
            orders = sum(b.counts.get("queued", 0) for b in self.batches)
            details.append(
                f"{len(self.batches)} batches ({', '.join(statuses)}), {orders} orders, {labelled} labels, "
                "no label bought twice"
            )
            details.append(
                f"{api.requests} API requests, {api.rate_limited} answered 429 and retried, "
                f"{api.unavailable} answered 503 (rate limit unchecked) and retried"
            )

    def stop(self, run: MakeRun, name: str, api: Api, spare: list[int]) -> Pushed:
        """Ctrl-C right after a push, so that its batch is cut short and must resume after the restart.

        Without labels: the sandbox keeps its state in memory only, so labels it was making when it
        stopped are gone after a restart (a real Sendcloud keeps them), and such a batch would wait
        ``SENDCLOUD_LABEL_MAX_WAIT_SECONDS`` before failing them.
        """
        with self.step(name) as details:
            interrupted = api.push("cut short by ctrl-c", spare, create_label=False)
            time.sleep(self.args.cut_after)
            started = time.monotonic()
            run.interrupt()
            try:
                returncode = run.wait(timeout=45)
            except subprocess.TimeoutExpired as exc:
                raise SoakFailure("make run still running 45s after Ctrl-C") from exc
            stopped = [line for line in run.snapshot() if line.startswith("make run: ")]
            if not stopped or not stopped[-1].startswith("make run: stopped (Ctrl-C)"):
                raise SoakFailure(f"no clean stop line; last lines:\n{run.tail(15)}")
            self.assert_nothing_left()
            details.append(f"exit {returncode} in {time.monotonic() - started:.1f}s, ports free, nothing left")
            details.extend(line for line in stopped if line.startswith("make run: killed"))
        return interrupted

    def assert_nothing_left(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            left = descendants(exclude=set())
            busy = [port for port in self.ports.values() if port_taken(port)]
            if not left and not busy:
                return
            if time.monotonic() > deadline:
                raise SoakFailure(f"left running: {describe(left) or '-'}; ports still taken: {busy or '-'}")
            time.sleep(0.5)

    def restart(self, first_token: str, old_batch: Pushed, interrupted: Pushed) -> MakeRun:
        with self.step("6 restart: make run again on the same var/") as details:
            run, banner = self.start(2)
            if banner.token == first_token or "older demo token(s) revoked" not in banner.text:
                raise SoakFailure("the second run did not issue a new token and revoke the old one")
            old = Api(self.base, first_token).call("GET", f"{API}/batches/{old_batch.batch_id}")
            if old.status_code != 401:
                raise SoakFailure(f"the first run's token still answers {old.status_code}")
            api = Api(self.base, banner.token)
            earlier = api.batch(old_batch.batch_id)["batch"]
            if earlier["status"] not in FINISHED:
                raise SoakFailure(f"the first run's batch is {earlier['status']} after the restart")
            answer = run_printed(banner.push_curl)
            if not answer.get("batch"):
                raise SoakFailure(f"printed push after the restart answered {str(answer)[:300]}")
            fresh = [interrupted, Pushed("restart curl", answer["batch"]["id"], False, [])]
            ids = [q["id"] for q in answer["details"]["queued_orders"]]
            pool, _ = demo_orders(self.var_dir)
            spare = [i for i in pool if i > max(ids)][:8]
            fresh.append(api.push("restart labels", spare, create_label=True))
            deadline = time.monotonic() + self.args.finish_timeout
            while any(batch.status not in FINISHED for batch in fresh):
                if time.monotonic() > deadline or not run.alive:
                    raise SoakFailure(f"second run's batches: {[b.status for b in fresh]}")
                self.poll_one(api, fresh)
                time.sleep(1.0)
            trouble = run.trouble()
            if trouble:
                raise SoakFailure(f"a process fell over: {trouble[0][:200]}")
            details.append(
                f"new token, old one refused, first run's batch kept; the batch cut short by ctrl-c, the printed "
                f"curl's and a label push: {', '.join(b.status for b in fresh)}"
            )
        return run

    def unreadable_message(self, run: MakeRun) -> None:
        with self.step("7 unreadable message: make run stops loudly, non-zero, nothing left") as details:
            broker = redis.Redis(host="127.0.0.1", port=self.ports["REDIS_PORT"], db=0)
            broker.lpush("celery", b"this is not a JSON message")
            try:
                returncode = run.wait(timeout=60)
            except subprocess.TimeoutExpired as exc:
                raise SoakFailure("make run still running 60s after the worker got an unreadable message") from exc
            said = [line for line in run.snapshot() if line.startswith("make run: ")]
            last = said[-1] if said else ""
            if returncode == 0:
                raise SoakFailure("make run exited 0 after its worker stopped")
            if not last.startswith("make run: stopped because the worker") or "read a message" not in last:
                raise SoakFailure(f"the closing line does not say why: {last!r}")
            self.assert_nothing_left()
            details.append(f"exit {returncode}; {last[:150]}...")

    # --- the whole ------------------------------------------------------------------------------------

    def run(self) -> bool:
        started = time.monotonic()
        log(f"working in {self.work} (make run output: make-run-N.log there); subreaper: {self.subreaper}")
        try:
            run, banner = self.first_start()
            printed = self.printed_curl(banner)
            pool, refused = demo_orders(self.var_dir)
            pool = [i for i in pool if i not in set(printed.order_ids)]
            api = Api(self.base, banner.token)
            self.batches.append(printed)
            self.pushes(api, pool)
            self.finish(api, run, refused)
            interrupted = self.stop(run, "5 ctrl-c: everything exits, ports free", api, pool[-10:])
            second = self.restart(banner.token, printed, interrupted)
            self.unreadable_message(second)
        except Exception:  # recorded by its step; show what make run said
            for run in self.runs:
                if run.snapshot():
                    print(f"----- last lines of {run.log_path.name} -----\n{run.tail()}", flush=True)
        finally:
            self.clean_up()
        return self.summary(time.monotonic() - started)

    def clean_up(self) -> None:
        for run in self.runs:
            if run.alive:
                run.interrupt()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.wait(timeout=30)
            if run.alive and run.popen is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.popen.pid, signal.SIGKILL)
        for process in descendants(exclude=set()):
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.passed and not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks) and len(self.checks) == 7

    def summary(self, seconds: float) -> bool:
        print(f"\nsoak summary ({seconds:.0f}s):", flush=True)
        for check in self.checks:
            print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name} ({check.seconds:.0f}s) {check.detail}", flush=True)
        if not self.passed:
            print(f"  logs kept in {self.work}", flush=True)
        failed = sum(1 for check in self.checks if not check.ok) + (7 - len(self.checks) if not self.passed else 0)
        print(f"soak: {sum(1 for check in self.checks if check.ok)} passed, {failed} failed", flush=True)
        return self.passed


def give_up(signum: int, frame: object) -> None:
    """SIGALRM (the soak's own deadline) or SIGTERM: fail the running step, then clean up as usual."""
    raise SoakFailure("the soak ran out of time" if signum == signal.SIGALRM else "the soak was stopped (SIGTERM)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=20, help="batches pushed after the printed curl")
    parser.add_argument("--interval", type=float, default=6.0, help="seconds between two slots of pushes")
    parser.add_argument("--batch-size", type=int, default=12, help="fresh order ids per push")
    parser.add_argument("--orders", type=int, default=600, help="demo orders make run seeds (DEMO_ORDERS)")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds make run may take to be ready")
    parser.add_argument("--finish-timeout", type=float, default=120.0, help="seconds for batches to finish")
    parser.add_argument("--cut-after", type=float, default=0.0, help="seconds between the last push and Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, var/) even when passing")
    parser.add_argument("--deadline", type=int, default=540, help="seconds the whole soak may take")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, give_up)
    signal.signal(signal.SIGTERM, give_up)
    signal.alarm(args.deadline)
    return 0 if Soak(args).run() else 1


if __name__ == "__main__":
    sys.exit(main())
