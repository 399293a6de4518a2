"""Benchmark: orders per minute through web, worker and the Sendcloud sandbox, end to end.

Starts the sandbox, gunicorn and Celery worker(s) as separate processes against PostgreSQL and
Redis, pushes N orders through the real HTTP endpoint, waits until every batch is finished, and
reports:

- orders per minute, from the push request to the last batch's ``finished_at``;
- the Sendcloud requests made, and how many the sandbox refused with 429;
- the workers' CPU time per order and their peak memory (VmHWM of each worker process).

Modes:
  limited    the sandbox enforces Sendcloud's documented limits (100 unsafe requests a minute,
             15 a second, 1000 GETs a minute); the service's shared budget keeps it under them.
  unlimited  sandbox limits off and no added latency: what the service itself costs per order.
  labels     like ``limited``, with ``create_label: true``.

    .venv/bin/python -m bench.throughput --mode limited --orders 10000
    .venv/bin/python -m bench.throughput --mode unlimited --orders 10000
    .venv/bin/python -m bench.throughput --mode labels --orders 2000

Environment: ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/wemasy_bench_tp, created
if missing and emptied first) and ``REDIS_URL`` (default redis://127.0.0.1:6379/10; the broker uses
the next database number).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import requests

from bench.processes import BIN, ensure_database, free_port, start, stop, wait_http, web_command

PUSH_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/push"

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wemasy_bench_tp")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1rZXktYmVuY2gtb25seS1rZXktMDA=")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")
os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = urlunsplit(
    urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{int(urlsplit(os.environ['REDIS_URL']).path[1:] or 0) + 1}")
)


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def peak_memory_mb(pid: int) -> float:
    """Sum of the peak resident sizes (VmHWM) of a worker's processes."""
    total_kb = 0
    for process in tree(pid):
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except (OSError, psutil.NoSuchProcess):
            pass
    return round(total_kb / 1024, 1)


