"""The adapter's calls after the label: cancel, return portal link, the integration's webhook."""

from __future__ import annotations

import json

import pytest
import responses

from sendcloud_integration.sendcloud.client import SendcloudV3Client
from sendcloud_integration.sendcloud.errors import Conflict, NotFound, TransientError

BASE = "https://sendcloud.test/api"


def client() -> SendcloudV3Client:
    return SendcloudV3Client(base_url=BASE, public_key="pk", secret_key="sk")


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "queued"),
    [
        (200, {"data": {"status": "cancelled", "message": "Shipment has been cancelled"}}, False),
        (202, {"data": {"status": "queued", "message": "Shipment cancellation has been queued"}}, True),
    ],
)
def test_cancel_reads_the_spec_answers(status: int, body: dict[str, object], queued: bool) -> None:
    responses.post(f"{BASE}/v3/shipments/abc/cancel", status=status, json=body)
    answer = client().cancel_shipment("abc")
    assert answer.queued is queued
    assert answer.message == body["data"]["message"]  # type: ignore[index]


@responses.activate
def test_a_refused_cancellation_carries_sendclouds_words() -> None:
    detail = "This shipment is already being cancelled."
    responses.post(
        f"{BASE}/v3/shipments/abc/cancel",
        status=409,
        json={"errors": [{"status": "409", "code": "invalid", "detail": detail}]},
    )
    with pytest.raises(Conflict) as raised:
        client().cancel_shipment("abc")
    assert [e.detail for e in raised.value.errors] == [detail]


@responses.activate
def test_the_return_portal_link_and_its_absence() -> None:
    responses.get(f"{BASE}/v3/shipments/abc/return-portal-url", json={"data": {"url": "https://r.example/x"}})
    responses.get(f"{BASE}/v3/shipments/def/return-portal-url", status=404, json={"errors": []})
    assert client().return_portal_url("abc") == "https://r.example/x"
    with pytest.raises(NotFound):
        client().return_portal_url("def")


@responses.activate
def test_setting_the_webhook_sends_the_spec_fields_and_takes_the_204() -> None:
    responses.patch(f"{BASE}/v3/integrations/1001", status=204)
    client().set_integration_webhook(1001, active=True, url="https://shop.example/webhooks/sendcloud/t")
    assert json.loads(responses.calls[0].request.body) == {
        "webhook_active": True,
        "webhook_url": "https://shop.example/webhooks/sendcloud/t",
    }


def test_turning_the_webhook_on_needs_a_url() -> None:
    with pytest.raises(ValueError, match="URL is required"):
        client().set_integration_webhook(1001, active=True, url="")


@responses.activate
def test_a_200_with_an_unreadable_body_to_a_patch_is_transient() -> None:
    responses.patch(f"{BASE}/v3/integrations/1001", status=200, body="not json")
    with pytest.raises(TransientError):
        client().set_integration_webhook(1001, active=False, url="https://shop.example/x")


@responses.activate
def test_reading_the_webhook_settings() -> None:
    responses.get(
        f"{BASE}/v3/integrations/1001",
        json={"data": {"id": 1001, "webhook_active": True, "webhook_url": "https://shop.example/x"}},
    )
    held = client().get_integration_webhook(1001)
    assert (held.active, held.url) == (True, "https://shop.example/x")
