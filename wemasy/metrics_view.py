"""``GET /metrics``: the service's metrics in Prometheus' text format, for a scraper holding the token.

Protected by ``METRICS_TOKEN`` (``Authorization: Bearer <token>``, compared in constant time). Without a
token it answers only in debug (``make run``); in production an unset token refuses every request with a
403 that says what to set, so that metrics are never public by accident. Not under ``/api/``: no rate
limit, no API token.

Besides the metric objects of ``wemasy/metrics.py`` (added up over every process in multi-process mode),
two collectors read at scrape time: shipments per open state (the database) and the length of each
Celery queue (the broker). A failing read leaves its metric out and sets ``wemasy_scrape_errors`` for
it, rather than failing the whole scrape.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sendcloud_integration.selectors import metrics as selectors
from wemasy import metrics

logger = logging.getLogger(__name__)

REFUSED_UNSET = "Metrics are disabled: set METRICS_TOKEN (and send it as a Bearer token) to read them.\n"
ASK_FOR_THE_BEARER = "Send the metrics token as Authorization: Bearer <METRICS_TOKEN>.\n"


class ScrapeTimeCollector(Collector):
    """Gauges read when Prometheus asks: open shipments per state and the Celery queues' lengths."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        errors = GaugeMetricFamily(
            "wemasy_scrape_errors", "1 when a scrape-time read failed (its metric is left out).", labels=["source"]
        )
        try:
            counts = selectors.shipment_state_counts()
        except Exception:  # a database outage must not hide the other metrics
            logger.exception("metrics: reading shipment states failed")
            errors.add_metric(["database"], 1)
        else:
            shipments = GaugeMetricFamily(
                "wemasy_shipments", "Shipments in each state where work waits or went wrong.", labels=["state"]
            )
            for state, n in counts.items():
                shipments.add_metric([state], n)
            yield shipments
            errors.add_metric(["database"], 0)
        lengths = selectors.queue_lengths()
        if lengths is None:
            errors.add_metric(["broker"], 1)
        else:
            queues = GaugeMetricFamily(
                "wemasy_celery_queue_length", "Messages waiting in each Celery queue of the broker.", labels=["queue"]
            )
            for queue, n in lengths.items():
                queues.add_metric([queue], n)
            yield queues
            errors.add_metric(["broker"], 0)
        yield errors


def registry() -> CollectorRegistry:
    """Every process's values in multi-process mode, else this process's; plus the scrape-time reads."""
    if metrics.multiproc_dir() is not None:
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
    else:
        combined = CollectorRegistry()
        combined.register(_ProcessMetrics())
    combined.register(ScrapeTimeCollector())
    return combined


class _ProcessMetrics(Collector):
    """This process's default registry, read through (it cannot be registered in a second registry)."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REGISTRY.collect()


def authorized(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read the metrics, else the refusal."""
    token: str = settings.METRICS_TOKEN
    if not token:
        if settings.DEBUG:
            return None
        return HttpResponse(REFUSED_UNSET, status=403, content_type="text/plain; charset=utf-8")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = HttpResponse(ASK_FOR_THE_BEARER, status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = authorized(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
