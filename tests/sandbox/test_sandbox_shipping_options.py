"""``POST /shipping-options`` and the check of a chosen option when a label is asked for, as Sendcloud does."""

from __future__ import annotations

from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.sandbox.helpers import Api, make_order

SHIP_WITH = {"type": "shipping_option_code", "properties": {"shipping_option_code": "postnl:standard"}}


def codes(answer: dict) -> list[str]:
    return [option["code"] for option in answer["data"]]


def test_options_per_destination_with_their_weight_ranges(api: Api) -> None:
    to_nl = api.post(
        "/shipping-options", {"from_address": {"country_code": "NL"}, "to_address": {"country_code": "NL"}}
    )
    to_us = api.post("/shipping-options", {"from_country_code": "NL", "to_country_code": "US"})

    assert to_nl.status_code == 200
    assert {"postnl:standard", "postnl:mailbox", "dhl_express:express"} <= set(codes(to_nl.json()))
    assert codes(to_us.json()) == ["dhl_express:express"]
    option = next(o for o in to_nl.json()["data"] if o["code"] == "postnl:mailbox")
    assert option["weight"] == {"min": {"value": "0.001", "unit": "kg"}, "max": {"value": "2.000", "unit": "kg"}}
    assert option["carrier"] == {"code": "postnl", "name": "PostNL"}
    assert option["functionalities"]["multicollo"] is False
    assert option["quotes"] is None


def test_parcels_filter_by_weight_and_multicollo(api: Api) -> None:
    heavy = api.post(
        "/shipping-options",
        {"from_country_code": "NL", "to_country_code": "NL", "parcels": [{"weight": {"value": "30", "unit": "kg"}}]},
    ).json()
    two = api.post(
        "/shipping-options",
        {
            "from_country_code": "NL",
            "to_country_code": "NL",
            "parcels": [{"weight": {"value": "1", "unit": "kg"}}, {"weight": {"value": "1", "unit": "kg"}}],
        },
    ).json()

    assert "postnl:standard" not in codes(heavy)
    assert "dhl_express:express" in codes(heavy)
    assert "postnl:mailbox" not in codes(two)


def test_nothing_found_says_so_and_bad_filters_are_400(api: Api) -> None:
    empty = api.post("/shipping-options", {"from_country_code": "US", "to_country_code": "NL"})
    mixed = api.post("/shipping-options", {"from_address": {"country_code": "NL"}, "from_country_code": "NL"})
    no_parcels = api.post("/shipping-options", {"parcels": []})

    assert empty.status_code == 200
    assert empty.json()["data"] == []
    assert "couldn't find any shipping options" in empty.json()["message"]
    assert mixed.status_code == 400
    assert no_parcels.status_code == 400
    assert no_parcels.json()["errors"][0]["detail"] == "At least one parcel must be provided."


def test_a_chosen_option_that_does_not_serve_the_destination_is_refused(api: Api) -> None:
    order = make_order(1, shipping_details={"ship_with": SHIP_WITH})
    order["shipping_address"] = {**order["shipping_address"], "country_code": "US", "postal_code": "10001"}
    api.push([order])

    answer = api.labels({"order_id": "ORD-1"}).json()

    assert answer["data"] == []
    assert "not available for shipments from NL to US" in answer["errors"][0]["detail"]
    assert answer["errors"][0]["source"]["pointer"] == "/data/attributes/orders/[0]"
    assert api.server.snapshot()["shipments"]["count"] == 0


def test_a_parcel_over_the_weight_range_is_refused(api: Api) -> None:
    api.push([make_order(1, shipping_details={"ship_with": SHIP_WITH})])
    parcels = [{"parcel_items": [], "weight": {"value": "24.000", "unit": "kg"}}, {"parcel_items": []}]

    answer = api.labels({"order_id": "ORD-1", "parcels": parcels}).json()

    assert "outside the weight range" in answer["errors"][0]["detail"]


def test_multicollo_makes_one_parcel_per_collo_and_needs_parcel_items(api: Api) -> None:
    api.push([make_order(1, shipping_details={"ship_with": SHIP_WITH}), make_order(2)])
    three = [{"parcel_items": [{"item_id": "item-1", "quantity": 1}], "weight": {"value": "1.0", "unit": "kg"}}] * 3

    made = api.labels({"order_id": "ORD-1", "parcels": three}).json()
    refused = api.labels({"order_id": "ORD-2", "parcels": [{"weight": {"value": "1", "unit": "kg"}}]})

    assert len(made["data"][0]["parcels_ids"]) == 3
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["source"]["pointer"].endswith("/parcels/0/parcel_items")


def test_request_bodies_are_recorded_when_asked() -> None:
    with SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False, record_bodies=True)) as server:
        Api(server).post("/shipping-options", {"to_country_code": "BE"})
        assert server.request_log()[-1]["body"] == {"to_country_code": "BE"}
