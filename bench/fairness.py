"""Benchmark: how long a small push waits behind another account's big one, at Sendcloud's real limits.

Starts the sandbox (Sendcloud's documented limits, two accounts), gunicorn and one Celery worker as
separate processes. Shop B (account B) pushes 50 orders on an idle system; then shop A (account A)
pushes 20,000, and a few seconds later B pushes another 50. Reports, for each of B's pushes, the
seconds from the push's answer until its last order is in Sendcloud, and the 429s. A is not waited
for.

    .venv/bin/python -m bench.fairness
    .venv/bin/python -m bench.fairness --root /path/to/other/checkout --concurrency 4   # another version

``--root`` runs the web and worker processes from another checkout (its code, this checkout's database
schema, which only adds to the older one), so two versions are measured side by side on one machine.
Environment as for ``bench.throughput`` (``DATABASE_URL``, ``REDIS_URL``; both are emptied first, so
give it a Redis of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import requests

from bench.processes import BIN, ROOT, ensure_database, free_port, start, stop, wait_http, web_command
from bench.throughput import PUSH_URL

ACCOUNTS = [
    {"public_key": "shop-a-public", "secret_key": "shop-a-secret", "integration_ids": [1001]},
    {"public_key": "shop-b-public", "secret_key": "shop-b-secret", "integration_ids": [2002]},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=20_000, help="orders shop A pushes")
    parser.add_argument("--small", type=int, default=50, help="orders shop B pushes, each time")
    parser.add_argument("--head-start", type=float, default=5.0, help="seconds between A's push and B's")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose web and worker run")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from sendcloud_integration.models import OrderShipment, SendcloudIntegration, ShipmentState
    from webshop.demo import make_orders
    from webshop.models import ApiToken, Shop

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    work = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    sandbox_port, web_port = free_port(), free_port()
    (work / "sandbox.json").write_text(json.dumps({"accounts": ACCOUNTS, "label_delay_seconds": 0.5}))
    env = {
        **os.environ,
        "SENDCLOUD_API_BASE_URL": f"http://127.0.0.1:{sandbox_port}/api",
        "SENDCLOUD_BUDGET_ENABLED": "1",
        "API_RATE_LIMIT_PER_MINUTE": "1000",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MEDIA_ROOT": str(work / "media"),
        "VAR_DIR": str(work / "var"),
        "LOG_LEVEL": "WARNING",
    }
    root = args.root.resolve()
    if root != ROOT:
        env["PYTHONPATH"] = str(root)  # its code, not this checkout's (installed in the virtualenv as editable)
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
        start(
            web_command(web_port, 2),
            env,
            work / "web.log",
            cwd=root,
        ),
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
                "fair@%h",
            ],
            env,
            work / "worker.log",
            cwd=root,
        ),
    ]
    try:
        wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/health")
        wait_http(f"http://127.0.0.1:{web_port}/healthz")
        time.sleep(3)

        tokens = {}
        orders = {}
        for slug, account, count in (("big", ACCOUNTS[0], args.big), ("small", ACCOUNTS[1], 2 * args.small)):
            shop = Shop.objects.create(slug=slug, name=slug)
            SendcloudIntegration.objects.create(
                shop=shop,
                public_key=account["public_key"],
                secret_key=account["secret_key"],
                integration_id=account["integration_ids"][0],
            )
            tokens[slug] = ApiToken.issue(shop=shop, name="bench").raw
            orders[slug] = [order.pk for order in make_orders(shop, count, prefix=slug.upper())]

        def push(slug: str, ids: list[int]) -> str:
            response = requests.post(
                f"http://127.0.0.1:{web_port}{PUSH_URL}",
                json={"create_label": False, "order_ids": ids},
                headers={"Authorization": f"Bearer {tokens[slug]}"},
                timeout=120,
            )
            response.raise_for_status()
            return str(response.json()["batch"]["id"])

        def seconds_to_sendcloud(ids: list[int], timeout: float = 600) -> float:
            batch_id = push("small", ids)
            answered = time.monotonic()
            while OrderShipment.objects.filter(batch_id=batch_id, state=ShipmentState.PUSHED).count() < len(ids):
                if time.monotonic() - answered > timeout:
                    raise SystemExit("timed out waiting for the small push")
                time.sleep(0.05)
            return round(time.monotonic() - answered, 2)

        idle = seconds_to_sendcloud(orders["small"][: args.small])
        for offset in range(0, args.big, 10_000):
            push("big", orders["big"][offset : offset + 10_000])
        time.sleep(args.head_start)
        behind = seconds_to_sendcloud(orders["small"][args.small :])
        log = requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/requests", timeout=30).json()["data"]
        print(
            json.dumps(
                {
                    "root": str(root),
                    "small_push_idle_s": idle,
                    "small_push_behind_big_s": behind,
                    "big_writes_so_far": sum(
                        1 for r in log if r["account"] == ACCOUNTS[0]["public_key"] and r["status"] == 201
                    ),
                    "refused_429": sum(1 for r in log if r["status"] == 429),
                    "worker": f"concurrency {args.concurrency}",
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                },
                indent=2,
            )
        )
    finally:
        for process in reversed(processes):
            stop(process)


if __name__ == "__main__":
    main()
