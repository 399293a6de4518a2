"""``GET /parcels/{id}/documents/{type}`` and ``GET /parcel-documents/{type}``: download labels and customs
declarations.

Labels exist once the parcel is announced (READY_TO_SEND, and whatever status follows); a customs
declaration (an A4 CN23 PDF listing the items) exists too for a parcel leaving the EU customs and VAT
area, and is "not available" for any other. The
bytes of a label are a real (tiny) PDF, ZPL or PNG chosen by the Accept header. The bulk route takes the
spec's ``parcels`` array (1 to 20 integers, sent as the parameter repeated, OpenAPI's default for query arrays) and
``paper_size`` (A4, A5 or A6), and answers one document with a page per parcel in request order.
"""

from __future__ import annotations

from sendcloud_sandbox.documents import (
    BULK_DOCUMENT_TYPES,
    DOCUMENT_TYPES,
    DPI_CHOICES,
    VALID_DPI,
    LabelData,
    choose_format,
    render_label,
    render_labels,
)
from sendcloud_sandbox.jsonapi import ApiError
from sendcloud_sandbox.pdf import PAPER_SIZES, Page, build_pages_pdf
from sendcloud_sandbox.render import carrier_of
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.state import StoredParcel, StoredShipment
from sendcloud_sandbox.web import Response

PARCEL_NOT_FOUND = "No Parcel matches the given query."
NOT_AVAILABLE = "Document type requested is not available for the parcel."
_EXTENSIONS = {"application/pdf": "pdf", "application/zpl": "zpl", "image/png": "png"}
#: ``parcels`` of the bulk route: ``minItems: 1``, ``maxItems: 20`` (spec: v3/parcel-documents).
MAX_BULK_PARCELS = 20


def _recipient(address: dict[str, object]) -> tuple[str, ...]:
    def text(key: str) -> str:
        value = address.get(key)
        return str(value) if value else ""

    lines = (
        text("name"),
        text("company_name"),
        f"{text('address_line_1')} {text('house_number')}".strip(),
        text("address_line_2"),
        f"{text('postal_code')} {text('city')}".strip(),
        text("country_code"),
    )
    return tuple(line for line in lines if line)


def _label_data(shipment: StoredShipment, parcel: StoredParcel) -> LabelData:
    return LabelData(
        order_number=shipment.order_number,
        tracking_number=parcel.tracking_number,
        carrier=carrier_of(shipment.ship_with)["name"],
        parcel_id=parcel.id,
        recipient=_recipient(shipment.to_address),
    )


def _declaration_page(shipment: StoredShipment, parcel: StoredParcel) -> Page:
    """One parcel's CN23: who sends what to whom, and per item its HS code, origin, value and weight."""
    snapshot = shipment.customs or {}
    details = snapshot.get("customs_details") or {}
    lines = [
        f"Order: {shipment.order_number}",
        f"Parcel: {parcel.id}  Tracking: {parcel.tracking_number}",
        f"From: {shipment.from_address.get('country_code', '')}  To: {shipment.to_address.get('country_code', '')}",
        f"Shipment type: {details.get('shipment_type', '')}  Export type: {details.get('export_type', '')}",
        f"Invoice: {details.get('commercial_invoice_number', '')}",
    ]
    for item in snapshot.get("items", []):
        price = item.get("unit_price") or {}
        weight = (item.get("measurement") or {}).get("weight") or {}
        lines.append(
            f"{item.get('quantity', '')} x {item.get('name', '')}  HS {item.get('hs_code', '')}  "
            f"origin {item.get('country_of_origin', '')}  {price.get('value', '')} {price.get('currency', '')}  "
            f"{weight.get('value', '')} {weight.get('unit', '')}"
        )
    return Page("CN23 Customs declaration", tuple(lines))


def _available(document_type: str, shipment: StoredShipment, now: float) -> bool:
    if not shipment.has_label(now):  # announced (a label that was since cancelled or delivered is still served)
        return False
    return document_type == "label" or (document_type == "customs-declaration" and shipment.customs_declaration)


