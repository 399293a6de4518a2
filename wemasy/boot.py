"""What a long-running process does once it has booted: keep the objects of its boot out of the collector's way.

A gunicorn worker or a Celery worker imports Django, DRF, Celery and the project at boot: hundreds of
thousands of objects that live as long as the process. Python's garbage collector passes over all of them
whenever it collects its oldest generation, which the many short-lived objects of a request or a chunk
(querysets, model instances, payloads) make it do every few seconds. ``gc.freeze`` moves them to a
generation the collector never scans. Measured (docs/benchmarks.md): those passes were about a fifth of
the worker's CPU per pushed order, and a 10,000-id push spent tens of milliseconds in them.
"""

from __future__ import annotations

import gc


def freeze_booted_objects() -> None:
    """Collect what the boot left as garbage, then freeze everything that is left."""
    gc.collect()
    gc.freeze()
