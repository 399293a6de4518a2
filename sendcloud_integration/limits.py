"""The limits the service lives within, each defined once: Sendcloud's batch sizes and the database's ids.

Pure Python (no Django), so the HTTP adapter, the pipeline, the read models and the API all import the
same numbers. The Sendcloud limits come from the official v3 OpenAPI specs (named per constant); a
test per limit checks that the code refuses one more than allowed.
"""

from __future__ import annotations

from typing import Final

#: ``POST /v3/orders`` takes 1 to 100 orders per request (spec: v3/orders). It is also the chunk size cap.
MAX_ORDERS_PER_UPSERT: Final = 100
#: ``POST /v3/orders/create-labels-async`` takes 1 to 20 orders per request (spec: v3/ship-an-order).
MAX_ORDERS_PER_LABEL_REQUEST: Final = 20
#: ``GET /v3/shipments``: ``page_size`` is 1..100 (spec: v3/shipments).
MAX_SHIPMENTS_PAGE_SIZE: Final = 100
#: ``GET /v3/shipments``: the ``shipment_uuids`` and ``ids`` filters take at most 100 ids each (spec: v3/shipments).
MAX_IDS_PER_SHIPMENT_FILTER: Final = 100
#: ``GET /v3/parcel-documents/{type}``: ``parcels`` holds 1 to 20 parcel ids (spec: v3/parcel-documents).
MAX_PARCELS_PER_DOCUMENT_REQUEST: Final = 20
#: ``create-labels-async``: an order's ``parcels`` (multicollo) has 1 to 50 items (spec: v3/ship-an-order).
MAX_PARCELS_PER_SHIPMENT: Final = 50
#: The ``paper_size`` enum of the parcel-documents endpoints. A6 is a label's own size: one label a page.
PAPER_SIZES: Final = frozenset({"A4", "A5", "A6"})
#: The largest id PostgreSQL's ``bigint`` (and so a ``PositiveBigIntegerField``) holds on every backend.
MAX_BIGINT: Final = 2**63 - 1
#: The label formats of the parcel-documents endpoints, by the media type sent as ``Accept`` (v3/parcel-documents).
LABEL_MEDIA_TYPES: Final = {"pdf": "application/pdf", "zpl": "application/zpl", "png": "image/png"}
#: The ``dpi`` each format takes (spec: v3/parcel-documents, the dpi table). ZPL's resolution is the carrier's.
LABEL_DPIS: Final = {"pdf": frozenset({72}), "png": frozenset({150, 300}), "zpl": frozenset({203})}
#: The resolution a format has when none is asked for: the spec's defaults (ZPL: what most carriers print).
DEFAULT_LABEL_DPI: Final = {"pdf": 72, "png": 300, "zpl": 203}
