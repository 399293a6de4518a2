"""``POST /webhooks/sendcloud/<token>``: a verified delivery is stored as received, anything else is not."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sendcloud_integration.models import SendcloudIntegration, WebhookDelivery
from tests.tracking.helpers import WEBHOOK_URL, signed, status_body

pytestmark = pytest.mark.django_db

BODY = status_body("30000001", 11, "Delivered", 1_700_000_000_000)


def post(client: Client, token: str, body: bytes, **headers: str) -> object:
    return client.post(WEBHOOK_URL.format(token=token), data=body, content_type="application/json", **headers)


def test_a_signed_delivery_is_stored_byte_for_byte_and_answered_200(integration: SendcloudIntegration) -> None:
    response = post(Client(), integration.webhook_token, BODY, **signed(BODY))
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == BODY
    assert delivery.integration == integration
    assert response.json() == {"status": "received", "delivery": delivery.pk}


def test_a_missing_signature_is_401_and_nothing_is_stored(integration: SendcloudIntegration) -> None:
    response = post(Client(), integration.webhook_token, BODY)
    assert response.status_code == 401
    assert response.json()["message"] == "Missing or invalid Sendcloud-Signature."
    assert not WebhookDelivery.objects.exists()


def test_a_wrong_key_is_401_and_nothing_is_stored(integration: SendcloudIntegration) -> None:
    response = post(Client(), integration.webhook_token, BODY, **signed(BODY, key="not-the-secret"))
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_a_body_changed_after_signing_is_401(integration: SendcloudIntegration) -> None:
    tampered = BODY.replace(b"Delivered", b"Delivere!")
    response = post(Client(), integration.webhook_token, tampered, **signed(BODY))
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_a_re_serialised_body_is_401(integration: SendcloudIntegration) -> None:
    """What a receiver that parses before checking would verify: not what Sendcloud signed."""
    reserialised = json.dumps(json.loads(BODY)).encode()
    response = post(Client(), integration.webhook_token, reserialised, **signed(BODY))
    assert response.status_code == 401


def test_the_webhook_signature_key_is_used_when_set(integration: SendcloudIntegration) -> None:
    integration.webhook_signature_key = "webhook-signature-key"
    integration.save()
    assert post(Client(), integration.webhook_token, BODY, **signed(BODY)).status_code == 401
    assert post(Client(), integration.webhook_token, BODY, **signed(BODY, "webhook-signature-key")).status_code == 200


def test_an_unknown_token_is_404(integration: SendcloudIntegration) -> None:
    response = post(Client(), "no-such-token", BODY, **signed(BODY))
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_an_inactive_integration_receives_nothing(integration: SendcloudIntegration) -> None:
    SendcloudIntegration.objects.filter(pk=integration.pk).update(is_active=False)
    assert post(Client(), integration.webhook_token, BODY, **signed(BODY)).status_code == 404


def test_the_url_names_no_shop(integration: SendcloudIntegration) -> None:
    assert integration.shop.slug not in integration.webhook_token
    assert len(integration.webhook_token) >= 32


def test_get_is_405(integration: SendcloudIntegration) -> None:
    assert Client().get(WEBHOOK_URL.format(token=integration.webhook_token)).status_code == 405


def test_a_delivery_is_stored_even_when_the_broker_is_down(
    integration: SendcloudIntegration, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is the durable copy: a broker outage still answers 200, and the sweep sends it later."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("sendcloud_integration.pipeline.dispatch.publish", refuse)
    response = post(Client(), integration.webhook_token, BODY, **signed(BODY))
    assert response.status_code == 200
    assert WebhookDelivery.objects.filter(processed_at__isnull=True).count() == 1


def test_a_body_over_the_upload_limit_is_413_and_nothing_is_stored(
    integration: SendcloudIntegration, settings: object
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # type: ignore[attr-defined]
    big = b'{"action": "parcel_status_changed", "pad": "' + b"x" * 2000 + b'"}'
    response = post(Client(), integration.webhook_token, big, **signed(big))
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()


def test_every_delivery_is_counted_by_outcome_on_metrics(integration: SendcloudIntegration, settings: object) -> None:
    """``wemasy_webhook_deliveries_total`` moves once per delivery, under the outcome the receiver gave it."""
    from tests.api.test_metrics import TOKEN, scrape

    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]

    def count(outcome: str) -> float:
        return scrape().get(("wemasy_webhook_deliveries_total", frozenset({("outcome", outcome)})), 0.0)

    before = {outcome: count(outcome) for outcome in ("accepted", "bad_signature", "unknown_webhook")}
    assert post(Client(), integration.webhook_token, BODY, **signed(BODY)).status_code == 200
    assert post(Client(), integration.webhook_token, BODY, **signed(BODY, key="wrong")).status_code == 401
    assert post(Client(), integration.webhook_token, BODY).status_code == 401
    assert post(Client(), "no-such-token", BODY, **signed(BODY)).status_code == 404
    assert count("accepted") - before["accepted"] == 1
    assert count("bad_signature") - before["bad_signature"] == 2
    assert count("unknown_webhook") - before["unknown_webhook"] == 1
