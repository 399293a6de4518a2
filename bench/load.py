"""Load benchmark: many concurrent clients on the push and batch-status endpoints, for a bounded time.

Starts the Sendcloud sandbox, gunicorn and one Celery worker as separate processes against PostgreSQL
and Redis (the whole service, as deployed, on this machine), seeds ``--shops`` shops with a Sendcloud
account, an API token and orders each, and then runs two ``wrk`` load generators side by side for
``--duration`` seconds:

- **push**: ``--push-clients`` connections, each request pushes 10 orders no earlier push took, for
  the shops in turn (a platform of shops pushing small batches);
- **status**: ``--status-clients`` connections reading the progress page of a batch (100 orders a
  page), of the shops in turn.

It reports requests per second, p50/p99 latency and errors (non-2xx answers and socket errors) per
endpoint, and scrapes ``/metrics`` (multi-process mode) every ``--scrape-every`` seconds, writing the
scrapes to ``--scrapes`` (JSON lines) for ``bench/dashboard_render.py``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wemasy_bench_load REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m bench.load [--duration 30] [--push-clients 16] [--status-clients 16]

Needs ``wrk`` (Debian: ``apt-get install wrk``). The database is emptied first (use a database of the
benchmark's own); in Redis it uses keys under a prefix of its own and a queue of its own, and deletes
them at the end (never a FLUSHDB). The per-token API rate limit is lifted for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.processes import BIN, ROOT, ensure_database, free_port, start, stop, wait_http, web_command
from bench.throughput import cpu_seconds

RUN = uuid.uuid4().hex[:8]
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wemasy_bench_load")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1rZXktYmVuY2gtb25seS1rZXktMDA=")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")
os.environ["CACHE_KEY_PREFIX"] = os.environ["SENDCLOUD_BUDGET_KEY_PREFIX"] = f"wemasy-load-{RUN}"
os.environ["CELERY_QUEUE"] = f"wemasy-load-{RUN}"

API = "/api/services/webshop/v1/orders/sendcloud/shipments"
IDS_PER_PUSH = 10
METRICS_TOKEN = f"load-{RUN}"

# wrk's Lua side: ``setup`` numbers the threads, ``request`` builds each request, ``done`` prints JSON.
LUA_COMMON = """
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""

LUA_PUSH = """
local shops = {SHOPS}
local per_push = {PER_PUSH}
local nthreads = {THREADS}
function request()
  local n = counter * nthreads + tid
  counter = counter + 1
  local shop = shops[(n % #shops) + 1]
  local slot = math.floor(n / #shops) % shop.slots
  local ids = {}
  for i = 0, per_push - 1 do ids[#ids + 1] = tostring(shop.first + slot * per_push + i) end
  local body = '{"create_label": false, "order_ids": [' .. table.concat(ids, ",") .. ']}'
  return wrk.format("POST", "{PATH}", {["Authorization"] = "Bearer " .. shop.token,
    ["Content-Type"] = "application/json"}, body)
end
"""

LUA_STATUS = """
local batches = {BATCHES}
function request()
  counter = counter + 1
  local b = batches[((counter + tid * 7) % #batches) + 1]
  return wrk.format("GET", "{PATH}/batches/" .. b.id .. "?page_size=100", {["Authorization"] = "Bearer " .. b.token})
end
"""


