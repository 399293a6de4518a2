"""Benchmark: the webhook receiver under a steady rate, and a burst larger than the workers can take.

Starts gunicorn (the production web process) against PostgreSQL, with a Redis broker queue of its own,
and signs ``parcel_status_changed`` deliveries like Sendcloud for a shop with labelled parcels:

1. **rate**: deliveries at a fixed rate (open loop: a late answer does not slow the sender) for a
   while, no worker running; every answer's status and latency are recorded. Target: no 5xx and no
   connection error at 200 deliveries a second.
2. **burst**: as many deliveries as fast as the clients can send them, no worker running; every
   accepted delivery must be a stored row. Then a Celery worker starts and must apply every one of
   them: each parcel ends at its newest status, each distinct event once in its history.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wemasy_bench_webhooks REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python -m bench.webhooks [--rate 200] [--seconds 20] [--burst 5000] [--web-workers 2]

The database is created if missing and emptied first (it must be a benchmark database of its own);
Redis is not flushed: the broker uses a queue of this run's own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

from bench.processes import BIN, ensure_database, free_port, start, stop, wait_http, web_command

SECRET = "bench-secret"

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wemasy_bench_webhooks")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")
# The database is emptied first, so a key of this run's own encrypts the benchmark integration's secret.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
QUEUE = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
os.environ["CELERY_QUEUE"] = QUEUE
os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = os.environ["REDIS_URL"]


def seed(parcels: int) -> tuple[str, list[str]]:
    """A shop whose integration signs with SECRET, and one labelled order per parcel."""
    from django.utils import timezone

    from sendcloud_integration.models import OrderShipment, SendcloudIntegration, ShipmentParcel, ShipmentState
    from webshop.demo import make_orders
    from webshop.models import Shop

    shop = Shop.objects.create(slug="bench", name="Bench")
    integration = SendcloudIntegration.objects.create(
        shop=shop, public_key="bench-public", secret_key=SECRET, integration_id=1001, webhook_active=True
    )
    now = timezone.now()
    orders = make_orders(shop, parcels, prefix="HOOK")
    shipments = OrderShipment.objects.bulk_create(
        OrderShipment(
            order=order,
            shop=shop,
            state=ShipmentState.LABELLED,
            sendcloud_shipment_id=str(20_000_000 + n),
            sendcloud_parcel_id=str(30_000_000 + n),
            label_requested_at=now,
            labelled_at=now,
        )
        for n, order in enumerate(orders)
    )
    ShipmentParcel.objects.bulk_create(
        ShipmentParcel(shipment=s, position=1, sendcloud_parcel_id=s.sendcloud_parcel_id) for s in shipments
    )
    return integration.webhook_token, [s.sendcloud_parcel_id for s in shipments]


def body(parcel_id: str, status_id: int, timestamp_ms: int) -> bytes:
    payload = {
        "action": "parcel_status_changed",
        "timestamp": timestamp_ms,
        "parcel": {"id": int(parcel_id), "status": {"id": status_id, "message": f"status {status_id}"}},
    }
    return json.dumps(payload).encode()


def post_all(url: str, bodies: list[bytes], *, rate: float | None, clients: int) -> dict[str, Any]:
    """Send every body (at ``rate`` a second, or as fast as ``clients`` connections can); count outcomes."""
    from sendcloud_integration.tracking.signatures import sign

    local = threading.local()
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def send(index: int, payload: bytes) -> None:
        if rate:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        begin = time.perf_counter()
        try:
            response = session.post(
                url, data=payload, headers={"Sendcloud-Signature": sign(payload, SECRET)}, timeout=30
            )
            key = str(response.status_code)
        except requests.RequestException as exc:
            key = type(exc).__name__
        elapsed = (time.perf_counter() - begin) * 1000
        with lock:
            statuses[key] = statuses.get(key, 0) + 1
            latencies.append(elapsed)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(len(bodies)), bodies))
    duration = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "deliveries": len(bodies),
        "seconds": round(duration, 2),
        "per_second": round(len(bodies) / duration, 1),
        "statuses": statuses,
        "server_errors": sum(n for k, n in statuses.items() if not k.isdigit() or k.startswith("5")),
        "median_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def events(parcel_ids: list[str], count: int, *, duplicates: float, seed: int) -> tuple[list[bytes], dict[str, int]]:
    """``count`` deliveries over the parcels, each parcel's statuses shuffled, some sent twice; and the
    status each parcel must end at (its newest)."""
    rng = random.Random(seed)
    steps = (3, 5, 12, 11)
    bodies: list[bytes] = []
    final: dict[str, int] = {}
    base = 1_700_000_000_000
    per_parcel = len(steps)
    distinct = max(1, int(count / (1 + duplicates)))
    for n in range(distinct):
        parcel = parcel_ids[(n // per_parcel) % len(parcel_ids)]
        step = n % per_parcel
        bodies.append(body(parcel, steps[step], base + (n // per_parcel) * 10_000 + step * 1000))
        final[parcel] = steps[step]  # timestamps grow with n: the last one written is the newest
    for extra in rng.sample(bodies, k=min(len(bodies), count - distinct)):
        bodies.append(extra)
    rng.shuffle(bodies)
    return bodies, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second in the rate phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the rate phase")
    parser.add_argument("--burst", type=int, default=5000, help="deliveries in the burst")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections in the burst")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=2, help="the Celery worker's processes")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from sendcloud_integration.models import ParcelEvent, ShipmentParcel, WebhookDelivery

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    parcels = max(200, args.burst // 4)
    token, parcel_ids = seed(parcels)

    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    port = free_port()
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING"}
    web = start(
        web_command(port, args.web_workers),
        env,
        work / "web.log",
    )
    worker = None
    results: dict[str, Any] = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/webhooks/sendcloud/{token}"
        post_all(url, [body(parcel_ids[0], 1000, 1)] * 50, rate=None, clients=4)  # warm-up

        rate_bodies, _ = events(parcel_ids, int(args.rate * args.seconds), duplicates=0.3, seed=1)
        results["rate"] = post_all(url, rate_bodies, rate=args.rate, clients=args.clients)

        call_command("flush", interactive=False, verbosity=0)
        token, parcel_ids = seed(parcels)
        url = f"http://127.0.0.1:{port}/webhooks/sendcloud/{token}"
        burst_bodies, final = events(parcel_ids, args.burst, duplicates=0.3, seed=2)
        results["burst"] = post_all(url, burst_bodies, rate=None, clients=args.clients)
        accepted = results["burst"]["statuses"].get("200", 0)
        stored = WebhookDelivery.objects.count()
        results["burst"]["stored_rows"] = stored

        worker = start(
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
            ],
            env,
            work / "worker.log",
        )
        applied_from = time.perf_counter()
        deadline = time.monotonic() + 600
        while WebhookDelivery.objects.filter(processed_at__isnull=True).exists():
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not apply every delivery within 600 s")
            time.sleep(0.5)
        applied_in = time.perf_counter() - applied_from
        distinct = len(set(burst_bodies))
        at_final = sum(
            1
            for parcel_id, status_id in ShipmentParcel.objects.values_list("sendcloud_parcel_id", "status_id")
            if parcel_id in final and final[parcel_id] == status_id
        )
        results["burst"].update(
            {
                "accepted": accepted,
                "lost": accepted - stored,
                "applied_seconds": round(applied_in, 1),
                "applied_per_second": round(stored / applied_in, 1),
                "distinct_events": distinct,
                "history_rows": ParcelEvent.objects.count(),
                "parcels_at_final_status": f"{at_final}/{len(final)}",
            }
        )
    finally:
        if worker is not None:
            stop(worker)
        stop(web)
        import redis

        redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).delete(QUEUE)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({"machine": machine, "web_workers": args.web_workers, **results}, indent=1))


if __name__ == "__main__":
    main()