def limit_efficiency(entries: list[dict[str, Any]], per_minute: int = 100, per_second: int = 15) -> dict[str, Any]:
    """How close the accepted upserts came to the fastest schedule Sendcloud's limits allow.

    Under "100 a minute, at most 15 a second", upsert k (counted from 0) can be sent at the earliest
    ``60 * (k // 100) + (k % 100) / 15`` seconds after the first. The efficiency is that earliest
    time for the last upsert divided by the time it really went out. (A run's first 100 upserts fit
    in one minute's allowance, so orders per minute alone overstate the long-run ceiling of about
    10,000 orders a minute.)
    """
    from datetime import datetime

    accepted = sorted(
        datetime.fromisoformat(r["time"]).timestamp()
        for r in entries
        if r["method"] == "POST" and r["path"] == "/api/v3/orders" and r["status"] == 201
    )
    if len(accepted) <= per_minute:
        return {"limit_efficiency": None}
    last = len(accepted) - 1
    earliest = 60 * (last // per_minute) + (last % per_minute) / per_second
    actual = accepted[-1] - accepted[0]
    return {
        "earliest_last_upsert_s": round(earliest, 1),
        "actual_last_upsert_s": round(actual, 1),
        "limit_efficiency": round(earliest / actual, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["limited", "unlimited", "labels"], default="limited")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with --concurrency)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--per-push", type=int, default=10_000, help="ids per push request (one batch each)")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Max

    from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState
    from webshop.demo import make_orders
    from webshop.models import ApiToken, Shop

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    sandbox_port, web_port = free_port(), free_port()
    limited = args.mode != "unlimited"
    sandbox_config = {"rate_limits_enabled": limited, "label_delay_seconds": 0.5 if limited else 0.0}
    (work / "sandbox.json").write_text(json.dumps(sandbox_config))
    env = {
        **os.environ,
        "SENDCLOUD_API_BASE_URL": f"http://127.0.0.1:{sandbox_port}/api",
        "SENDCLOUD_BUDGET_ENABLED": "1" if limited else "0",
        "API_RATE_LIMIT_PER_MINUTE": "1000",
        "PUSH_MAX_ORDER_IDS": str(max(args.per_push, 10_000)),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MEDIA_ROOT": str(work / "media"),
        "VAR_DIR": str(work / "var"),
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        start(
            [
                str(BIN / "python"),
                "-m",
                "sendcloud_sandbox",
                "--port",
                str(sandbox_port),
                "--config",
                str(work / "sandbox.json"),
            ],
            env,
            work / "sandbox.log",
        ),
        start(web_command(web_port, 2), env, work / "web.log"),
    ]
    workers = [
        start(
            [
                str(BIN / "celery"),
                "-A",
                "wemasy",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                str(args.concurrency),
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"bench{n}@%h",
            ],
            env,
            work / f"worker{n}.log",
        )
        for n in range(args.workers)
    ]
    try:
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/health")
        wait_http(f"http://127.0.0.1:{web_port}/healthz")
        time.sleep(3)  # let the workers finish booting before their CPU baseline is taken

        shop = Shop.objects.create(slug="bench", name="Bench")
        from sendcloud_integration.models import SendcloudIntegration

        SendcloudIntegration.objects.create(
            shop=shop, public_key="sandbox-public", secret_key="sandbox-secret", integration_id=1001
        )
        raw = ApiToken.issue(shop=shop, name="bench").raw
        ids = [order.pk for order in make_orders(shop, args.orders, prefix="BENCH")]

        cpu_before = sum(cpu_seconds(w.pid) for w in workers)
        started = time.time()
        batch_ids = []
        for offset in range(0, len(ids), args.per_push):
            response = requests.post(
                f"http://127.0.0.1:{web_port}{PUSH_URL}",
                json={"create_label": args.mode == "labels", "order_ids": ids[offset : offset + args.per_push]},
                headers={"Authorization": f"Bearer {raw}"},
                timeout=300,
            )
            response.raise_for_status()
            batch_ids.append(response.json()["batch"]["id"])
        deadline = time.monotonic() + args.timeout
        while PushBatch.objects.filter(pk__in=batch_ids, finished_at__isnull=True).exists():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the batches to finish")
            time.sleep(0.5)
        finished = PushBatch.objects.filter(pk__in=batch_ids).aggregate(last=Max("finished_at"))["last"]
        cpu_after = sum(cpu_seconds(w.pid) for w in workers)
        memory = [peak_memory_mb(w.pid) for w in workers]
        elapsed = finished.timestamp() - started
        log = requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/requests", timeout=30).json()
        entries = log["data"]
        unsafe = sum(1 for r in entries if r["method"] != "GET" and r["path"].startswith("/api/"))
        safe = sum(1 for r in entries if r["method"] == "GET" and r["path"].startswith("/api/"))
        refused = sum(1 for r in entries if r["status"] == 429)
        done_state = ShipmentState.LABELLED if args.mode == "labels" else ShipmentState.PUSHED
        done = OrderShipment.objects.filter(batch_id__in=batch_ids, state=done_state).count()
        failed = OrderShipment.objects.filter(batch_id__in=batch_ids, state=ShipmentState.FAILED).count()
        state = requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/state?items=0", timeout=30).json()
        result = {
            **limit_efficiency(entries),
            "mode": args.mode,
            "orders": args.orders,
            "done": done,
            "failed": failed,
            "seconds": round(elapsed, 1),
            "orders_per_minute": round(done / elapsed * 60),
            "unsafe_requests": unsafe,
            "get_requests": safe,
            "refused_429": refused,
            "duplicate_labels": state.get("duplicate_labels"),
            "worker_cpu_ms_per_order": round((cpu_after - cpu_before) / args.orders * 1000, 3),
            "worker_peak_memory_mb": memory,
            "workers": f"{args.workers} x concurrency {args.concurrency}",
            "pool": os.environ.get("CELERY_POOL", "settings default"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
        print(json.dumps(result, indent=2))
    finally:
        for process in [*workers, *processes]:
            stop(process)


if __name__ == "__main__":
    main()