def lua_table(rows: list[dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        return json.dumps(v) if isinstance(v, str) else str(v)

    return "{" + ", ".join("{" + ", ".join(f"{k} = {value(v)}" for k, v in row.items()) + "}" for row in rows) + "}"


def seed(shops: int, orders_per_shop: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shops with an account, a token and orders; one batch each to read. Returns the Lua rows."""
    from sendcloud_integration.models import SendcloudIntegration
    from sendcloud_integration.push.services import Actor, push_orders
    from webshop.demo import make_orders
    from webshop.models import ApiToken, Shop

    push_rows, status_rows = [], []
    for n in range(shops):
        shop = Shop.objects.create(slug=f"load-{n}", name=f"Load shop {n}")
        SendcloudIntegration.objects.create(
            shop=shop, public_key=f"sandbox-public-{n}", secret_key=f"sandbox-secret-{n}", integration_id=1000 + n
        )
        token = ApiToken.issue(shop=shop, name="load").raw
        ids = sorted(order.pk for order in make_orders(shop, orders_per_shop + 100, prefix="LOAD"))
        assert ids[-1] - ids[0] == len(ids) - 1, "the orders of a shop must have consecutive ids"
        batch = push_orders(shop=shop, order_ids=ids[:100], create_label=False, actor=Actor.command("bench.load"))
        status_rows.append({"id": str(batch.batch_id), "token": token})
        push_rows.append({"token": token, "first": ids[100], "slots": orders_per_shop // IDS_PER_PUSH})
        print(f"seeded shop {n + 1}/{shops}: {orders_per_shop + 100} orders", file=sys.stderr)
    return push_rows, status_rows


def run_wrk(script: str, url: str, clients: int, threads: int, duration: int, out: dict[str, Any], key: str) -> None:
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--timeout", "10s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    )
    out[key] = json.loads(result.stdout.strip().splitlines()[-1])


def scraper(url: str, every: float, stop_at: float, path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        while time.monotonic() < stop_at:
            try:
                text = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5).text
                handle.write(json.dumps({"t": time.time(), "text": text}) + "\n")
            except requests.RequestException as exc:
                print(f"scrape failed: {exc}", file=sys.stderr)
            time.sleep(every)


def summarise(name: str, r: dict[str, Any]) -> dict[str, Any]:
    seconds = r["duration_us"] / 1e6
    errors = r["non_2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "endpoint": name,
        "requests": r["requests"],
        "rps": round(r["requests"] / seconds, 1),
        "p50_ms": round(r["p50_us"] / 1000, 1),
        "p90_ms": round(r["p90_us"] / 1000, 1),
        "p99_ms": round(r["p99_us"] / 1000, 1),
        "max_ms": round(r["max_us"] / 1000, 1),
        "errors": errors,
        "non_2xx": r["non_2xx"],
        "timeouts": r["timeout"],
    }


def cleanup_redis() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ["CACHE_KEY_PREFIX"]
    for pattern in (f"{prefix}:*", f"*{prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start_at in range(0, len(keys), 500):
            client.delete(*keys[start_at : start_at + 500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (both generators)")
    parser.add_argument("--push-clients", type=int, default=16)
    parser.add_argument("--status-clients", type=int, default=16)
    parser.add_argument("--shops", type=int, default=10)
    parser.add_argument("--orders-per-shop", type=int, default=3000)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--scrape-every", type=float, default=2.0)
    parser.add_argument("--scrapes", default="var/load-scrapes.jsonl", help="where the /metrics scrapes go")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.load needs wrk: apt-get install wrk")

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    multiproc = work / "metrics"
    multiproc.mkdir()
    sandbox_port, web_port = free_port(), free_port()
    accounts = [
        {"public_key": f"sandbox-public-{n}", "secret_key": f"sandbox-secret-{n}", "integration_ids": [1000 + n]}
        for n in range(args.shops)
    ]
    (work / "sandbox.json").write_text(json.dumps({"rate_limits_enabled": True, "accounts": accounts}))
    env = {
        **os.environ,
        "SENDCLOUD_API_BASE_URL": f"http://127.0.0.1:{sandbox_port}/api",
        "SENDCLOUD_BUDGET_ENABLED": "1",
        "API_RATE_LIMIT_PER_MINUTE": "1000000",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MEDIA_ROOT": str(work / "media"),
        "VAR_DIR": str(work / "var"),
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    python = str(BIN / "python")
    processes = [
        start(
            [python, "-m", "sendcloud_sandbox", "--port", str(sandbox_port), "--config", str(work / "sandbox.json")],
            env,
            work / "sandbox.log",
        ),
        start(web_command(web_port, args.web_workers, "--timeout", "30"), env, work / "web.log"),
        start(
            [
                str(BIN / "celery"),
                "-A",
                "wemasy",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--without-mingle",
                "--without-gossip",
                "-Q",
                os.environ["CELERY_QUEUE"],
                "-n",
                f"load-{RUN}@%h",
            ],
            env,
            work / "worker.log",
        ),
    ]
    results: dict[str, Any] = {}
    try:
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/health")
        wait_http(f"http://127.0.0.1:{web_port}/healthz")
        push_rows, status_rows = seed(args.shops, args.orders_per_shop)
        threads = min(2, args.push_clients)  # wrk needs a connection per thread at least
        push_lua = work / "push.lua"
        push_lua.write_text(
            LUA_COMMON
            + LUA_PUSH.replace("{SHOPS}", lua_table(push_rows))
            .replace("{PER_PUSH}", str(IDS_PER_PUSH))
            .replace("{THREADS}", str(threads))
            .replace("{PATH}", f"{API}/push")
        )
        status_lua = work / "status.lua"
        status_lua.write_text(
            LUA_COMMON + LUA_STATUS.replace("{BATCHES}", lua_table(status_rows)).replace("{PATH}", API)
        )
        base = f"http://127.0.0.1:{web_port}"
        time.sleep(2)
        stop_at = time.monotonic() + args.duration + 20
        scrapes = Path(args.scrapes)
        scrapes.parent.mkdir(parents=True, exist_ok=True)
        scrape = threading.Thread(
            target=scraper, args=(f"{base}/metrics", args.scrape_every, stop_at, scrapes), daemon=True
        )
        scrape.start()
        time.sleep(args.scrape_every * 2)  # a baseline before the load
        generators = [
            threading.Thread(
                target=run_wrk,
                args=(str(push_lua), base, args.push_clients, threads, args.duration, results, "push"),
            ),
            threading.Thread(
                target=run_wrk,
                args=(
                    str(status_lua),
                    base,
                    args.status_clients,
                    min(2, args.status_clients),
                    args.duration,
                    results,
                    "status",
                ),
            ),
        ]
        web_cpu = cpu_seconds(processes[1].pid)
        for generator in generators:
            generator.start()
        for generator in generators:
            generator.join()
        web_cpu = cpu_seconds(processes[1].pid) - web_cpu
        scrape.join()  # and 20 s more of scrapes: the worker catching up after the load
    finally:
        for process in reversed(processes):
            stop(process)
        cleanup_redis()

    table = [summarise("push (10 ids)", results["push"]), summarise("batch status (page of 100)", results["status"])]
    web_cpu_ms = round(1000 * web_cpu / max(1, sum(row["requests"] for row in table)), 1)
    load = round(os.getloadavg()[0], 1)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    summary = {"machine": machine, "load_average": load, "duration_s": args.duration, "web_workers": args.web_workers}
    print(json.dumps({**summary, "web_cpu_ms_per_request": web_cpu_ms, "results": table}))
    print(
        "\n| endpoint | clients | requests | req/s | p50 | p90 | p99 | max | errors |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        file=sys.stderr,
    )
    for row, clients in zip(table, (args.push_clients, args.status_clients), strict=True):
        print(
            f"| {row['endpoint']} | {clients} | {row['requests']:,} | {row['rps']} | {row['p50_ms']} ms | "
            f"{row['p90_ms']} ms | {row['p99_ms']} ms | {row['max_ms']} ms | {row['errors']} |",
            file=sys.stderr,
        )
    print(f"gunicorn CPU per request (both endpoints): {web_cpu_ms} ms; 1-minute load average: {load}", file=sys.stderr)
    print(f"scrapes of /metrics: {args.scrapes}; logs: {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
