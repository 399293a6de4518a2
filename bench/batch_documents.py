"""Benchmark: build a 10,000-label batch document and download it; peak memory of each process, and the time.

Seeds a batch of N labelled orders (one PDF label each, written to a temporary media root; each label is
a sandbox label page plus an incompressible image of ``--label-kb`` KB, the size of a real carrier
label) in PostgreSQL, then runs each step in a process of its own and reads that process's memory:

- **worker**: ``printing.builder.build_document`` — what the Celery task runs — for the PDF, ZPL-free
  (the labels are stored PDFs, so nothing is fetched);
- **web**: the batch labels endpoint through Django's full request stack (auth, rate limit, the view),
  the response consumed block by block as a WSGI server sends it, for batches of two sizes, to show
  that download memory does not grow with the document;
- **before**: the merge the endpoint used to do in the request (pypdf's ``PdfWriter`` appending every
  label, then ``write``), for comparison, on ``--before-labels`` labels.

Each process reports its resident size when idle (Django set up, nothing done) and its peak
(``ru_maxrss``) after the step; the growth is the difference.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wemasy_bench_docs REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python -m bench.batch_documents [--labels 10000] [--small 1000] [--label-kb 30] \\
        [--before-labels 10000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wemasy.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wemasy_bench_docs")
os.environ.setdefault("API_RATE_LIMIT_PER_MINUTE", "1000000")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")
if not os.environ.get("REDIS_URL"):
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("CELERY_RESULT_BACKEND", "cache+memory://")

BATCHES_URL = "/api/services/webshop/v1/orders/sendcloud/shipments/batches/"


def rss_mb() -> float:
    """The current resident size of this process (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    """Forget this process's peak resident size so far (Linux: ``5`` to ``/proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's peak resident size since :func:`reset_peak` (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def label_pdf(number: int, label_kb: int) -> bytes:
    """A sandbox label page with an incompressible ``label_kb`` KB grey image, as a carrier's label has."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    from sendcloud_sandbox.pdf import build_label_pdf

    page_pdf = build_label_pdf(
        order_number=f"B-{number:06d}",
        tracking_number=f"3SBENCH{number:08d}",
        carrier="PostNL",
        parcel_id=number,
        recipient=("Bench", "Street 1", "1000AA Amsterdam"),
    )
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(page_pdf)))
    if label_kb:
        side = int((label_kb * 1024) ** 0.5)
        image = DecodedStreamObject()
        image.set_data(os.urandom(side * side))
        image.update(
            {
                NameObject("/Type"): NameObject("/XObject"),
                NameObject("/Subtype"): NameObject("/Image"),
                NameObject("/Width"): NumberObject(side),
                NameObject("/Height"): NumberObject(side),
                NameObject("/ColorSpace"): NameObject("/DeviceGray"),
                NameObject("/BitsPerComponent"): NumberObject(8),
            }
        )
        page = writer.pages[0]
        resources = page["/Resources"].get_object()
        resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Im1"): writer._add_object(image)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def seed(labels: int, label_kb: int, media: Path) -> dict[str, Any]:
    """A finished batch of ``labels`` labelled orders, each with its parcel row and a stored label file."""
    import uuid

    from django.core.management import call_command
    from django.utils import timezone

    from sendcloud_integration.models import (
        BatchStatus,
        OrderShipment,
        PushBatch,
        SendcloudIntegration,
        ShipmentParcel,
        ShipmentState,
        StartedBy,
    )
    from webshop.models import ApiToken, Order, Shop

    call_command("migrate", verbosity=0)
    slug = f"bench-docs-{uuid.uuid4().hex[:6]}"
    shop = Shop.objects.create(slug=slug, name="Bench documents")
    SendcloudIntegration.objects.create(shop=shop, public_key="bench", secret_key="bench", integration_id=1001)
    token = ApiToken.issue(shop=shop, name="bench", scopes=["shipments:push"]).raw
    batch = PushBatch.objects.create(
        shop=shop,
        create_label=True,
        status=BatchStatus.COMPLETED,
        started_by_kind=StartedBy.COMMAND,
        queued_orders=labels,
        finished_at=timezone.now(),
    )
    sample = [label_pdf(n, label_kb) for n in range(50)]  # 50 distinct labels, reused: seeding stays quick
    folder = media / "labels" / slug
    folder.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    orders = Order.objects.bulk_create(
        Order(shop=shop, order_number=f"B-{n:06d}", status="paid", customer_name="Bench") for n in range(labels)
    )
    shipments = []
    for n, order in enumerate(orders):
        name = f"labels/{slug}/B-{n:06d}.pdf"
        (media / name).write_bytes(sample[n % len(sample)])
        shipments.append(
            OrderShipment(
                order=order,
                shop=shop,
                state=ShipmentState.LABELLED,
                batch=batch,
                create_label=True,
                label_file=name,
                carrier="postnl",
                sendcloud_parcel_id=str(n + 1),
                labelled_at=now,
            )
        )
    OrderShipment.objects.bulk_create(shipments, batch_size=2000)
    ShipmentParcel.objects.bulk_create(
        (
            ShipmentParcel(shipment=s, position=1, sendcloud_parcel_id=s.sendcloud_parcel_id, label_file=s.label_file)
            for s in shipments
        ),
        batch_size=2000,
    )
    return {"batch": str(batch.pk), "token": token, "label_bytes": sum(len(s) for s in sample) // len(sample)}


def child(step: str, args: list[str]) -> dict[str, Any]:
    """Run ``step`` in a fresh process (its own memory) and read the JSON it prints."""
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch_documents", "--step", step, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the steps, each in its own process ---------------------------------------------------------------------


def step_build(batch_id: str) -> dict[str, Any]:
    """The worker's side: what ``tasks.build_batch_document`` runs."""
    from sendcloud_integration.models import BatchDocument, PushBatch
    from sendcloud_integration.printing import builder, documents
    from sendcloud_integration.printing.profiles import resolve_spec

    batch = PushBatch.objects.select_related("shop").get(pk=batch_id)
    spec = resolve_spec(batch.shop)
    BatchDocument.objects.filter(batch=batch).delete()
    documents.request_document(batch=batch, spec=spec)  # marks it wanted (the dispatch goes to the broker)
    document = BatchDocument.objects.get(batch=batch, variant=spec.variant, sort=spec.sort)
    reset_peak()
    idle = rss_mb()
    started = time.perf_counter()
    outcome = builder.build_document(document_id=document.pk)
    seconds = time.perf_counter() - started
    document.refresh_from_db()
    return {
        "status": outcome.status,
        "labels": outcome.labels,
        "seconds": round(seconds, 2),
        "idle_mb": round(idle, 1),
        "peak_mb": round(peak_mb(), 1),
        "size_mb": round(document.size / 1e6, 1),
    }


def step_download(batch_id: str, token: str) -> dict[str, Any]:
    """The web side: the endpoint through Django's request stack, consumed block by block."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get(f"{BATCHES_URL}{batch_id}")  # warm up the stack (imports, the token's last-use write)
    reset_peak()
    idle = rss_mb()
    started = time.perf_counter()
    response = client.get(f"{BATCHES_URL}{batch_id}/labels")
    total = 0
    for block in response.streaming_content:
        total += len(block)
    seconds = time.perf_counter() - started
    return {
        "status": response.status_code,
        "bytes": total,
        "seconds": round(seconds, 2),
        "idle_mb": round(idle, 1),
        "peak_mb": round(peak_mb(), 1),
    }


def step_before(batch_id: str, count: int) -> dict[str, Any]:
    """The old way, for comparison: every label appended to one ``PdfWriter`` in memory, then written."""
    from pypdf import PdfWriter

    from sendcloud_integration.models import ShipmentParcel

    names = list(
        ShipmentParcel.objects.filter(shipment__batch_id=batch_id)
        .order_by("shipment__order__order_number")
        .values_list("label_file", flat=True)[:count]
    )
    from django.core.files.storage import default_storage

    reset_peak()
    idle = rss_mb()
    started = time.perf_counter()
    writer = PdfWriter()
    for name in names:
        with default_storage.open(name, "rb") as handle:
            writer.append(handle)
    with tempfile.TemporaryFile() as out:
        writer.write(out)
        size = out.tell()
    seconds = time.perf_counter() - started
    return {
        "labels": len(names),
        "seconds": round(seconds, 2),
        "idle_mb": round(idle, 1),
        "peak_mb": round(peak_mb(), 1),
        "size_mb": round(size / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="the smaller batch, for the download's flatness")
    parser.add_argument("--label-kb", type=int, default=30)
    parser.add_argument("--before-labels", type=int, default=10_000)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--batch", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--media", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.step:
        os.environ["MEDIA_ROOT"] = options.media
        import django

        django.setup()
        if options.step == "build":
            result = step_build(options.batch)
        elif options.step == "download":
            result = step_download(options.batch, options.token)
        else:
            result = step_before(options.batch, options.before_labels)
        print(json.dumps(result))
        return

    ensure_database()
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as media:
        os.environ["MEDIA_ROOT"] = media
        import django

        django.setup()
        report: dict[str, Any] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "label_kb": options.label_kb,
        }
        for size in (options.small, options.labels):
            started = time.perf_counter()
            seeded = seed(size, options.label_kb, Path(media))
            common = ["--batch", seeded["batch"], "--media", media]
            report[f"seed_{size}_seconds"] = round(time.perf_counter() - started, 1)
            report["label_bytes"] = seeded["label_bytes"]
            report[f"worker_build_{size}"] = child("build", common)
            report[f"web_download_{size}"] = child("download", [*common, "--token", seeded["token"]])
            if size == options.labels and options.before_labels:
                report[f"before_in_memory_merge_{options.before_labels}"] = child(
                    "before", [*common, "--before-labels", str(options.before_labels)]
                )
            print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
