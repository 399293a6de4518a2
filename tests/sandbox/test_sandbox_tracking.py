"""The sandbox after the label: statuses over time, cancel rules, return portal links, the webhook setting
and signed webhook deliveries (duplicated, shuffled, forged) as Sendcloud documents them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sendcloud_sandbox import SandboxServer
from tests.sandbox.helpers import INTEGRATION_ID, Api, make_order


def labelled(api: Api, n: int) -> dict[str, Any]:
    assert api.push([make_order(n)]).status_code == 201
    response = api.labels({"order_id": f"ORD-{n}"})
    assert response.status_code == 202
    return response.json()["data"][0]


def wait(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.02)
    raise AssertionError("timed out")


def parcel_status(api: Api, shipment_id: str) -> dict[str, Any]:
    return api.get(f"/shipments/{shipment_id}").json()["data"]["parcels"][0]["status"]


class TestProgression:
    def test_parcels_go_through_the_configured_statuses(self, sandbox: SandboxServer, api: Api) -> None:
        sandbox.update_config(label_delay_seconds=0.0, tracking_progression=[[0.2, 3], [0.4, 11]])
        shipment = labelled(api, 1)["shipment_id"]
        assert parcel_status(api, shipment) == {"code": "READY_TO_SEND", "message": "Ready to send"}
        wait(lambda: parcel_status(api, shipment)["code"] == "EN_ROUTE_TO_SORTING_CENTER")
        wait(lambda: parcel_status(api, shipment) == {"code": "DELIVERED", "message": "Delivered"})
        parcel = api.get(f"/shipments/{shipment}").json()["data"]["parcels"][0]
        assert parcel["tracking_number"]  # the label stays downloadable after the parcel moved on
        assert api.get(f"/parcels/{parcel['id']}/documents/label").status_code == 200

    @pytest.mark.parametrize("bad", [[[1, 12345]], [[2, 3], [1, 11]], [[1]], "x"])
    def test_a_bad_progression_is_refused(self, api: Api, bad: Any) -> None:
        assert api.admin("POST", "/config", {"tracking_progression": bad}).status_code == 400


class TestCancel:
    def test_a_ready_label_is_cancelled_at_once(self, sandbox: SandboxServer, api: Api) -> None:
        sandbox.update_config(label_delay_seconds=0.0)
        shipment = labelled(api, 1)["shipment_id"]
        response = api.post(f"/shipments/{shipment}/cancel")
        assert response.status_code == 200
        assert response.json() == {"data": {"status": "cancelled", "message": "Shipment has been cancelled"}}
        assert parcel_status(api, shipment)["code"] == "CANCELLED"
        state = api.state()
        assert state["labels_per_order"] == {}
        assert state["cancelled_labels_per_order"] == {"ORD-1": 1}

    def test_a_queued_cancellation_is_confirmed_later(self, sandbox: SandboxServer, api: Api) -> None:
        sandbox.update_config(label_delay_seconds=0.0, cancel_confirm_seconds=0.3)
        shipment = labelled(api, 1)["shipment_id"]
        response = api.post(f"/shipments/{shipment}/cancel")
        assert response.status_code == 202
        assert response.json() == {"data": {"status": "queued", "message": "Shipment cancellation has been queued"}}
        assert parcel_status(api, shipment)["code"] == "CANCELLATION_REQUESTED"
        wait(lambda: parcel_status(api, shipment)["code"] == "CANCELLED")

    @pytest.mark.parametrize(
        ("setup", "detail"),
        [
            ({"cancel_first": True}, "This shipment is already being cancelled."),
            ({"tracking_progression": [[0.0, 11]]}, "This shipment has been delivered and can no longer be cancelled."),
            (
                {"tracking_progression": [[0.0, 3]]},
                "The carrier does not accept the cancellation of a parcel that is on its way.",
            ),
            ({"cancel_window_seconds": 0.0}, "The cancellation period for this shipment has expired."),
        ],
    )
    def test_refusals_are_409_with_a_reason(
        self, sandbox: SandboxServer, api: Api, setup: dict[str, Any], detail: str
    ) -> None:
        first = setup.pop("cancel_first", False)
        sandbox.update_config(label_delay_seconds=0.0, **setup)
        shipment = labelled(api, 1)["shipment_id"]
        time.sleep(0.01)
        if first:
            api.post(f"/shipments/{shipment}/cancel")
        response = api.post(f"/shipments/{shipment}/cancel")
        assert response.status_code == 409
        assert response.json()["errors"] == [{"status": "409", "code": "invalid", "detail": detail}]

    def test_an_unknown_shipment_is_404(self, api: Api) -> None:
        assert api.post("/shipments/999/cancel").status_code == 404


class TestReturnPortal:
    def test_a_shipment_has_a_return_portal_link(self, sandbox: SandboxServer, api: Api) -> None:
        shipment = labelled(api, 1)["shipment_id"]
        response = api.get(f"/shipments/{shipment}/return-portal-url")
        assert response.status_code == 200
        assert response.json()["data"]["url"].startswith("https://")

    def test_without_a_return_portal_it_is_404(self, sandbox: SandboxServer, api: Api) -> None:
        sandbox.update_config(return_portal_enabled=False)
        shipment = labelled(api, 1)["shipment_id"]
        response = api.get(f"/shipments/{shipment}/return-portal-url")
        assert response.status_code == 404
        assert response.json()["errors"][0]["detail"] == "No return portal is configured for this shipment."


class TestIntegrationWebhook:
    def test_patch_sets_it_and_get_shows_it(self, api: Api) -> None:
        response = api.session.patch(
            api.url(f"/integrations/{INTEGRATION_ID}"),
            json={"webhook_active": True, "webhook_url": "https://shop.example/hook"},
            timeout=5,
        )
        assert (response.status_code, response.content) == (204, b"")
        data = api.get(f"/integrations/{INTEGRATION_ID}").json()["data"]
        assert (data["webhook_active"], data["webhook_url"]) == (True, "https://shop.example/hook")

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            ({"webhook_active": True}, "Webhook URL required when enable webhook is set to true"),
            ({"webhook_active": "yes"}, "Must be a valid boolean."),
            ({"webhook_url": "ftp://x"}, "Enter a valid URL."),
        ],
    )
    def test_bad_settings_are_400(self, api: Api, body: dict[str, Any], detail: str) -> None:
        response = api.session.patch(api.url(f"/integrations/{INTEGRATION_ID}"), json=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["errors"][0]["detail"] == detail

    def test_another_accounts_integration_is_404(self, api: Api) -> None:
        response = api.session.patch(api.url("/integrations/4242"), json={"webhook_active": False}, timeout=5)
        assert response.status_code == 404


class Receiver:
    """A webhook endpoint that records every delivery and answers ``status``."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, str]] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.deliveries.append((body, self.headers.get("Sendcloud-Signature", "")))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def valid(self) -> list[dict[str, Any]]:
        return [
            json.loads(body)
            for body, signature in self.deliveries
            if hmac.compare_digest(signature, hmac.new(b"sandbox-secret", body, hashlib.sha256).hexdigest())
        ]