def get_parcel_document(ctx: HandlerContext) -> Response:
    """The label (or customs declaration) of a parcel of the account, once announced."""
    document_type = ctx.params["type"]
    if document_type not in DOCUMENT_TYPES:
        raise ApiError.single(400, "invalid", "Invalid document type.")
    raw_id = ctx.params["id"]
    found = ctx.state.find_parcel(int(raw_id), integration_ids=ctx.integration_ids) if raw_id.isdigit() else None
    if found is None:
        raise ApiError.single(404, "not_found", PARCEL_NOT_FOUND)
    shipment, parcel = found
    if not _available(document_type, shipment, ctx.now()):
        raise ApiError.single(404, "not_found", NOT_AVAILABLE)
    mime = choose_format(ctx.request.headers.get("accept"))
    if mime is None:
        raise ApiError.single(406, "not_acceptable", "Could not satisfy the request Accept header.")
    if document_type == "customs-declaration":
        return Response(
            status=200,
            body=build_pages_pdf([_declaration_page(shipment, parcel)], "A4"),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="customs-declaration-{parcel.id}.pdf"'},
        )
    paper_size = _paper_size(ctx)
    dpi = _dpi(ctx, mime)
    filename = f"label-{parcel.id}.{_EXTENSIONS[mime]}"
    return Response(
        status=200,
        body=render_label(_label_data(shipment, parcel), mime, paper_size=paper_size, dpi=dpi),
        content_type=mime,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _parcel_ids(ctx: HandlerContext) -> list[int]:
    """The ``parcels`` array: 1 to 20 integers (400 otherwise, naming the parameter)."""
    raw = ctx.request.query.get("parcels", [])
    if not raw:
        raise ApiError.single(400, "required", "This field is required.", parameter="parcels")
    if len(raw) > MAX_BULK_PARCELS:
        raise ApiError.single(
            400,
            "invalid",
            f"Ensure this field has no more than {MAX_BULK_PARCELS} elements.",
            parameter="parcels",
        )
    ids = []
    for value in raw:
        text = value.strip()
        if not text.isdigit() or int(text) < 1:
            raise ApiError.single(400, "invalid", "A valid integer is required.", parameter="parcels")
        ids.append(int(text))
    return ids


def _paper_size(ctx: HandlerContext, *, default: str = "A6") -> str:
    """``paper_size``: A4, A5 or A6; omitted means the document's own size (A6 for a label, A4 for a
    customs declaration)."""
    paper_size = ctx.request.param("paper_size") or default
    if paper_size not in PAPER_SIZES:
        raise ApiError.single(400, "invalid_choice", f'"{paper_size}" is not a valid choice.', parameter="paper_size")
    return paper_size


def _dpi(ctx: HandlerContext, mime: str) -> int | None:
    """``dpi`` of the single route: one of the enum, and one the format takes (PDF 72, PNG 150 or 300).

    ZPL is not affected by it (the carrier sets the resolution), so any value of the enum passes.
    """
    raw = ctx.request.param("dpi")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) not in DPI_CHOICES:
        raise ApiError.single(400, "invalid_choice", f'"{raw}" is not a valid choice.', parameter="dpi")
    dpi = int(raw)
    if mime in VALID_DPI and dpi not in VALID_DPI[mime]:
        raise ApiError.single(400, "invalid", f"DPI {dpi} is not available for {mime}.", parameter="dpi")
    return dpi


def get_parcel_documents(ctx: HandlerContext) -> Response:
    """Many parcels' labels as one document, one page per parcel in the order they were asked for.

    The whole request fails when one parcel is unknown to the account (404 "No Parcel matches the
    given query.") or has no label yet (404 "not available"), as the spec's single error answer implies.
    """
    document_type = ctx.params["type"]
    if document_type not in BULK_DOCUMENT_TYPES:
        raise ApiError.single(400, "invalid", "Invalid document type.")
    parcel_ids = _parcel_ids(ctx)
    paper_size = _paper_size(ctx, default="A4" if document_type == "customs-declaration" else "A6")
    now = ctx.now()
    labels = []
    declarations = []
    for parcel_id in parcel_ids:
        found = ctx.state.find_parcel(parcel_id, integration_ids=ctx.integration_ids)
        if found is None:
            raise ApiError.single(404, "not_found", PARCEL_NOT_FOUND)
        shipment, parcel = found
        if not _available(document_type, shipment, now):
            raise ApiError.single(404, "not_found", NOT_AVAILABLE)
        labels.append(_label_data(shipment, parcel))
        declarations.append(_declaration_page(shipment, parcel))
    mime = choose_format(ctx.request.headers.get("accept"))
    if mime is None:
        raise ApiError.single(406, "not_acceptable", "Could not satisfy the request Accept header.")
    if document_type == "customs-declaration":
        return Response(
            status=200,
            body=build_pages_pdf(declarations, paper_size),
            content_type="application/pdf",
            headers={"Content-Disposition": 'attachment; filename="customs-declarations.pdf"'},
        )
    filename = f"{document_type}s.{_EXTENSIONS[mime]}"
    return Response(
        status=200,
        body=render_labels(labels, mime, paper_size=paper_size),
        content_type=mime,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
