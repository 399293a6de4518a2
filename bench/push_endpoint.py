"""Benchmark: latency and SQL query count of the push endpoint for 10, 1,000 and 10,000 new orders.

Runs the endpoint in-process through Django's full request stack (middleware, auth, rate limit,
validation, classification under row locks, the batch, and the chord dispatch after commit) against
a real PostgreSQL database — by default ``wemasy_bench`` on localhost, created and migrated here —
and, when ``REDIS_URL`` is set, a real Redis broker (its queue is purged afterwards; no worker runs).
Before each request the previous push is undone (not timed), so every request pushes *new* orders.
Besides the wall-clock latency it reports the request's CPU time: this process's plus its PostgreSQL
backend's (both on this machine). On a machine shared with other work the latency follows the load; the
CPU time much less, which makes it the better number to compare two versions by.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wemasy_bench REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python -m bench.push_endpoint [--sizes 10,1000,10000] [--runs 20]

``--profile FILE`` instead profiles one request of the largest size with pyinstrument and writes its
report (text, or HTML when FILE ends in ``.html``): where the time goes, before cutting anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
# A fixed key (32 bytes, url-safe base64): the seeded integration's secret stays readable across runs.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1rZXktYmVuY2gtb25seS1rZXktMDA=")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wemasy_bench")
os.environ.setdefault("API_RATE_LIMIT_PER_MINUTE", "1000000")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")
if not os.environ.get("REDIS_URL"):
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("CELERY_RESULT_BACKEND", "cache+memory://")

PUSH_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/push"


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(total: int) -> tuple[str, list[int]]:
    from decimal import Decimal

    from django.core.management import call_command
    from django.utils import timezone

    from sendcloud_integration.models import SendcloudIntegration
    from webshop.models import ApiToken, Order, OrderLine, ShippingAddress, Shop

    call_command("migrate", verbosity=0)
    shop, _ = Shop.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    SendcloudIntegration.objects.update_or_create(
        shop=shop, defaults={"public_key": "bench", "secret_key": "bench", "integration_id": 1001}
    )
    have = Order.objects.filter(shop=shop).count()
    if have < total:
        now = timezone.now()
        orders = Order.objects.bulk_create(
            Order(
                shop=shop,
                order_number=f"BENCH-{n:06d}",
                status=Order.Status.PAID,
                customer_name="Bench Customer",
                created_at=now,
            )
            for n in range(have, total)
        )
        ShippingAddress.objects.bulk_create(
            ShippingAddress(
                order=o, street="Stationsstraat", house_number="1", postal_code="1012AB", city="Amsterdam", country="NL"
            )
            for o in orders
        )
        OrderLine.objects.bulk_create(
            OrderLine(order=o, name="Item", quantity=1, unit_price=Decimal("9.95"), weight_kg=Decimal("0.5"))
            for o in orders
        )
    raw = ApiToken.issue(shop=shop, name="bench").raw
    ids = list(Order.objects.filter(shop=shop).order_by("pk").values_list("pk", flat=True)[:total])
    return raw, ids


def reset() -> None:
    from sendcloud_integration.models import OrderShipment, PushBatch

    OrderShipment.objects.filter(shop__slug="bench").delete()
    PushBatch.objects.filter(shop__slug="bench").delete()


def purge_broker() -> None:
    if os.environ.get("REDIS_URL"):
        from wemasy.celery import app

        app.control.purge()


def database_backend() -> int:
    """The pid of this connection's PostgreSQL backend (its CPU time is the request's too)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (the PostgreSQL backend runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(size: int, runs: int, raw: str, ids: list[int]) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = json.dumps({"create_label": False, "order_ids": ids[:size]})
    latencies: list[float] = []
    cpu: list[float] = []
    queries: set[int] = set()
    for run in range(runs + 1):
        reset()
        backend = database_backend()
        with CaptureQueriesContext(connection) as ctx:
            cpu_before = time.process_time() + cpu_seconds(backend)
            started = time.perf_counter()
            response = client.post(PUSH_URL, body, content_type="application/json")
            elapsed = time.perf_counter() - started
            cpu_used = time.process_time() + cpu_seconds(backend) - cpu_before
        assert response.status_code == 200, response.content[:500]
        assert response.json()["summary"]["queued_orders"] == size
        if run == 0:
            continue  # warm-up: connections, caches, the token's last-use write
        latencies.append(elapsed * 1000)
        cpu.append(cpu_used * 1000)
        queries.add(len(ctx.captured_queries))
    purge_broker()
    return {
        "ids": size,
        "runs": runs,
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
        "cpu_ms": round(statistics.median(cpu), 1),
        "queries": sorted(queries),
    }


def profile(size: int, raw: str, ids: list[int], out: str) -> None:
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = json.dumps({"create_label": False, "order_ids": ids[:size]})
    for _ in range(3):  # warm-up
        reset()
        client.post(PUSH_URL, body, content_type="application/json")
    reset()
    profiler = Profiler(interval=0.0005)
    with profiler:
        response = client.post(PUSH_URL, body, content_type="application/json")
    assert response.status_code == 200, response.content[:500]
    reset()
    purge_broker()
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(profiler.output_html() if out.endswith(".html") else profiler.output_text(show_all=False))
    print(f"profile of one {size:,}-id push written to {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", metavar="FILE", help="profile one request of the largest size instead")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    ensure_database()
    import django

    django.setup()
    from django.conf import settings

    from wemasy.boot import freeze_booted_objects

    settings.DEBUG = False
    raw, ids = seed(max(sizes))
    if args.profile:
        profile(max(sizes), raw, ids, args.profile)
        return
    freeze_booted_objects()  # as a gunicorn worker does once it has booted (wemasy/gunicorn_conf.py)
    results = [measure(size, args.runs, raw, ids) for size in sizes]
    reset()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({"machine": machine, "broker": settings.CELERY_BROKER_URL.split("://")[0], "results": results}))
    print(
        "\n| ids | runs | median | p95 | max | CPU (median) | SQL queries |\n|---:|---:|---:|---:|---:|---:|---|",
        file=sys.stderr,
    )
    for r in results:
        print(
            f"| {r['ids']:,} | {r['runs']} | {r['median_ms']} ms | {r['p95_ms']} ms | {r['max_ms']} ms | "
            f"{r['cpu_ms']} ms | {', '.join(map(str, r['queries']))} |",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
