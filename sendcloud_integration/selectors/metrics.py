"""Reads for ``/metrics`` at scrape time: shipments per state that still has work, and queue lengths.

Both must stay cheap at any history size, since Prometheus asks every 15 s or so: the shipment count
reads only the in-flight states and FAILED (an index range scan on ``state``, over the rows that still
need someone), never the ever-growing PUSHED and LABELLED history, whose totals the counters carry;
the queue lengths are one ``SMEMBERS`` and one ``LLEN`` per queue, bounded by ``REDIS_REQUEST_TIMEOUT``.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db.models import Count

from sendcloud_integration.models import IN_FLIGHT_STATES, OrderShipment, ShipmentState

logger = logging.getLogger(__name__)

#: The states the shipment gauge reports: where work waits or went wrong.
OPEN_STATES = (*sorted(IN_FLIGHT_STATES), ShipmentState.FAILED)

#: Kombu's Redis transport: the set of queues bound to an exchange, and its field separator.
_BINDINGS_KEY = "_kombu.binding.{exchange}"
_SEPARATOR = "\x06\x16"


def shipment_state_counts() -> dict[str, int]:
    """Shipments per open state (every open state present, 0 when none)."""
    counts = dict.fromkeys((str(state) for state in OPEN_STATES), 0)
    rows = OrderShipment.objects.filter(state__in=OPEN_STATES).values_list("state").annotate(n=Count("pk"))
    for state, n in rows.order_by():
        counts[state] = n
    return counts


def queue_lengths() -> dict[str, int] | None:
    """Messages waiting in each Celery queue of the Redis broker, or None when the broker cannot say.

    The queues are the default one and every queue bound to the default exchange (so queues created by
    routing appear without configuration). Messages with a countdown wait elsewhere (kombu's unacked
    set) and are not counted: this is the backlog a free worker would take next.
    """
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    timeout = settings.REDIS_REQUEST_TIMEOUT
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            queues = {settings.CELERY_TASK_DEFAULT_QUEUE}
            for member in client.smembers(_BINDINGS_KEY.format(exchange=settings.CELERY_TASK_DEFAULT_QUEUE)):
                name = member.decode() if isinstance(member, bytes) else str(member)
                queues.add(name.rsplit(_SEPARATOR, 1)[-1])
            ordered = sorted(queues)
            with client.pipeline(transaction=False) as pipe:
                for queue in ordered:
                    pipe.llen(queue)
                lengths = pipe.execute()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        logger.warning("metrics: the broker's queue lengths are unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    return dict(zip(ordered, (int(n) for n in lengths), strict=True))
