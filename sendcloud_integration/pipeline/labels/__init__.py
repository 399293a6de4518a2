"""The label phase: ask Sendcloud for labels, wait for them, store them — never twice.

``phase`` is the entry point (a chunk's label phase, and the sweep's reconciliation of orphaned rows);
the steps of a run are ``resolve``, ``request``, ``poll`` and ``download``, sharing a ``run.LabelRun``;
``rows`` holds the optimistic guard, ``documents`` the label files.
"""

from sendcloud_integration.pipeline.labels.documents import count_pdf_pages, label_file_name, split_label_pages
from sendcloud_integration.pipeline.labels.phase import fail_label_rows, label_phase, reconcile_orphans

__all__ = [
    "count_pdf_pages",
    "fail_label_rows",
    "label_file_name",
    "label_phase",
    "reconcile_orphans",
    "split_label_pages",
]