@pytest.fixture
def receiver() -> Any:
    server = Receiver()
    yield server
    server.server.shutdown()


class TestWebhookDelivery:
    def test_each_status_change_is_one_signed_delivery(
        self, sandbox: SandboxServer, api: Api, receiver: Receiver
    ) -> None:
        sandbox.app.state.set_webhook(INTEGRATION_ID, active=True, url=receiver.url)
        sandbox.update_config(label_delay_seconds=0.1, tracking_progression=[[0.1, 3], [0.2, 11]])
        label = labelled(api, 1)
        wait(lambda: sandbox.snapshot(include_items=False)["webhooks"]["events_delivered"] == 3)
        valid = receiver.valid()
        assert len(valid) == len(receiver.deliveries) == 3
        assert [d["parcel"]["status"] for d in valid] == [
            {"id": 1000, "message": "Ready to send"},
            {"id": 3, "message": "En route to sorting center"},
            {"id": 11, "message": "Delivered"},
        ]
        first = valid[0]
        assert first["action"] == "parcel_status_changed"
        assert isinstance(first["timestamp"], int)
        assert first["parcel"]["id"] == label["parcel_id"]
        assert first["parcel"]["shipment_uuid"] == label["shipment_id"]
        assert [d["timestamp"] for d in valid] == sorted(d["timestamp"] for d in valid)

    def test_duplicates_forgeries_and_shuffling(self, sandbox: SandboxServer, api: Api, receiver: Receiver) -> None:
        sandbox.app.state.set_webhook(INTEGRATION_ID, active=True, url=receiver.url)
        sandbox.update_config(
            label_delay_seconds=0.0,
            tracking_progression=[[0.05, 3], [0.1, 5], [0.15, 11]],
            webhook_duplicate_rate=1.0,
            webhook_bad_signature_rate=1.0,
            webhook_reorder=True,
            webhook_max_delay_seconds=0.3,
        )
        for n in range(5):
            labelled(api, n)
        wait(lambda: (c := sandbox.snapshot(include_items=False)["webhooks"])["in_flight"] == 0 and c["events"] == 20)
        counters = sandbox.snapshot(include_items=False)["webhooks"]
        assert (counters["events"], counters["forged"], counters["sent"]) == (20, 20, 60)
        assert len(receiver.valid()) == 40  # every event twice; each forgery fails the check
        assert len({json.dumps(d, sort_keys=True) for d in receiver.valid()}) == 20

    def test_a_refused_delivery_is_retried(self, sandbox: SandboxServer, api: Api, receiver: Receiver) -> None:
        sandbox.app.state.set_webhook(INTEGRATION_ID, active=True, url=receiver.url)
        sandbox.update_config(label_delay_seconds=0.0, webhook_retry_seconds=0.1)
        receiver.status = 503
        labelled(api, 1)
        wait(lambda: len(receiver.deliveries) >= 2)
        receiver.status = 200
        wait(lambda: sandbox.snapshot(include_items=False)["webhooks"]["events_delivered"] == 1)
        counters = sandbox.snapshot(include_items=False)["webhooks"]
        assert counters["refused"] >= 2

    def test_no_webhook_no_delivery(self, sandbox: SandboxServer, api: Api, receiver: Receiver) -> None:
        sandbox.update_config(label_delay_seconds=0.0)
        labelled(api, 1)
        time.sleep(0.2)
        assert receiver.deliveries == []
