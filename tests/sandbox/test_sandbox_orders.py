"""``POST/GET/DELETE /orders``: batch limits, all-or-nothing validation, upsert, visibility."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sendcloud_sandbox import SandboxServer
from tests.sandbox.helpers import Api, make_order


def _pointers(response: Any) -> list[str]:
    return [error["source"]["pointer"] for error in response.json()["errors"]]


def test_a_batch_is_answered_201_in_request_order(api: Api) -> None:
    response = api.push([make_order(2), make_order(1)])

    assert response.status_code == 201
    data = response.json()["data"]
    assert [(row["order_id"], row["order_number"]) for row in data] == [("ORD-2", "N-00002"), ("ORD-1", "N-00001")]
    assert all(isinstance(row["id"], int) for row in data)


def test_100_orders_are_accepted_and_101_rejected_with_the_documented_error(api: Api) -> None:
    assert api.push([make_order(n) for n in range(100)]).status_code == 201

    response = api.push([make_order(n) for n in range(1000, 1101)])

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "status": "400",
                "code": "invalid",
                "detail": "Orders list should have at most 100 items, not 101",
                "source": {"pointer": "/data/attributes/"},
            }
        ]
    }
    assert api.state()["orders"]["count"] == 100


def test_one_invalid_order_rejects_the_whole_batch_and_the_pointer_names_it(api: Api) -> None:
    bad = make_order(3)
    del bad["shipping_address"]["city"]

    response = api.push([make_order(0), make_order(1), make_order(2), bad, make_order(4)])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "status": "400",
            "code": "invalid",
            "detail": "Field required",
            "source": {"pointer": "/data/attributes/[3]/shipping_address/city"},
        }
    ]
    assert api.state()["orders"]["count"] == 0


def test_every_problem_of_every_order_is_reported(api: Api) -> None:
    first = make_order(0)
    first["order_details"]["order_items"][0]["quantity"] = 0
    second = make_order(1, order_id=12345)
    second["payment_details"]["total_price"]["value"] = 7.005
    second["shipping_address"]["country_code"] = "NLD"
    del second["order_details"]["order_created_at"]

    response = api.push([first, second])

    assert response.status_code == 400
    assert sorted(_pointers(response)) == sorted(
        [
            "/data/attributes/[0]/order_details/order_items/0/quantity",
            "/data/attributes/[1]/order_id",
            "/data/attributes/[1]/payment_details/total_price/value",
            "/data/attributes/[1]/shipping_address/country_code",
            "/data/attributes/[1]/order_details/order_created_at",
        ]
    )
    details = {error["source"]["pointer"]: error["detail"] for error in response.json()["errors"]}
    assert details["/data/attributes/[0]/order_details/order_items/0/quantity"] == "Input should be greater than 0"
    assert details["/data/attributes/[1]/order_id"] == "Input should be a valid string"
    assert "2 decimal places" in details["/data/attributes/[1]/payment_details/total_price/value"]


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda o: o.pop("payment_details"), "/data/attributes/[0]/payment_details"),
        (lambda o: o["payment_details"].pop("status"), "/data/attributes/[0]/payment_details/status"),
        (lambda o: o["order_details"]["status"].pop("code"), "/data/attributes/[0]/order_details/status/code"),
        (lambda o: o["order_details"].pop("integration"), "/data/attributes/[0]/order_details/integration"),
        (
            lambda o: o["order_details"]["order_items"][0].pop("total_price"),
            "/data/attributes/[0]/order_details/order_items/0/total_price",
        ),
        (
            lambda o: o["order_details"]["order_items"][0].update(quantity="2"),
            "/data/attributes/[0]/order_details/order_items/0/quantity",
        ),
        (
            lambda o: o["payment_details"]["total_price"].update(currency="XYZ"),
            "/data/attributes/[0]/payment_details/total_price/currency",
        ),
        (lambda o: o["shipping_address"].update(name=""), "/data/attributes/[0]/shipping_address/name"),
        (lambda o: o.update(id=5), "/data/attributes/[0]/id"),
    ],
)
def test_required_fields_and_types_are_checked(api: Api, mutate: Any, pointer: str) -> None:
    order = make_order(0)
    mutate(order)

    response = api.push([order])

    assert response.status_code == 400
    assert pointer in _pointers(response)


def test_a_body_that_is_not_a_list_is_a_format_error(api: Api) -> None:
    response = api.push(make_order(0))  # type: ignore[arg-type]

    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "Wrong request format, expected list of objects"


def test_an_order_without_shipping_address_is_accepted(api: Api) -> None:
    order = make_order(0)
    del order["shipping_address"]

    assert api.push([order]).status_code == 201


def test_sending_an_order_twice_updates_it(api: Api) -> None:
    first = api.push([make_order(1)]).json()["data"][0]
    changed = make_order(1, order_number="N-CHANGED")

    second = api.push([changed]).json()["data"][0]

    assert second["id"] == first["id"]
    state = api.state()
    assert state["orders"]["count"] == 1
    assert state["orders"]["items"][0]["times_upserted"] == 2
    fetched = api.get(f"/orders/{first['id']}").json()["data"]
    assert fetched["order_number"] == "N-CHANGED"
    assert fetched["id"] == str(first["id"])  # GET answers the id as a string, like Sendcloud


def test_an_explicit_id_may_not_change_the_order_id(api: Api) -> None:
    sendcloud_id = api.push([make_order(1)]).json()["data"][0]["id"]

    response = api.push([make_order(2, id=str(sendcloud_id))])

    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "Order id ORD-1 cannot be changed"
    assert api.push([make_order(1, id=str(sendcloud_id), order_number="X")]).status_code == 201


def test_orders_can_be_listed_filtered_and_paginated(api: Api) -> None:
    api.push([make_order(n) for n in range(5)])

    by_number = api.get("/orders", params={"order_number": "n-00003"}).json()["data"]
    first_page = api.get("/orders", params={"page_size": 2})
    assert first_page.status_code == 200
    next_url = first_page.links["next"]["url"]
    second_page = api.session.get(next_url, timeout=5)

    assert [order["order_id"] for order in by_number] == ["ORD-3"]
    assert [order["order_id"] for order in first_page.json()["data"]] == ["ORD-4", "ORD-3"]
    assert [order["order_id"] for order in second_page.json()["data"]] == ["ORD-2", "ORD-1"]
    assert api.get("/orders", params={"order_id": "ORD-0"}).json()["data"][0]["order_number"] == "N-00000"
    assert api.get("/orders", params={"integration": "77"}).status_code == 400
    assert api.get("/orders", params={"cursor": "!!"}).status_code == 404


def test_orders_can_be_deleted(api: Api) -> None:
    sendcloud_id = api.push([make_order(1)]).json()["data"][0]["id"]

    assert api.delete(f"/orders/{sendcloud_id}").status_code == 204
    assert api.get(f"/orders/{sendcloud_id}").status_code == 404
    assert api.delete(f"/orders/{sendcloud_id}").status_code == 404


def test_a_visibility_delay_hides_new_orders_for_a_while(api: Api, sandbox: SandboxServer) -> None:
    sandbox.update_config(order_visibility_delay_seconds=1.0)
    sendcloud_id = api.push([make_order(1)]).json()["data"][0]["id"]

    assert api.get(f"/orders/{sendcloud_id}").status_code == 404
    assert api.labels({"order_id": "ORD-1"}).json()["errors"][0]["code"] == "not_found"
    time.sleep(1.05)
    assert api.get(f"/orders/{sendcloud_id}").status_code == 200


def test_dutch_postal_code_is_checked_like_sendcloud_does() -> None:
    from sendcloud_sandbox.validation import validate_order_batch

    def order(postal_code: str, country: str = "NL") -> dict[str, object]:
        return {
            "order_id": "1",
            "order_number": "ORD-1",
            "order_details": {
                "integration": {"id": 1001},
                "status": {"code": "paid"},
                "order_created_at": "2026-11-20T10:00:00+00:00",
                "order_items": [{"name": "x", "quantity": 1, "total_price": {"value": 1, "currency": "EUR"}}],
            },
            "payment_details": {"total_price": {"value": 1, "currency": "EUR"}, "status": {"code": "paid"}},
            "shipping_address": {
                "name": "A",
                "address_line_1": "Straat 1",
                "postal_code": postal_code,
                "city": "X",
                "country_code": country,
            },
        }

    assert validate_order_batch([order("1012 AB")], integration_ids=[1001], currencies=["EUR"]) == []
    assert validate_order_batch([order("1012AB")], integration_ids=[1001], currencies=["EUR"]) == []
    assert validate_order_batch([order("1012", "BE")], integration_ids=[1001], currencies=["EUR"]) == []
    errors = validate_order_batch([order("1012")], integration_ids=[1001], currencies=["EUR"])
    assert [e["source"]["pointer"] for e in errors] == ["/data/attributes/[0]/shipping_address/postal_code"]
    assert "Dutch postal code" in errors[0]["detail"]
