"""``GET /parcels/{id}/documents/{type}``: download a parcel's label.

Only labels exist in the sandbox, and only once the parcel is READY_TO_SEND; the bytes are a real
(tiny) PDF, ZPL or PNG chosen by the Accept header.
"""

from __future__ import annotations

from sendcloud_sandbox.documents import DOCUMENT_TYPES, LabelData, choose_format, render_label
from sendcloud_sandbox.jsonapi import ApiError
from sendcloud_sandbox.render import carrier_of
from sendcloud_sandbox.routes import HandlerContext
from sendcloud_sandbox.state import READY_TO_SEND
from sendcloud_sandbox.web import Response

PARCEL_NOT_FOUND = "No Parcel matches the given query."
NOT_AVAILABLE = "Document type requested is not available for the parcel."
_EXTENSIONS = {"application/pdf": "pdf", "application/zpl": "zpl", "image/png": "png"}


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


def get_parcel_document(ctx: HandlerContext) -> Response:
    """The label of a parcel of the account, once announced."""
    document_type = ctx.params["type"]
    if document_type not in DOCUMENT_TYPES:
        raise ApiError.single(400, "invalid", "Invalid document type.")
    raw_id = ctx.params["id"]
    found = ctx.state.find_parcel(int(raw_id), integration_ids=ctx.integration_ids) if raw_id.isdigit() else None
    if found is None:
        raise ApiError.single(404, "not_found", PARCEL_NOT_FOUND)
    shipment, parcel = found
    if document_type != "label" or shipment.status(ctx.now()) != READY_TO_SEND:
        raise ApiError.single(404, "not_found", NOT_AVAILABLE)
    mime = choose_format(ctx.request.headers.get("accept"))
    if mime is None:
        raise ApiError.single(406, "not_acceptable", "Could not satisfy the request Accept header.")
    data = LabelData(
        order_number=shipment.order_number,
        tracking_number=parcel.tracking_number,
        carrier=carrier_of(shipment.ship_with)["name"],
        parcel_id=parcel.id,
        recipient=_recipient(shipment.to_address),
    )
    filename = f"label-{parcel.id}.{_EXTENSIONS[mime]}"
    return Response(
        status=200,
        body=render_label(data, mime),
        content_type=mime,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
