"""The sandbox's service points, availability checks, customs refusals and customs declarations.

Every answer is checked against the vendored response schemas of Sendcloud's v3 service-points spec
(``tests/fixtures/sendcloud_schemas/``).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pypdf import PdfReader

from sendcloud_sandbox import SandboxServer
from tests.sandbox.helpers import Api, make_order

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "sendcloud_schemas"
PICKUP = {"type": "shipping_option_code", "properties": {"shipping_option_code": "postnl:standard/service_point"}}
SWISS = {"name": "Heidi", "address_line_1": "Bahnhofstrasse", "house_number": "1", "postal_code": "8001",
         "city": "Zürich", "country_code": "CH"}  # fmt: skip


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def points(api: Api, **params: Any) -> Any:
    answer = api.get("/service-points", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    jsonschema.validate(body, schema("service_points_list.json"))
    return body["data"]


def available(api: Api, point_id: int | str) -> Any:
    answer = api.post(f"/service-points/{point_id}/check-availability")
    if answer.status_code == 200:
        jsonschema.validate(answer.json(), schema("service_point_availability.json"))
    else:
        jsonschema.validate(answer.json(), schema("errors.json"))
    return answer


def customs_order(n: int, **overrides: Any) -> dict[str, Any]:
    order = make_order(n, shipping_address=SWISS)
    item = order["order_details"]["order_items"][0]
    item.update(hs_code="340600", country_of_origin="NL")
    order["customs_details"] = {"shipment_type": "commercial_goods", "export_type": "commercial_b2c"}
    order.update(overrides)
    return order


# --- search -------------------------------------------------------------------------------------------------


def test_points_near_a_postal_code_come_nearest_first(api: Api) -> None:
    data = points(api, country_code="NL", address_postal_code="1012 AB", use_integration_carriers="true")
    assert data["geocoding"]["status"] == "matched"
    distances = [point["distance"] for point in data["results"]]
    assert distances == sorted(distances)
    assert data["results"][0]["id"] == 1000001
    assert {point["address"]["country_code"] for point in data["results"]} == {"NL"}


def test_carriers_radius_and_limit_narrow_the_search(api: Api) -> None:
    near = {"country_code": "NL", "latitude": 52.3786, "longitude": 4.9003}
    dhl = points(api, **near, carrier_code="dhl")["results"]
    assert {point["carrier"]["code"] for point in dhl} == {"dhl"}
    close = points(api, **near, carrier_code=["postnl", "dhl"], radius=1000)["results"]
    assert close
    assert all(point["distance"] <= 1000 for point in close)
    assert len(points(api, **near, carrier_code="postnl", limit=2)["results"]) == 2


def test_coordinates_have_no_geocoding_and_an_unknown_place_finds_nothing(api: Api) -> None:
    assert points(api, country_code="DE", latitude=52.52, longitude=13.41, carrier_code="dhl")["geocoding"] is None
    nowhere = points(api, country_code="DE", address_postal_code="99999", carrier_code="dhl")
    assert nowhere == {
        "results": [],
        "geocoding": {"status": "not_found", "precision": None, "formatted_address": None},
    }


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"carrier_code": "dhl"}, "country_code"),
        ({"country_code": "NL"}, "carrier_code"),
        ({"country_code": "NL", "carrier_code": "dhl", "use_integration_carriers": "true"}, "carrier_code"),
        ({"country_code": "NL", "carrier_code": "dhl", "radius": "50"}, "radius"),
        ({"country_code": "NL", "carrier_code": "dhl", "limit": "201"}, "limit"),
        ({"country_code": "NL", "carrier_code": "dhl", "latitude": "52"}, "latitude"),
        ({"country_code": "NL", "carrier_code": "dhl", "latitude": "52", "longitude": "4", "address": "x"}, "address"),
    ],
)
def test_a_search_against_the_specs_rules_is_a_400_naming_the_parameter(
    api: Api, params: dict[str, str], parameter: str
) -> None:
    answer = api.get("/service-points", params=params)
    assert answer.status_code == 400
    jsonschema.validate(answer.json(), schema("errors.json"))
    assert answer.json()["errors"][0]["source"] == {"parameter": parameter}


# --- availability -------------------------------------------------------------------------------------------


def test_an_open_point_is_available_and_a_closed_one_is_not(api: Api) -> None:
    assert available(api, 1000001).json() == {"data": {"is_available": True}}
    assert available(api, 1000005).json() == {"data": {"is_available": False}}


def test_an_unknown_point_is_a_404_in_the_specs_words(api: Api) -> None:
    answer = available(api, 999)
    assert answer.status_code == 404
    assert answer.json()["errors"][0] == {
        "status": "404",
        "code": "not_found",
        "detail": "The service point could not be found",
    }


def test_a_point_closes_over_time_and_the_search_still_lists_it(api: Api, sandbox: SandboxServer) -> None:
    now = [1_000_000.0]
    sandbox.app.clock = lambda: now[0]
    assert available(api, 1000006).json()["data"]["is_available"] is True  # the clock of closing starts here
    now[0] += 301
    assert available(api, 1000006).json()["data"]["is_available"] is False
    listed = points(api, country_code="NL", address_postal_code="1094 HB", carrier_code="postnl")["results"]
    closing = next(point for point in listed if point["id"] == 1000006)
    assert closing["is_open_tomorrow"] is False


def test_a_label_for_a_closed_point_or_a_pickup_option_without_a_point_is_refused(api: Api) -> None:
    api.push(
        [
            make_order(1, shipping_details={"ship_with": PICKUP}, service_point_details={"id": "1000001"}),
            make_order(2, shipping_details={"ship_with": PICKUP}, service_point_details={"id": "1000005"}),
            make_order(3, shipping_details={"ship_with": PICKUP}),
        ]
    )
    answer = api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"}, {"order_id": "ORD-3"}).json()
    assert [entry["order_id"] for entry in answer["data"]] == ["ORD-1"]
    assert [(e["source"]["pointer"], e["detail"]) for e in answer["errors"]] == [
        ("/data/attributes/orders/[1]", "Service point 1000005 is not available."),
        (
            "/data/attributes/orders/[2]",
            "The shipping option 'postnl:standard/service_point' requires a service point.",
        ),
    ]


# --- customs ------------------------------------------------------------------------------------------------


def test_a_non_eu_order_without_customs_data_is_refused_naming_what_is_missing(api: Api) -> None:
    bare = make_order(1, shipping_address=SWISS)
    api.push([bare, customs_order(2)])
    answer = api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"}).json()
    assert [entry["order_id"] for entry in answer["data"]] == ["ORD-2"]
    assert answer["errors"] == [
        {
            "status": "400",
            "code": "validation_error",
            "title": "Invalid order",
            "detail": "Customs information is required for a shipment from NL to CH; missing: customs_details, "
            "order_details.order_items[0].hs_code, order_details.order_items[0].country_of_origin.",
            "source": {"pointer": "/data/attributes/orders/[0]"},
        }
    ]
    jsonschema.validate({"errors": answer["errors"]}, schema("errors.json"))
    assert len(api.state()["shipments"]["items"]) == 1  # no label for the refused order


def test_a_non_eu_label_has_a_customs_declaration_and_an_eu_one_has_none(api: Api) -> None:
    api.push([customs_order(1), make_order(2)])
    labels = api.labels({"order_id": "ORD-1"}, {"order_id": "ORD-2"}).json()["data"]
    swiss, dutch = (entry["parcel_id"] for entry in labels)
    time.sleep(0.3)  # the label delay
    shipment = api.get(f"/shipments/{labels[0]['shipment_id']}").json()["data"]
    kinds = [doc["document_type"] for doc in shipment["parcels"][0]["documents"]]
    assert kinds == ["label", "customs-declaration"]

    single = api.get(f"/parcels/{swiss}/documents/customs-declaration")
    assert single.status_code == 200
    assert single.headers["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(single.content)).pages[0].extract_text() or ""
    assert "CN23" in text
    assert "HS 340600" in text
    assert "origin NL" in text
    bulk = api.get("/parcel-documents/customs-declaration", params={"parcels": [swiss]})
    assert bulk.status_code == 200
    assert len(PdfReader(io.BytesIO(bulk.content)).pages) == 1

    missing = api.get(f"/parcels/{dutch}/documents/customs-declaration")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["detail"] == "Document type requested is not available for the parcel."
    assert api.get("/parcel-documents/customs-declaration", params={"parcels": [swiss, dutch]}).status_code == 404


@pytest.mark.parametrize(
    ("country", "postal_code", "refused"),
    [("ES", "35001", True), ("GB", "BT1 1AA", False), ("GB", "SW1A 1AA", True), ("MC", "98000", False)],
)
def test_the_sandbox_knows_the_special_territories(api: Api, country: str, postal_code: str, refused: bool) -> None:
    address = {**make_order(1)["shipping_address"], "country_code": country, "postal_code": postal_code}
    api.push([make_order(1, shipping_address=address)])
    answer = api.labels({"order_id": "ORD-1"}).json()
    assert bool(answer.get("errors")) is refused


@pytest.mark.parametrize(
    ("extra", "pointer", "detail"),
    [
        (
            {"service_point_details": {"id": "1", "carrier_service_point_id": "NL-1"}},
            "/data/attributes/[0]/service_point_details",
            "Provide exactly one of id and carrier_service_point_id",
        ),
        (
            {"service_point_details": {"id": 1000001}},
            "/data/attributes/[0]/service_point_details/id",
            "Input should be a valid string",
        ),
        (
            {"customs_details": {"export_type": "b2c"}},
            "/data/attributes/[0]/customs_details/export_type",
            "Input should be 'private', 'commercial_b2c' or 'commercial_b2b'",
        ),
    ],
)
def test_the_order_upsert_validates_the_point_and_the_customs_details(
    api: Api, extra: dict[str, Any], pointer: str, detail: str
) -> None:
    answer = api.push([make_order(1, **extra)])
    assert answer.status_code == 400
    assert [(e["source"]["pointer"], e["detail"]) for e in answer.json()["errors"]] == [(pointer, detail)]
