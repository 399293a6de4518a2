"""Fault injection: every kind, the schedules, the global fault rate, and run-time changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from sendcloud_sandbox import FaultConfigError, SandboxServer
from sendcloud_sandbox.faults import FaultInjector, FaultSpec, parse_fault_table
from tests.sandbox.helpers import Api, make_order

ORDERS = "POST /orders"
LABELS = "POST /orders/create-labels-async"


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _fresh(sandbox: SandboxServer) -> Api:
    """A client without connection reuse, so a dropped connection only affects one call."""
    client = Api(sandbox)
    client.session.headers["Connection"] = "close"
    return client


def test_rate_limit_fault_answers_429_and_stores_nothing(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "rate_limit", "times": 1}]})

    first = api.push([make_order(1)])
    second = api.push([make_order(1)])

    assert first.status_code == 429
    assert "Retry-After" not in first.headers
    assert second.status_code == 201
    assert api.state()["orders"]["items"][0]["times_upserted"] == 1


@pytest.mark.parametrize(("status", "body"), [(502, "html"), (503, "empty"), (500, "html"), (504, "empty")])
def test_server_errors_come_as_html_or_empty_bodies(sandbox: SandboxServer, api: Api, status: int, body: str) -> None:
    sandbox.set_faults({"GET /integrations": [{"kind": "server_error", "status": status, "body": body}]})

    response = api.get("/integrations")

    assert response.status_code == status
    if body == "html":
        assert response.headers["Content-Type"] == "text/html"
        assert f"<h1>{status}" in response.text
    else:
        assert response.content == b""


def test_a_server_error_after_commit_stores_the_work(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "server_error", "status": 502, "after_commit": True, "times": 1}]})

    assert api.push([make_order(1)]).status_code == 502
    assert api.state()["orders"]["count"] == 1


def test_slow_answers_normally_after_the_delay(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({"GET /integrations": [{"kind": "slow", "seconds": 0.3}]})

    started = time.monotonic()
    response = api.get("/integrations")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_never_answers_and_stores_nothing(sandbox: SandboxServer) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "timeout", "seconds": 0.6, "times": 1}]})
    client = _fresh(sandbox)

    with pytest.raises(requests.exceptions.ReadTimeout):
        client.post("/orders", [make_order(1)], timeout=0.2)

    assert client.state()["orders"]["count"] == 0
    assert _eventually(lambda: client.state()["requests"]["by_status"] == {"none": 1})  # logged at hang-up


def test_commit_then_timeout_stores_the_work_but_never_answers(sandbox: SandboxServer) -> None:
    sandbox.set_faults({LABELS: [{"kind": "commit_then_timeout", "seconds": 0.3, "times": 1}]})
    client = _fresh(sandbox)
    client.push([make_order(1)])

    with pytest.raises(requests.exceptions.ConnectionError):
        client.labels({"order_id": "ORD-1"})  # the server hangs up after 0.3 s without an answer

    assert client.state()["labels_per_order"] == {"ORD-1": 1}
    assert client.get("/shipments", params={"order_number": "N-00001"}).json()["data"]  # the label exists


def test_connection_reset_aborts_without_an_answer(sandbox: SandboxServer) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "connection_reset", "times": 1}]})
    client = _fresh(sandbox)

    with pytest.raises(requests.exceptions.ConnectionError):
        client.push([make_order(1)])

    assert client.state()["orders"]["count"] == 0
    assert client.push([make_order(1)]).status_code == 201


def test_connection_reset_mid_body_after_commit(sandbox: SandboxServer) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "connection_reset", "partial": True, "after_commit": True, "times": 1}]})
    client = _fresh(sandbox)

    # requests reports a reset in the middle of the body as ChunkedEncodingError, not ConnectionError.
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.push([make_order(n) for n in range(10)])

    assert client.state()["orders"]["count"] == 10


def test_malformed_json_keeps_a_success_status_and_stores_nothing(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "malformed_json", "times": 1}]})

    response = api.push([make_order(1)])

    assert response.status_code == 201
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()
    assert api.state()["orders"]["count"] == 0


def test_still_processing_is_the_documented_400(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "still_processing", "on_requests": [1]}]})

    response = api.push([make_order(1)])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "status": "400",
            "code": "invalid",
            "detail": "We are still processing a previous request. Please try again in a moment.",
            "source": {"pointer": "/data"},
        }
    ]
    assert api.push([make_order(1)]).status_code == 201


def test_a_retry_during_a_slow_batch_meets_the_still_processing_conflict(sandbox: SandboxServer) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "slow", "seconds": 1.5, "times": 1}]})
    results: dict[str, Any] = {}

    def first_attempt() -> None:
        results["first"] = Api(sandbox).push([make_order(1), make_order(2)])

    worker = threading.Thread(target=first_attempt)
    worker.start()
    api = Api(sandbox)
    assert _eventually(lambda: api.state()["in_flight_orders"] == 2)  # the first attempt holds its orders
    retry = api.push([make_order(2)])
    worker.join()

    assert retry.status_code == 400
    assert "still processing" in retry.json()["errors"][0]["detail"]
    assert results["first"].status_code == 201


def test_not_yet_visible_orders_appear_later(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "not_yet_visible", "seconds": 1.0, "times": 1}]})

    sendcloud_id = api.push([make_order(1)]).json()["data"][0]["id"]

    assert api.get(f"/orders/{sendcloud_id}").status_code == 404
    assert api.labels({"order_id": "ORD-1"}).json()["errors"][0]["status"] == "404"
    time.sleep(1.05)
    assert api.get(f"/orders/{sendcloud_id}").status_code == 200


def test_announcement_failed_ends_with_the_carrier_message_and_no_label(sandbox: SandboxServer, api: Api) -> None:
    message = "PostNL service error: address unknown"
    sandbox.set_faults({LABELS: [{"kind": "announcement_failed", "message": message, "times": 1}]})
    api.push([make_order(1)])

    entry = api.labels({"order_id": "ORD-1"}).json()["data"][0]
    time.sleep(0.25)
    shipment = api.get(f"/shipments/{entry['shipment_id']}").json()["data"]

    assert shipment["parcels"][0]["status"]["code"] == "ANNOUNCEMENT_FAILED"
    assert shipment["parcels"][0]["documents"] == []
    assert shipment["errors"] == [{"status": "500", "code": "parcel_announcement_error", "detail": message}]
    assert api.get(f"/parcels/{entry['parcel_id']}/documents/label").status_code == 404
    state = api.state()
    assert state["labels_per_order"] == {}
    assert state["shipments_per_order"] == {"ORD-1": 1}


def test_announcement_failed_probability_is_rolled_per_order(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({LABELS: [{"kind": "announcement_failed", "probability": 0.5}]}, seed=7)
    api.push([make_order(n) for n in range(20)])

    api.labels(*({"order_id": f"ORD-{n}"} for n in range(20)))
    time.sleep(0.25)

    statuses = api.state()["shipments"]["by_status"]
    assert statuses["ANNOUNCEMENT_FAILED"] > 0
    assert statuses["READY_TO_SEND"] > 0


def test_on_requests_counts_matching_requests_from_one(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({"GET *": [{"kind": "server_error", "status": 500, "on_requests": [2, 4]}]})

    statuses = [api.get("/integrations").status_code for _ in range(5)]

    assert statuses == [200, 500, 200, 500, 200]


def test_probability_faults_are_reproducible_with_a_seed(sandbox: SandboxServer, api: Api) -> None:
    def run() -> list[int]:
        sandbox.set_faults({"*": [{"kind": "server_error", "status": 503, "probability": 0.5}]}, seed=42)
        return [api.get("/integrations").status_code for _ in range(20)]

    first, second = run(), run()

    assert first == second
    assert {200, 503} == set(first)


def test_fault_rate_spreads_faults_over_the_chosen_kinds(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({}, fault_rate=0.5, fault_rate_kinds=["rate_limit", "server_error"], seed=3)

    statuses = [api.get("/integrations").status_code for _ in range(40)]

    assert 200 in statuses
    assert 429 in statuses
    assert {500, 502, 503, 504} & set(statuses)
    assert api.state()["requests"]["by_fault"].keys() <= {"rate_limit", "server_error"}


def test_faults_can_be_set_over_http(sandbox: SandboxServer, api: Api) -> None:
    response = api.admin("POST", "/faults", {"POST /orders": [{"kind": "server_error", "status": 504, "times": 1}]})

    assert response.status_code == 200
    assert response.json()["faults"][ORDERS][0]["remaining"] == 1
    assert api.push([make_order(1)]).status_code == 504
    assert api.push([make_order(1)]).status_code == 201
    assert api.admin("POST", "/faults", {"faults": {"POST /orders": [{"kind": "nope"}]}}).status_code == 400


def test_the_request_log_names_the_fault(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_faults({ORDERS: [{"kind": "server_error", "status": 502, "times": 1}]})

    api.push([make_order(1)])

    entry = api.admin("GET", "/requests", None).json()["data"][-1]
    assert entry["fault"] == "server_error"
    assert entry["status"] == 502
    assert entry["route"] == ORDERS


@pytest.mark.parametrize(
    "bad",
    [
        {"POST /orders": [{"kind": "unknown"}]},
        {"POST /orders": [{"kind": "slow", "seconds": -1}]},
        {"POST /orders": [{"kind": "server_error", "status": 418}]},
        {"POST /orders": [{"kind": "rate_limit", "times": 1, "probability": 0.5}]},
        {"/orders": [{"kind": "rate_limit"}]},
        {"POST /orders": [{"kind": "rate_limit", "colour": "red"}]},
        {"POST /orders": [{"kind": "rate_limit", "after_commit": True}]},
        {"GET *": [{"kind": "slow", "status": 502}]},
    ],
)
def test_malformed_fault_tables_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(FaultConfigError):
        parse_fault_table(bad)


def test_route_specific_kinds_do_not_fire_elsewhere() -> None:
    injector = FaultInjector({"*": [FaultSpec(kind="announcement_failed"), FaultSpec(kind="still_processing")]})

    assert injector.decide("GET /orders").kinds() == []
    assert injector.decide("POST /orders").kinds() == ["still_processing"]
    assert injector.decide(LABELS).kinds() == ["announcement_failed"]
