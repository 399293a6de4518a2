"""Reads for the batch documents: which labels go in, in which order, and a fingerprint of them.

A batch's labels are those of its LABELLED shipments. Each shipment contributes one label per parcel
(``ShipmentParcel``, in position order); a shipment labelled before parcels were stored has its one
label file instead. The order of shipments is the document's ``sort``: order number (the default), carrier
then order number, or the order's first SKU (its first line by position: the pick order) then order number.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import F, OuterRef, QuerySet, Subquery

from sendcloud_integration.models import (
    OrderShipment,
    ParcelLabelFile,
    PrintSort,
    PushBatch,
    ShipmentParcel,
    ShipmentState,
)
from webshop.models import OrderLine


@dataclass(frozen=True)
class ParcelLabel:
    """One parcel's label: its row (None for a shipment stored before parcels were), id, tracking, PDF file."""

    parcel_pk: int | None
    parcel_id: str
    tracking_number: str
    pdf_name: str


@dataclass
class OrderLabels:
    """One order's labels in a batch document, and its customs declaration ("" when it has none)."""

    shipment_id: int
    order_id: int
    order_number: str
    carrier: str
    first_sku: str
    customs_name: str
    parcels: list[ParcelLabel] = field(default_factory=list)


def _labelled(batch: PushBatch) -> QuerySet[OrderShipment]:
    return OrderShipment.objects.filter(batch=batch, state=ShipmentState.LABELLED).exclude(label_file="")


def has_labels(*, batch: PushBatch) -> bool:
    return _labelled(batch).exists()


def batch_document_labels(*, batch: PushBatch, sort: str) -> list[OrderLabels]:
    """The batch's labelled orders in ``sort`` order, each with its parcels' labels (two queries)."""
    first_sku = Subquery(
        OrderLine.objects.filter(order_id=OuterRef("order_id")).order_by("position", "id").values("sku")[:1]
    )
    rows = _labelled(batch).annotate(first_sku=first_sku, order_number=F("order__order_number"))
    if sort == PrintSort.CARRIER:
        rows = rows.order_by("carrier", "order__order_number", "order_id")
    elif sort == PrintSort.FIRST_SKU:
        rows = rows.order_by(F("first_sku").asc(nulls_last=True), "order__order_number", "order_id")
    else:
        rows = rows.order_by("order__order_number", "order_id")
    orders: list[OrderLabels] = []
    own_labels: dict[int, ParcelLabel] = {}  # a shipment's own label, for one stored before parcels were
    for pk, order_id, number, carrier, sku, customs, label, parcel_id, tracking in rows.values_list(
        "pk",
        "order_id",
        "order_number",
        "carrier",
        "first_sku",
        "customs_declaration",
        "label_file",
        "sendcloud_parcel_id",
        "tracking_number",
    ).iterator(chunk_size=2000):
        orders.append(OrderLabels(pk, order_id, number, carrier, sku or "", customs or ""))
        own_labels[pk] = ParcelLabel(None, parcel_id, tracking, label)
    parcels: dict[int, list[ParcelLabel]] = defaultdict(list)
    for pk, shipment_id, parcel_id, tracking, name in (
        ShipmentParcel.objects.filter(shipment__in=_labelled(batch))
        .order_by("shipment_id", "position")
        .values_list("pk", "shipment_id", "sendcloud_parcel_id", "tracking_number", "label_file")
        .iterator(chunk_size=2000)
    ):
        parcels[shipment_id].append(ParcelLabel(pk, parcel_id, tracking, name))
    for order in orders:
        order.parcels = parcels.get(order.shipment_id) or [own_labels[order.shipment_id]]
    return orders


def variant_files(*, batch: PushBatch, variant: str) -> dict[int, str]:
    """``{parcel row id: storage name}`` of the batch's labels already stored in ``variant``."""
    return dict(
        ParcelLabelFile.objects.filter(parcel__shipment__in=_labelled(batch), variant=variant).values_list(
            "parcel_id", "file"
        )
    )


def labels_fingerprint(*, batch: PushBatch) -> str:
    """A SHA-256 of what the batch's documents are made of: which orders, their labels, their customs files.

    It changes when an order of the batch is labelled again, leaves the batch, or gets a customs declaration.
    """
    digest = hashlib.sha256()
    for pk, labelled_at, label, customs in (
        _labelled(batch)
        .order_by("pk")
        .values_list("pk", "labelled_at", "label_file", "customs_declaration")
        .iterator(chunk_size=5000)
    ):
        digest.update(f"{pk}|{labelled_at.isoformat() if labelled_at else ''}|{label}|{customs}\n".encode())
    return digest.hexdigest()
