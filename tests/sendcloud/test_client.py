"""The Sendcloud v3 HTTP client against canned answers (``responses``): error classes, parsing, call records.

No database and no Django models are involved: the client is HTTP only.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from urllib3.exceptions import NewConnectionError

from sendcloud_integration import limits as limits_module
from sendcloud_integration.sendcloud import client as client_module
from sendcloud_integration.sendcloud import errors as errors_module
from sendcloud_integration.sendcloud import transport as transport_module
from sendcloud_integration.sendcloud import types as types_module
from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import (
    AuthenticationError,
    ClientError,
    Conflict,
    NotFound,
    OrdersRejected,
    RateLimited,
    SendcloudError,
    TransientError,
)
from sendcloud_integration.sendcloud.transport import encode_json, shared_session
from sendcloud_integration.sendcloud.types import (
    CallRecord,
    LabelRequestResult,
    ShipmentInfo,
    UpsertedOrder,
    parse_shipment,
)

BASE = "https://sendcloud.test/api"
PUBLIC = "pub-key-123"
SECRET = "very-secret-456"
ORDERS_URL = f"{BASE}/v3/orders"
LABELS_URL = f"{BASE}/v3/orders/create-labels-async"


@pytest.fixture
def calls() -> list[CallRecord]:
    return []


@pytest.fixture
def sc(calls: list[CallRecord]) -> SendcloudV3Client:
    return SendcloudV3Client(base_url=BASE + "/", public_key=PUBLIC, secret_key=SECRET, on_call=calls.append)


@pytest.fixture(autouse=True)
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def order(n: int) -> dict[str, Any]:
    return {"order_id": f"o{n}", "order_number": f"N{n}"}


def errors(*items: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """A JSON:API error body from (detail, pointer[, status]) tuples."""
    out = []
    for item in items:
        detail, pointer = item[0], item[1]
        status = item[2] if len(item) == 3 else "400"
        entry: dict[str, Any] = {"status": status, "code": "invalid", "detail": detail}
        if pointer:
            entry["source"] = {"pointer": pointer}
        out.append(entry)
    return {"errors": out}


SHIPMENT = {
    "id": "shp-1",
    "order_number": "N1",
    "external_reference_id": None,
    "carrier": {"code": "postnl", "name": "PostNL"},
    "errors": [],
    "parcels": [
        {
            "id": 383707309,
            "status": {"code": "READY_TO_SEND", "message": "Ready to send"},
            "documents": [
                {"type": "label", "size": "a6", "link": f"{BASE}/v3/parcels/383707309/documents/label"},
            ],
            "tracking_number": "3SYZXG8498635",
            "tracking_url": "https://tracking.example/3SYZXG8498635",
        }
    ],
}


# -- session ----------------------------------------------------------------------------------


def test_shared_session_is_pooled_and_never_retries_by_itself() -> None:
    session = shared_session()
    assert shared_session() is session
    adapter = session.get_adapter("https://panel.sendcloud.sc/api/v3/orders")
    assert adapter.max_retries.total == 0
    assert adapter.max_retries.connect == 0


def test_repr_holds_no_credentials(sc: SendcloudV3Client) -> None:
    assert SECRET not in repr(sc)
    assert PUBLIC not in repr(sc)


# -- requests we send -------------------------------------------------------------------------------------------


def test_basic_auth_header_and_json_array_body(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(ORDERS_URL, status=201, json={"data": [{"id": 664, "order_id": "o1", "order_number": "N1"}]})

    result = sc.upsert_orders([{**order(1), "payment_details": {"total_price": {"value": Decimal("19.96")}}}])

    assert result == [UpsertedOrder(sendcloud_id="664", order_id="o1", order_number="N1")]
    request = mocked.calls[0].request
    expected = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == expected
    assert request.headers["Content-Type"] == "application/json"
    assert isinstance(json.loads(request.body), list)
    assert b'"value":19.96' in request.body  # a JSON number, written exactly


def test_batch_limits_are_enforced_before_sending(sc: SendcloudV3Client) -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        sc.upsert_orders([order(n) for n in range(101)])
    with pytest.raises(ValueError, match="1 to 100"):
        sc.upsert_orders([])
    with pytest.raises(ValueError, match="1 to 20"):
        sc.create_labels(integration_id=1, orders=[f"o{n}" for n in range(21)])
    with pytest.raises(ValueError, match="twice"):
        sc.create_labels(integration_id=1, orders=["o1", "o1"])


def test_encode_json_writes_decimals_as_exact_numbers() -> None:
    body = {"a": Decimal("19.96"), "b": Decimal("0.250"), "c": Decimal("1234567890.12"), "d": 3}
    assert encode_json(body) == b'{"a":19.96,"b":0.25,"c":1234567890.12,"d":3}'
    with pytest.raises(ValueError, match="15 significant digits"):
        encode_json({"x": Decimal("1234567890123456.78")})
    with pytest.raises(ValueError, match="NaN"):
        encode_json({"x": Decimal("NaN")})


@given(st.decimals(min_value=Decimal("-9999999999.99"), max_value=Decimal("9999999999.99"), places=2))
def test_encode_json_never_changes_a_cent_amount(value: Decimal) -> None:
    text = encode_json({"v": value})
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal)["v"] == value


# -- call records and logging -----------------------------------------------------------------------------------


def test_on_call_gets_every_attempt_without_secrets(
    sc: SendcloudV3Client, calls: list[CallRecord], mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{BASE}/v3/integrations", json={"data": [{"id": 1}]})
    mocked.get(f"{BASE}/v3/shipments/x", status=500, body="<html>boom</html>")
    mocked.get(f"{BASE}/v3/shipments/y", body=requests.exceptions.ReadTimeout())
    # A server that echoes our credentials back must not get them into any record or message.
    mocked.get(f"{BASE}/v3/shipments/z", status=400, json=errors((f"bad auth {PUBLIC}:{SECRET}", "")))

    caplog.set_level("INFO", logger="sendcloud_integration.sendcloud.client")
    sc.list_integrations()
    raised = []
    for call in (lambda: sc.get_shipment("x"), lambda: sc.get_shipment("y"), lambda: sc.get_shipment("z")):
        with pytest.raises(SendcloudError) as info:
            call()
        raised.append(info.value)

    assert [(c.method, c.path, c.status_code) for c in calls] == [
        ("GET", "/v3/integrations", 200),
        ("GET", "/v3/shipments/x", 500),
        ("GET", "/v3/shipments/y", None),
        ("GET", "/v3/shipments/z", 400),
    ]
    assert calls[0].error == ""
    assert all(c.error for c in calls[1:])
    assert all(isinstance(c.duration_ms, int) and c.duration_ms >= 0 for c in calls)
    everything = repr(calls) + repr(raised) + " ".join(e.message for e in raised) + caplog.text
    assert SECRET not in everything
    assert PUBLIC not in everything
    assert "GET /v3/integrations -> 200" in caplog.text
    assert "GET /v3/shipments/y -> no answer" in caplog.text


def test_a_failing_on_call_never_loses_the_result(mocked: responses.RequestsMock) -> None:
    def broken(record: CallRecord) -> None:
        raise RuntimeError("database down")

    sc = SendcloudV3Client(base_url=BASE, public_key=PUBLIC, secret_key=SECRET, on_call=broken)
    mocked.post(LABELS_URL, status=202, json={"data": [{"order_id": "o1", "shipment_id": "1", "parcels_ids": [7]}]})
    result = sc.create_labels(integration_id=1, orders=["o1"])
    assert [a.order_id for a in result.accepted] == ["o1"]


# -- error classes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, "<html><body><h1>Internal Server Error</h1></body></html>"), (502, ""), (503, "Service Unavailable")],
)
def test_5xx_is_transient_and_uncertain_for_posts(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord], status: int, body: str
) -> None:
    mocked.post(ORDERS_URL, status=status, body=body)
    with pytest.raises(TransientError) as info:
        sc.upsert_orders([order(1)])
    assert type(info.value) is TransientError
    assert info.value.status_code == status
    assert info.value.outcome_uncertain is True
    assert "<html>" not in info.value.message
    assert calls[0].status_code == status


def test_5xx_on_a_get_is_transient_but_not_uncertain(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments/1", status=504, body="")
    with pytest.raises(TransientError) as info:
        sc.get_shipment("1")
    assert info.value.outcome_uncertain is False
    assert "(empty body)" in info.value.message


def test_429_without_retry_after(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(ORDERS_URL, status=429, body="")
    with pytest.raises(RateLimited) as info:
        sc.upsert_orders([order(1)])
    assert isinstance(info.value, TransientError)
    assert info.value.retry_after is None
    assert info.value.outcome_uncertain is False
    assert info.value.status_code == 429


def test_429_with_retry_after_in_seconds(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/integrations", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as info:
        sc.list_integrations()
    assert info.value.retry_after == 7.0


def test_429_with_retry_after_as_http_date(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mocked.get(f"{BASE}/v3/integrations", status=429, headers={"Retry-After": when})
    with pytest.raises(RateLimited) as info:
        sc.list_integrations()
    assert info.value.retry_after is not None
    assert 25 <= info.value.retry_after <= 31


def test_429_with_unreadable_retry_after(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/integrations", status=429, headers={"Retry-After": "soon"})
    with pytest.raises(RateLimited) as info:
        sc.list_integrations()
    assert info.value.retry_after is None


def test_read_timeout_on_post_is_uncertain(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    mocked.post(LABELS_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TransientError) as info:
        sc.create_labels(integration_id=1, orders=["o1"])
    assert info.value.outcome_uncertain is True
    assert info.value.status_code is None
    assert calls == [CallRecord("POST", "/v3/orders/create-labels-async", None, calls[0].duration_ms, calls[0].error)]
    assert "30 s" in calls[0].error


def test_connection_dropped_after_sending_is_uncertain(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(
        LABELS_URL,
        body=requests.exceptions.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'reset'))"),
    )
    with pytest.raises(TransientError) as info:
        sc.create_labels(integration_id=1, orders=["o1"])
    assert info.value.outcome_uncertain is True


def test_connection_never_made_is_certain(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    refused = requests.exceptions.ConnectionError(NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    mocked.post(LABELS_URL, body=refused)
    with pytest.raises(TransientError) as info:
        sc.create_labels(integration_id=1, orders=["o1"])
    assert info.value.outcome_uncertain is False

    mocked.post(ORDERS_URL, body=requests.exceptions.ConnectTimeout())
    with pytest.raises(TransientError) as info:
        sc.upsert_orders([order(1)])
    assert info.value.outcome_uncertain is False


def test_malformed_json_in_a_201_is_transient_and_uncertain(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    mocked.post(ORDERS_URL, status=201, body='{"data": [{"id": 1,')
    with pytest.raises(TransientError) as info:
        sc.upsert_orders([order(1)])
    assert info.value.outcome_uncertain is True
    assert info.value.status_code == 201
    assert calls[0].status_code == 201
    assert calls[0].error  # the call log shows the unreadable answer


@pytest.mark.parametrize("body", ['{"data": {"id": 1}}', '{"nope": []}', '[{"order_id": "o1"}]', '{"data": [{}]}'])
def test_a_201_of_the_wrong_shape_is_malformed(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, body: str
) -> None:
    mocked.post(ORDERS_URL, status=201, body=body)
    with pytest.raises(TransientError) as info:
        sc.upsert_orders([order(1)])
    assert info.value.outcome_uncertain is True


def test_still_processing_400_is_transient(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(
        ORDERS_URL,
        status=400,
        json=errors(("We are still processing a previous request. Please try again in a moment.", "/data")),
    )
    with pytest.raises(TransientError) as info:
        sc.upsert_orders([order(1), order(2)])
    assert not isinstance(info.value, OrdersRejected)
    assert info.value.status_code == 400
    assert info.value.outcome_uncertain is False


def test_400_with_pointers_names_the_bad_orders(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(
        ORDERS_URL,
        status=400,
        json=errors(
            ("Field required", "/data/attributes/[3]/shipping_address/city"),
            ("Input should be greater than 0", "/data/attributes/[3]/order_details/order_items/0/quantity"),
            ("Integration with id 99999 does not exist", "/data/attributes/[0]/order_details/integration/id"),
            ("Wrong request format, expected list of objects", ""),
            ("Points past the batch", "/data/attributes/[9]/order_id"),
        ),
    )
    with pytest.raises(OrdersRejected) as info:
        sc.upsert_orders([order(n) for n in range(5)])
    rejected = info.value
    assert isinstance(rejected, ClientError)
    assert rejected.errors_by_index == {
        3: [
            "shipping_address.city: Field required",
            "order_details.order_items[0].quantity: Input should be greater than 0",
        ],
        0: ["order_details.integration.id: Integration with id 99999 does not exist"],
    }
    assert rejected.unattributed == ["Wrong request format, expected list of objects", "Points past the batch"]
    assert "2 invalid order(s)" in rejected.message


def test_400_for_more_than_100_is_unattributed(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(
        ORDERS_URL,
        status=400,
        json=errors(("Orders list should have at most 100 items, not 101", "/data/attributes/")),
    )
    with pytest.raises(OrdersRejected) as info:
        sc.upsert_orders([order(1)])
    assert info.value.errors_by_index == {}
    assert info.value.unattributed == ["Orders list should have at most 100 items, not 101"]
    assert "at most 100" in info.value.message


def test_400_on_a_get_is_a_plain_client_error(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments", status=400, json=errors(("Select a valid choice.", "")))
    with pytest.raises(ClientError) as info:
        sc.find_shipments(order_number="o1")
    assert type(info.value) is ClientError
    assert info.value.errors[0].detail == "Select a valid choice."


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_authentication_errors(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, status: int
) -> None:
    body = {
        "errors": [{"status": str(status), "code": "authentication_failed", "detail": "Invalid username/password."}]
    }
    mocked.get(f"{BASE}/v3/integrations", status=status, json=body)
    with pytest.raises(AuthenticationError) as info:
        sc.list_integrations()
    assert info.value.status_code == status
    assert info.value.message == f"Sendcloud refused the API credentials ({status}): Invalid username/password."


def test_404_is_not_found_unless_the_caller_expects_a_delay(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    body = {"errors": [{"status": "404", "code": "not_found", "detail": "The order could not be found"}]}
    mocked.get(f"{BASE}/v3/shipments/669", status=404, json=body)
    mocked.post(LABELS_URL, status=404, json=body)
    with pytest.raises(NotFound) as info:
        sc.get_shipment("669")
    assert info.value.status_code == 404
    with pytest.raises(TransientError) as transient:
        sc.create_labels(integration_id=7, orders=["o1"], orders_just_pushed=True)
    assert transient.value.status_code == 404
    assert transient.value.outcome_uncertain is False


def test_404_on_labels_for_just_pushed_orders_is_transient(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    mocked.post(
        LABELS_URL, status=404, json={"errors": [{"status": "404", "code": "not_found", "detail": "Not found"}]}
    )
    with pytest.raises(NotFound):
        sc.create_labels(integration_id=1, orders=["o1"])
    with pytest.raises(TransientError):
        sc.create_labels(integration_id=1, orders=["o1"], orders_just_pushed=True)


def test_409_carries_the_existing_shipment(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments/shp-1", status=409, json={"data": SHIPMENT})
    with pytest.raises(Conflict) as info:
        sc.get_shipment("shp-1")
    assert info.value.status_code == 409
    assert info.value.body == {"data": SHIPMENT}
    existing = info.value.shipment()
    assert existing is not None
    assert existing.shipment_id == "shp-1"


def test_409_without_a_shipment_body(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    body = {"errors": [{"status": "409", "code": "invalid", "detail": "This shipment is already being cancelled."}]}
    mocked.get(f"{BASE}/v3/shipments/shp-1", status=409, json=body)
    with pytest.raises(Conflict) as info:
        sc.get_shipment("shp-1")
    assert info.value.shipment() is None
    assert "already being cancelled" in info.value.message


def test_other_4xx_is_a_client_error(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/integrations", status=418, body="teapot")
    with pytest.raises(ClientError) as info:
        sc.list_integrations()
    assert info.value.status_code == 418
    assert "teapot" in info.value.message


# -- labels -----------------------------------------------------------------------------------------------------


def test_create_labels_request_body(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(LABELS_URL, status=202, json={"data": []})
    ship_with = {"type": "shipping_option_code", "properties": {"shipping_option_code": "postnl:standard"}}
    sc.create_labels(integration_id=70, orders=["o1", "o2"], sender_address_id=17, ship_with=ship_with)
    assert json.loads(mocked.calls[0].request.body) == {
        "integration_id": 70,
        "orders": [{"order_id": "o1"}, {"order_id": "o2"}],
        "sender_address_id": 17,
        "ship_with": ship_with,
    }


def test_create_labels_leaves_optional_fields_out(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(LABELS_URL, status=202, json={"data": []})
    sc.create_labels(integration_id=70, orders=["o1"])
    assert json.loads(mocked.calls[0].request.body) == {"integration_id": 70, "orders": [{"order_id": "o1"}]}


def test_mixed_202_maps_successes_and_errors_to_orders(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(
        LABELS_URL,
        status=202,
        json={
            "data": [
                {
                    "parcel_id": 420,
                    "parcels_ids": [420, 421],
                    "shipment_id": "511",
                    "order_id": "o1",
                    "order_number": "N1",
                },
                {"parcel_id": 4428, "shipment_id": "512", "order_id": "o4", "order_number": "N4"},  # no parcels_ids
            ],
            "errors": [
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
                    "detail": "Order not found.",
                    "source": {"pointer": "/data/attributes/orders/2/order_id"},
                },
            ],
        },
    )
    result = sc.create_labels(integration_id=1, orders=["o1", "o2", "o3", "o4", "o5"])

    assert isinstance(result, LabelRequestResult)
    assert [(a.order_id, a.shipment_id, a.parcel_ids) for a in result.accepted] == [
        ("o1", "511", ["420", "421"]),
        ("o4", "512", ["4428"]),
    ]
    assert result.rejected == {
        "o2": "The order has no valid shipping address.",
        "o3": "order_id: Order not found.",
    }
    assert result.retryable == frozenset({"o3"})
    assert result.unaccounted == ["o5"]  # Sendcloud said nothing about it: look before asking again


def test_202_error_without_an_order_applies_to_every_order_not_accepted(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    mocked.post(
        LABELS_URL,
        status=202,
        json={
            "errors": [
                {
                    "status": "404",
                    "code": "invalid",
                    "detail": "Does not exist.",
                    "source": {"pointer": "/data/attributes/sender_address_id"},
                }
            ]
        },
    )
    result = sc.create_labels(integration_id=1, orders=["o1", "o2"], sender_address_id=99)
    assert result.accepted == []
    assert result.rejected == {"o1": "Does not exist.", "o2": "Does not exist."}
    assert result.unaccounted == []


def test_a_202_that_is_not_an_object_is_uncertain(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(LABELS_URL, status=202, body="[]")
    with pytest.raises(TransientError) as info:
        sc.create_labels(integration_id=1, orders=["o1"])
    assert info.value.outcome_uncertain is True


# -- shipments --------------------------------------------------------------------------------------------------


def test_get_shipment_parses_a_ready_shipment(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments/shp-1", json={"data": SHIPMENT})
    shipment = sc.get_shipment("shp-1")

    assert isinstance(shipment, ShipmentInfo)
    assert shipment.shipment_id == "shp-1"
    assert shipment.order_number == "N1"
    assert shipment.external_reference_id == ""
    (parcel,) = shipment.parcels
    assert parcel.parcel_id == "383707309"
    assert parcel.status_code == "READY_TO_SEND"
    assert parcel.tracking_number == "3SYZXG8498635"
    assert parcel.tracking_url == "https://tracking.example/3SYZXG8498635"
    assert parcel.carrier == "postnl"
    assert parcel.label_url.endswith("/v3/parcels/383707309/documents/label")
    assert shipment.is_ready
    assert not shipment.is_pending
    assert shipment.failed_message is None


def with_status(code: str, message: str = "", errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    parcel = {**SHIPMENT["parcels"][0], "status": {"code": code, "message": message}}  # type: ignore[index]
    return {**SHIPMENT, "parcels": [parcel], "errors": errors or []}


def test_announcement_failed_keeps_the_carriers_message() -> None:
    failure = [
        {
            "status": "500",
            "code": "parcel_announcement_error",
            "detail": "Service error: An error occurred while connecting to the carrier.",
        }
    ]
    shipment = parse_shipment(with_status("ANNOUNCEMENT_FAILED", "Announcement Failed", failure))
    assert shipment.failed_message == "Service error: An error occurred while connecting to the carrier."
    assert shipment.parcels[0].errors == [shipment.failed_message]
    assert not shipment.is_ready
    assert not shipment.is_pending

    bare = parse_shipment(with_status("ANNOUNCEMENT_FAILED", "Announcement Failed"))
    assert bare.failed_message == "Announcement Failed"


@pytest.mark.parametrize(
    ("code", "ready", "pending", "cancelled"),
    [
        ("ANNOUNCING", False, True, False),
        ("READY_TO_SEND", True, False, False),
        ("EN_ROUTE_TO_SORTING_CENTER", True, False, False),  # "or later"
        ("DELIVERED", True, False, False),
        ("CANCELLED", False, False, True),
        ("", False, True, False),
    ],
)
def test_shipment_state_helpers(code: str, ready: bool, pending: bool, cancelled: bool) -> None:
    shipment = parse_shipment(with_status(code))
    assert (shipment.is_ready, shipment.is_pending, shipment.is_cancelled) == (ready, pending, cancelled)


def test_a_shipment_without_parcels_yet_is_pending() -> None:
    shipment = parse_shipment({"id": "s", "parcels": []})
    assert shipment.is_pending
    assert not shipment.is_ready


def test_multi_parcel_shipment_is_ready_only_when_all_are() -> None:
    first = {**SHIPMENT["parcels"][0]}  # type: ignore[index]
    second = {**first, "id": 2, "status": {"code": "ANNOUNCING"}}
    shipment = parse_shipment({**SHIPMENT, "parcels": [first, second]})
    assert not shipment.is_ready
    assert shipment.is_pending


def test_find_shipments_filters(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments", json={"data": [SHIPMENT]})
    found = sc.find_shipments(order_number="N1")
    assert [s.shipment_id for s in found] == ["shp-1"]
    assert mocked.calls[0].request.params == {"order_number": "N1", "page_size": "100"}

    sc.find_shipments(external_reference_id="ref-1")
    assert mocked.calls[1].request.params == {"external_reference_id": "ref-1", "page_size": "100"}

    with pytest.raises(ValueError, match="needs"):
        sc.find_shipments()


def test_list_shipments_filters_by_shipment_ids_in_one_get(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    mocked.get(f"{BASE}/v3/shipments", json={"data": [SHIPMENT, {**SHIPMENT, "id": "shp-2"}]})

    page = sc.list_shipments(shipment_ids=["shp-1", "shp-2"])

    assert [s.shipment_id for s in page.shipments] == ["shp-1", "shp-2"]
    assert page.next_cursor is None
    assert mocked.calls[0].request.params == {"shipment_uuids": "shp-1,shp-2", "page_size": "100"}
    assert [(c.method, c.path, c.status_code) for c in calls] == [("GET", "/v3/shipments", 200)]


def test_list_shipments_follows_the_link_header_cursor(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    link = (
        f'<{BASE}/v3/shipments?cursor=cj0xJnA9MjUz>; rel="prev", '
        f'<{BASE}/v3/shipments?ids=1%2C2&page_size=1&cursor=cD0yNTM1NDIyODI%3D>; rel="next"'
    )
    mocked.get(f"{BASE}/v3/shipments", json={"data": [SHIPMENT]}, headers={"Link": link})

    first = sc.list_shipments(parcel_ids=["1", "2"], page_size=1)
    sc.list_shipments(parcel_ids=["1", "2"], page_size=1, cursor=first.next_cursor)

    assert first.next_cursor == "cD0yNTM1NDIyODI="
    assert mocked.calls[0].request.params == {"ids": "1,2", "page_size": "1"}
    assert mocked.calls[1].request.params == {"ids": "1,2", "page_size": "1", "cursor": "cD0yNTM1NDIyODI="}


def test_list_shipments_other_filters(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v3/shipments", json={"data": []})

    assert sc.list_shipments(order_number="N1", integration_id=7, page_size=40).shipments == []
    assert mocked.calls[0].request.params == {"order_number": "N1", "integration_id": "7", "page_size": "40"}


def test_list_shipments_refuses_what_the_spec_does_not_allow(sc: SendcloudV3Client) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        sc.list_shipments(shipment_ids=[str(n) for n in range(101)])
    with pytest.raises(ValueError, match="page_size"):
        sc.list_shipments(shipment_ids=["a"], page_size=101)
    with pytest.raises(ValueError, match="filter"):
        sc.list_shipments()
    with pytest.raises(ValueError, match="comma"):
        sc.list_shipments(shipment_ids=["a,b"])
    with pytest.raises(TypeError):
        sc.list_shipments(shipment_ids="abc")


def test_list_shipments_errors_are_mapped_like_every_call(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE}/v3/shipments", status=503, body="")
    with pytest.raises(TransientError) as info:
        sc.list_shipments(shipment_ids=["a"])
    assert info.value.outcome_uncertain is False

    mocked.replace(responses.GET, f"{BASE}/v3/shipments", json={"data": {"not": "a list"}})
    with pytest.raises(TransientError, match="not what the API promises"):
        sc.list_shipments(shipment_ids=["a"])

    invalid_cursor = {"errors": [{"detail": "Invalid cursor", "status": "404", "code": "not_found"}]}
    mocked.replace(responses.GET, f"{BASE}/v3/shipments", status=404, json=invalid_cursor)
    with pytest.raises(NotFound, match="Invalid cursor"):
        sc.list_shipments(shipment_ids=["a"], cursor="bad")


# -- label download ---------------------------------------------------------------------------------------------


def test_download_label_returns_the_pdf(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    pdf = b"%PDF-1.4\n%fake\n"
    mocked.get(f"{BASE}/v3/parcels/7/documents/label", body=pdf, content_type="application/pdf")
    assert sc.download_label("7") == pdf
    assert mocked.calls[0].request.headers["Accept"] == "application/pdf"


def test_download_label_refuses_anything_but_a_pdf(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    mocked.get(f"{BASE}/v3/parcels/7/documents/label", body=b"<html>login</html>", content_type="text/html")
    with pytest.raises(TransientError) as info:
        sc.download_label("7")
    assert info.value.outcome_uncertain is False
    assert len(calls) == 1
    assert calls[0].error


def test_download_label_not_found(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    body = {"errors": [{"code": "not_found", "status": "404", "detail": "No Parcel matches the given query."}]}
    mocked.get(f"{BASE}/v3/parcels/7/documents/label", status=404, json=body)
    with pytest.raises(NotFound, match="No Parcel matches"):
        sc.download_label("7")


@pytest.mark.parametrize("module", [client_module, transport_module, errors_module, types_module, limits_module])
def test_the_http_modules_import_no_django_and_no_celery(module: ModuleType) -> None:
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"django", "celery", "webshop"}}
    http_only = {
        "sendcloud_integration.limits",
        *(f"sendcloud_integration.sendcloud.{m}" for m in ("client", "transport", "errors", "types")),
    }
    assert {name for name in imported if name.startswith("sendcloud_integration")} <= http_only


def test_download_labels_asks_for_many_parcels_in_one_get(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    pdf = b"%PDF-1.4\n%two pages\n"
    mocked.get(f"{BASE}/v3/parcel-documents/label", body=pdf, content_type="application/pdf")

    assert sc.download_labels(["7", "8", "9"]) == pdf

    request = mocked.calls[0].request
    assert request.url == f"{BASE}/v3/parcel-documents/label?parcels=7&parcels=8&parcels=9&paper_size=A6"
    assert request.headers["Accept"] == "application/pdf"
    assert [(c.method, c.path) for c in calls] == [("GET", "/v3/parcel-documents/label")]


def test_download_labels_refuses_what_the_spec_does_not_allow(sc: SendcloudV3Client) -> None:
    with pytest.raises(ValueError, match="1 to 20"):
        sc.download_labels([])
    with pytest.raises(ValueError, match="1 to 20"):
        sc.download_labels([str(n) for n in range(1, 22)])
    with pytest.raises(ValueError, match="paper_size"):
        sc.download_labels(["1"], paper_size="a6")
    with pytest.raises(ValueError, match="integer"):
        sc.download_labels(["shp-1"])
    with pytest.raises(TypeError):
        sc.download_labels("12")


def test_download_labels_errors(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    url = f"{BASE}/v3/parcel-documents/label"
    mocked.get(url, body=b"<html>busy</html>", content_type="text/html")
    with pytest.raises(TransientError) as info:
        sc.download_labels(["7", "8"])
    assert info.value.status_code == 200  # answered, just not with a PDF

    body = {"errors": [{"code": "not_found", "status": "404", "detail": "No Parcel matches the given query."}]}
    mocked.replace(responses.GET, url, status=404, json=body)
    with pytest.raises(NotFound, match="No Parcel matches"):
        sc.download_labels(["7", "8"])

    mocked.replace(responses.GET, url, status=401, json={"errors": [{"status": "401", "detail": "Invalid."}]})
    with pytest.raises(AuthenticationError):
        sc.download_labels(["7"])


# -- hostile answers ---------------------------------------------------------------------------------------


def test_credentials_echoed_as_basic_auth_never_reach_a_message_or_record(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, calls: list[CallRecord]
) -> None:
    """A server that echoes ``Authorization: Basic <base64(public:secret)>`` back must not leak it either."""
    basic = base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
    echoed = f"bad header Authorization: Basic {basic} (unpadded: {basic.rstrip('=')})"
    mocked.get(f"{BASE}/v3/shipments/z", status=400, json=errors((echoed, "")))
    with pytest.raises(ClientError) as info:
        sc.get_shipment("z")
    everything = info.value.message + repr(calls)
    assert basic not in everything
    assert basic.rstrip("=") not in everything
    assert "***" in info.value.message


@pytest.mark.parametrize("hostile", ["../integrations?x=", "a/b", "a?b", "a#b", "%2e%2e"])
def test_ids_from_answers_stay_inside_their_path_segment(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, hostile: str
) -> None:
    mocked.get(re.compile(rf"{re.escape(BASE)}/v3/.*"), json={"data": {"id": "x", "parcels": []}})
    sc.get_shipment(hostile)
    sent = mocked.calls[-1].request.url
    assert sent.startswith(f"{BASE}/v3/shipments/")
    assert "/v3/integrations" not in sent
    assert sent.removeprefix(f"{BASE}/v3/shipments/").count("/") == 0
    assert "?" not in sent


@pytest.mark.parametrize("hostile", ["", ".", ".."])
def test_ids_that_cannot_be_a_segment_are_refused_before_sending(sc: SendcloudV3Client, hostile: str) -> None:
    with pytest.raises(ValueError, match="not a usable id"):
        sc.get_shipment(hostile)
    with pytest.raises(ValueError, match="not a usable id"):
        sc.download_label(hostile)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_never_carries_the_credentials_away(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, status: int
) -> None:
    mocked.get(f"{BASE}/v3/shipments/s1", status=status, headers={"Location": "https://evil.test/steal"})
    mocked.get("https://evil.test/steal", json={"data": {}})
    with pytest.raises(ClientError, match=r"redirect .* to evil\.test; not followed"):
        sc.get_shipment("s1")
    assert [call.request.url for call in mocked.calls] == [f"{BASE}/v3/shipments/s1"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://tracking.example/abc", "https://tracking.example/abc"),
        ("http://t.example/1", "http://t.example/1"),
        ("javascript:alert(1)", ""),
        ("data:text/html,hi", ""),
        ("//evil.test/x", ""),
        ("ftp://x.example/a", ""),
    ],
)
def test_only_web_tracking_urls_are_kept(given: str, kept: str) -> None:
    info = parse_shipment(
        {"id": "s", "parcels": [{"id": 1, "tracking_url": given, "status": {"code": "READY_TO_SEND"}}]}
    )
    assert info.parcels[0].tracking_url == kept


# -- multicollo and shipping options ------------------------------------------------------------------------------


def test_create_labels_sends_an_orders_parcels(sc: SendcloudV3Client, mocked: responses.RequestsMock) -> None:
    mocked.post(LABELS_URL, status=202, json={"data": []})
    split = [{"parcel_items": [], "weight": {"value": "1.000", "unit": "kg"}}] * 2
    sc.create_labels(integration_id=70, orders=["o1", "o2"], parcels={"o1": split})
    assert json.loads(mocked.calls[0].request.body)["orders"] == [
        {"order_id": "o1", "parcels": split},
        {"order_id": "o2"},
    ]
    with pytest.raises(ValueError, match="1 to 50"):
        sc.create_labels(integration_id=70, orders=["o1"], parcels={"o1": split * 26})


def test_shipping_options_are_asked_per_destination_and_parsed(
    sc: SendcloudV3Client, mocked: responses.RequestsMock
) -> None:
    url = LABELS_URL.replace("/orders/create-labels-async", "/shipping-options")
    option = {
        "code": "postnl:standard",
        "name": "PostNL Standard",
        "carrier": {"code": "postnl", "name": "PostNL"},
        "functionalities": {"multicollo": True},
        "weight": {"min": {"value": "1", "unit": "g"}, "max": {"value": "23.001", "unit": "kg"}},
    }
    mocked.post(url, json={"data": [option, {"name": "no code"}], "message": None})
    mocked.post(url, json={"data": None})

    found = sc.shipping_options(from_country="NL", to_country="BE")
    none = sc.shipping_options(from_country="NL", to_country="JP")

    assert json.loads(mocked.calls[0].request.body) == {
        "from_address": {"country_code": "NL"},
        "to_address": {"country_code": "BE"},
        "calculate_quotes": False,
    }
    assert [(o.code, o.carrier_code, o.min_weight_kg, o.max_weight_kg, o.multicollo) for o in found] == [
        ("postnl:standard", "postnl", Decimal("0.001"), Decimal("23.001"), True)
    ]
    assert none == []


@pytest.mark.parametrize("status", [302, 303, 307])
def test_a_redirect_after_a_post_is_an_uncertain_outcome(
    sc: SendcloudV3Client, mocked: responses.RequestsMock, status: int
) -> None:
    """Sendcloud may have carried the request out before redirecting: look the labels up, never ask again."""
    mocked.post(LABELS_URL, status=status, headers={"Location": "https://elsewhere.test/x"})
    with pytest.raises(TransientError) as info:
        sc.create_labels(integration_id=7, orders=["o1"])
    assert info.value.outcome_uncertain is True
    assert [call.request.url for call in mocked.calls] == [LABELS_URL]
