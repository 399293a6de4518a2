"""Reading in bulk: ``GET /shipments`` by shipment or parcel ids, and ``GET /parcel-documents/{type}``."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import pytest

from sendcloud_sandbox import Account, SandboxServer
from tests.sandbox.helpers import Api, make_order


@pytest.fixture
def labelled(api: Api, sandbox: SandboxServer) -> list[dict[str, Any]]:
    """Five orders with a READY_TO_SEND label each: the 202 entries of create-labels-async."""
    sandbox.update_config(label_delay_seconds=0.0)
    api.push([make_order(n) for n in range(1, 6)])
    entries: list[dict[str, Any]] = api.labels(*({"order_id": f"ORD-{n}"} for n in range(1, 6))).json()["data"]
    assert len(entries) == 5
    return entries


def _pdf_texts(content: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(content), strict=True)
    return [page.extract_text() for page in reader.pages]


# -- GET /shipments filters --------------------------------------------------------------------------------------


def test_shipments_are_listed_by_shipment_ids(api: Api, labelled: list[dict[str, Any]]) -> None:
    wanted = [labelled[0]["shipment_id"], labelled[3]["shipment_id"]]

    response = api.get("/shipments", params={"shipment_uuids": ",".join(wanted), "page_size": "100"})

    assert response.status_code == 200
    assert sorted(s["id"] for s in response.json()["data"]) == sorted(wanted)
    assert "Link" not in response.headers


def test_shipments_are_listed_by_parcel_ids(api: Api, labelled: list[dict[str, Any]]) -> None:
    response = api.get("/shipments", params={"ids": f"{labelled[1]['parcel_id']},{labelled[2]['parcel_id']}"})

    assert {s["id"] for s in response.json()["data"]} == {labelled[1]["shipment_id"], labelled[2]["shipment_id"]}


def test_unknown_ids_match_nothing_and_filters_combine(api: Api, labelled: list[dict[str, Any]]) -> None:
    first = labelled[0]

    assert api.get("/shipments", params={"shipment_uuids": "nope"}).json()["data"] == []
    both = {"shipment_uuids": first["shipment_id"], "order_number": first["order_number"]}
    assert [s["id"] for s in api.get("/shipments", params=both).json()["data"]] == [first["shipment_id"]]
    other = {"shipment_uuids": first["shipment_id"], "order_number": labelled[1]["order_number"]}
    assert api.get("/shipments", params=other).json()["data"] == []


@pytest.mark.parametrize("name", ["shipment_uuids", "ids"])
def test_more_than_100_ids_are_refused(api: Api, name: str) -> None:
    response = api.get("/shipments", params={name: ",".join(str(n) for n in range(1, 102))})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "validation_error"
    assert "100" in error["detail"]


def test_parcel_ids_must_be_integers(api: Api) -> None:
    assert api.get("/shipments", params={"ids": "1,x"}).status_code == 400


def test_a_filtered_list_pages_by_cursor(api: Api, labelled: list[dict[str, Any]]) -> None:
    wanted = ",".join(entry["shipment_id"] for entry in labelled)
    seen: list[str] = []
    response = api.get("/shipments", params={"shipment_uuids": wanted, "page_size": "2"})
    while True:
        assert response.status_code == 200
        seen += [s["id"] for s in response.json()["data"]]
        if "next" not in response.links:
            break
        response = api.session.get(response.links["next"]["url"], timeout=10)

    assert sorted(seen) == sorted(entry["shipment_id"] for entry in labelled)
    assert len(seen) == 5


# -- GET /parcel-documents/{type} --------------------------------------------------------------------------------


def test_bulk_labels_are_one_pdf_with_a_page_per_parcel_in_request_order(
    api: Api, labelled: list[dict[str, Any]]
) -> None:
    order = [labelled[4], labelled[0], labelled[2]]

    response = api.get(
        "/parcel-documents/label",
        params={"parcels": [entry["parcel_id"] for entry in order], "paper_size": "A6"},
        headers={"Accept": "application/pdf"},
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    texts = _pdf_texts(response.content)
    assert len(texts) == 3
    for entry, text in zip(order, texts, strict=True):
        assert f"Order: {entry['order_number']}" in text
        assert f"Parcel: {entry['parcel_id']}" in text


def test_bulk_labels_use_the_paper_size_asked_for(api: Api, labelled: list[dict[str, Any]]) -> None:
    ids = [entry["parcel_id"] for entry in labelled[:2]]

    a4_answer = api.get("/parcel-documents/label", params={"parcels": ids, "paper_size": "A4"})
    a4 = pypdf.PdfReader(io.BytesIO(a4_answer.content))
    default = pypdf.PdfReader(io.BytesIO(api.get("/parcel-documents/label", params={"parcels": ids}).content))

    assert [round(float(p.mediabox.width)) for p in a4.pages] == [595, 595]
    assert [round(float(p.mediabox.width)) for p in default.pages] == [298, 298]


def test_bulk_zpl_holds_every_label(api: Api, labelled: list[dict[str, Any]]) -> None:
    response = api.get(
        "/parcel-documents/label",
        params={"parcels": [entry["parcel_id"] for entry in labelled]},
        headers={"Accept": "application/zpl"},
    )

    assert response.headers["Content-Type"] == "application/zpl"
    assert response.content.count(b"^XA") == 5


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "parcels"),
        ({"parcels": [str(n) for n in range(1, 22)]}, "parcels"),
        ({"parcels": ["1,2"]}, "parcels"),
        ({"parcels": ["abc"]}, "parcels"),
        ({"parcels": ["1"], "paper_size": "a6"}, "paper_size"),
        ({"parcels": ["1"], "paper_size": "letter"}, "paper_size"),
    ],
)
def test_bad_bulk_requests_are_refused_naming_the_parameter(api: Api, params: dict[str, Any], parameter: str) -> None:
    response = api.get("/parcel-documents/label", params=params)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["source"] == {"parameter": parameter}


def test_bulk_types_follow_the_spec(api: Api, labelled: list[dict[str, Any]]) -> None:
    ids = [labelled[0]["parcel_id"]]

    assert api.get("/parcel-documents/proof-of-delivery", params={"parcels": ids}).status_code == 400
    assert api.get("/parcel-documents/nonsense", params={"parcels": ids}).status_code == 400
    assert api.get("/parcel-documents/customs-declaration", params={"parcels": ids}).status_code == 404


def test_twenty_parcels_are_allowed_and_an_unknown_one_fails_the_request(
    api: Api, labelled: list[dict[str, Any]]
) -> None:
    ids = [entry["parcel_id"] for entry in labelled] * 4

    assert len(_pdf_texts(api.get("/parcel-documents/label", params={"parcels": ids}).content)) == 20
    response = api.get("/parcel-documents/label", params={"parcels": [labelled[0]["parcel_id"], 999]})
    assert response.status_code == 404
    assert response.json()["errors"][0]["detail"] == "No Parcel matches the given query."


def test_a_label_not_ready_yet_fails_the_bulk_request(api: Api, sandbox: SandboxServer) -> None:
    sandbox.update_config(label_delay_seconds=30)
    api.push([make_order(1)])
    parcel_id = api.labels({"order_id": "ORD-1"}).json()["data"][0]["parcel_id"]

    assert api.get("/parcel-documents/label", params={"parcels": [parcel_id]}).status_code == 404


def test_another_accounts_parcels_are_unknown(api: Api, labelled: list[dict[str, Any]], sandbox: SandboxServer) -> None:
    sandbox.add_account(Account(public_key="other", secret_key="other-secret", integration_ids=[2002]))
    other = Api(sandbox, auth=("other", "other-secret"))

    response = other.get("/parcel-documents/label", params={"parcels": [labelled[0]["parcel_id"]]})

    assert response.status_code == 404
    assert other.get("/shipments", params={"shipment_uuids": labelled[0]["shipment_id"]}).json()["data"] == []


def test_bulk_reads_count_against_the_get_limit(
    api: Api, labelled: list[dict[str, Any]], sandbox: SandboxServer
) -> None:
    sandbox.update_config(rate_limits_enabled=True, rate_limit_scale=0.003)  # 3 GETs a minute
    ids = [labelled[0]["parcel_id"]]

    statuses = [
        api.get("/parcel-documents/label", params={"parcels": ids}).status_code,
        api.get("/shipments", params={"shipment_uuids": labelled[0]["shipment_id"]}).status_code,
        api.get("/parcel-documents/label", params={"parcels": ids}).status_code,
        api.get("/shipments", params={"ids": str(ids[0])}).status_code,
    ]

    assert statuses == [200, 200, 200, 429]
