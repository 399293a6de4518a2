"""``create-labels-async``, shipments, label PDFs, and the duplicate-label detector."""

from __future__ import annotations

import io
import time
from typing import Any

import pypdf
import pytest

from sendcloud_sandbox import SandboxServer
from tests.sandbox.helpers import Api, make_order


def _wait_for_status(api: Api, shipment_id: str, *, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shipment = api.get(f"/shipments/{shipment_id}").json()["data"]
        if shipment["parcels"][0]["status"]["code"] != "ANNOUNCING" or time.monotonic() > deadline:
            return shipment
        time.sleep(0.05)


def test_labels_start_announcing_and_become_ready_to_send_after_the_delay(api: Api, sandbox: SandboxServer) -> None:
    sandbox.update_config(label_delay_seconds=0.8)  # wide enough to observe ANNOUNCING on a loaded machine
    api.push([make_order(1)])

    response = api.labels({"order_id": "ORD-1"})

    assert response.status_code == 202
    body = response.json()
    assert "errors" not in body
    entry = body["data"][0]
    assert entry["order_id"] == "ORD-1"
    assert entry["order_number"] == "N-00001"
    assert entry["parcels_ids"] == [entry["parcel_id"]]
    assert isinstance(entry["shipment_id"], str)
    announcing = api.get(f"/shipments/{entry['shipment_id']}").json()["data"]
    assert announcing["parcels"][0]["status"] == {"code": "ANNOUNCING", "message": "Being announced"}
    assert announcing["parcels"][0]["documents"] == []

    ready = _wait_for_status(api, entry["shipment_id"])

    parcel = ready["parcels"][0]
    assert parcel["status"] == {"code": "READY_TO_SEND", "message": "Ready to send"}
    assert parcel["tracking_number"]
    assert parcel["tracking_url"].startswith("https://")
    assert parcel["documents"][0]["type"] == "label"
    assert ready["carrier"]["code"] == "postnl"
    assert ready["errors"] == []
    assert ready["order_number"] == "N-00001"
    assert ready["to_address"]["city"] == "Oss"
    assert parcel["weight"] == {"value": "0.500", "unit": "kg"}


def test_the_label_is_a_valid_pdf_with_order_and_tracking_numbers(api: Api) -> None:
    api.push([make_order(7)])
    shipment_id = api.labels({"order_number": "N-00007"}).json()["data"][0]["shipment_id"]
    parcel = _wait_for_status(api, shipment_id)["parcels"][0]

    response = api.session.get(parcel["documents"][0]["link"], timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(response.content), strict=True)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "N-00007" in text
    assert parcel["tracking_number"] in text


def test_a_label_cannot_be_downloaded_before_it_is_ready(api: Api, sandbox: SandboxServer) -> None:
    sandbox.update_config(label_delay_seconds=30)
    api.push([make_order(1)])
    parcel_id = api.labels({"order_id": "ORD-1"}).json()["data"][0]["parcel_id"]

    assert api.get(f"/parcels/{parcel_id}/documents/label").status_code == 404
    assert api.get("/parcels/999/documents/label").status_code == 404
    assert api.get(f"/parcels/{parcel_id}/documents/nonsense").status_code == 400


@pytest.mark.parametrize(("accept", "magic"), [("application/zpl", b"^XA"), ("image/png", b"\x89PNG")])
def test_labels_come_in_the_format_asked_for(api: Api, accept: str, magic: bytes) -> None:
    api.push([make_order(1)])
    shipment_id = api.labels({"order_id": "ORD-1"}).json()["data"][0]["shipment_id"]
    parcel_id = _wait_for_status(api, shipment_id)["parcels"][0]["id"]

    response = api.get(f"/parcels/{parcel_id}/documents/label", headers={"Accept": accept})

    assert response.headers["Content-Type"] == accept
    assert response.content.startswith(magic)


def test_20_orders_are_accepted_and_21_rejected(api: Api) -> None:
    api.push([make_order(n) for n in range(21)])

    accepted = api.labels(*({"order_id": f"ORD-{n}"} for n in range(20)))
    rejected = api.labels(*({"order_id": f"ORD-{n}"} for n in range(21)))
    empty = api.labels()

    assert accepted.status_code == 202
    assert len(accepted.json()["data"]) == 20
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["source"]["pointer"] == "/data/attributes/orders"
    assert "at most 20 items" in rejected.json()["errors"][0]["detail"]
    assert empty.status_code == 400
    assert api.state()["shipments"]["count"] == 20


def test_successes_and_per_order_errors_are_mixed_in_one_answer(api: Api) -> None:
    no_address = make_order(2)
    del no_address["shipping_address"]
    api.push([make_order(1), no_address])

    response = api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"}, {"order_number": "UNKNOWN"})

    assert response.status_code == 202
    body = response.json()
    assert [entry["order_id"] for entry in body["data"]] == ["ORD-1"]
    assert body["errors"] == [
        {
            "status": "400",
            "code": "validation_error",
            "title": "Invalid order",
            "detail": "The order has no valid shipping address.",
            "source": {"pointer": "/data/attributes/orders/[1]"},
        },
        {
            "status": "404",
            "code": "not_found",
            "title": "Not found",
            "detail": "The order could not be found with the search criteria given",
            "source": {"pointer": "/data/attributes/orders/[2]"},
        },
    ]


def test_a_selector_needs_a_string_order_id(api: Api) -> None:
    response = api.labels({"order_id": 5})

    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/orders/0/order_id"


def test_a_second_label_for_the_same_order_is_created_and_counted(api: Api) -> None:
    api.push([make_order(1), make_order(2)])
    api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"})
    assert api.state()["duplicate_labels"] == 0

    again = api.labels({"order_id": "ORD-1"})

    assert again.status_code == 202
    state = api.state()
    assert state["labels_per_order"] == {"ORD-1": 2, "ORD-2": 1}
    assert state["duplicate_labels"] == 1
    assert state["orders_with_duplicate_labels"] == ["ORD-1"]
    assert state["shipments"]["count"] == 3


def test_shipments_can_be_found_by_order_number(api: Api) -> None:
    api.push([make_order(1), make_order(2)])
    api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"})

    found = api.get("/shipments", params={"order_number": "N-00002"}).json()["data"]
    none = api.get("/shipments", params={"external_reference_id": "x"}).json()["data"]
    everything = api.get("/shipments", params={"integration_id": "1001"}).json()["data"]

    assert [shipment["order_number"] for shipment in found] == ["N-00002"]
    assert none == []
    assert len(everything) == 2
    assert api.get("/shipments/does-not-exist").status_code == 404


def test_an_order_can_be_split_into_several_parcels(api: Api) -> None:
    api.push([make_order(1)])
    parcels = [
        {"parcel_items": [{"item_id": "item-1", "quantity": 1}], "weight": {"value": "0.3", "unit": "kg"}},
        {"parcel_items": [{"item_id": "item-1", "quantity": 1}], "weight": {"value": "0.4", "unit": "kg"}},
    ]

    entry = api.labels({"order_id": "ORD-1", "parcels": parcels}).json()["data"][0]

    assert len(entry["parcels_ids"]) == 2
    shipment = api.get(f"/shipments/{entry['shipment_id']}").json()["data"]
    assert [parcel["weight"]["value"] for parcel in shipment["parcels"]] == ["0.300", "0.400"]


def test_ship_with_from_the_request_is_used_and_echoed(api: Api) -> None:
    api.push([make_order(1)])
    ship_with = {"type": "shipping_option_code", "properties": {"shipping_option_code": "dhl:standard"}}

    entry = api.labels({"order_id": "ORD-1"}, ship_with=ship_with).json()["data"][0]

    assert entry["ship_with"] == ship_with
    assert api.get(f"/shipments/{entry['shipment_id']}").json()["data"]["carrier"]["code"] == "dhl"
