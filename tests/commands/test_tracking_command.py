"""``manage.py sendcloud_tracking``: the webhook, cancelling labels, one poll round."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.tracking.helpers import labelled_shipment
from webshop.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=SandboxConfig(rate_limits_enabled=False)).start()
    settings.SENDCLOUD_API_BASE_URL = server.url
    settings.SENDCLOUD_PUBLIC_URL = "https://shop.example"
    try:
        yield server
    finally:
        server.stop()


def run(*args: str) -> str:
    out = StringIO()
    call_command("sendcloud_tracking", *args, stdout=out)
    return out.getvalue()


def test_webhook_on_then_status(shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer) -> None:
    url = f"https://shop.example/webhooks/sendcloud/{integration.webhook_token}"
    assert run("--shop", "acme", "--webhook", "on") == f"acme: the webhook is on at {url}.\n"
    assert run("--shop", "acme", "--webhook", "status") == f"acme: the webhook is on at {url}.\n"
    assert run("--shop", "acme", "--webhook", "off").startswith("acme: the webhook is off")


def test_cancel_reports_each_order_and_fails_when_one_is_refused(
    shop: Shop, integration: SendcloudIntegration, sandbox: SandboxServer
) -> None:
    shipment = labelled_shipment(integration)  # the sandbox has no such shipment: refused
    with pytest.raises(CommandError) as raised:
        run("--shop", "acme", "--cancel", str(shipment.order_id))
    assert raised.value.returncode == 1
    assert "1 label(s) not cancelled." in str(raised.value)


def test_cancel_without_a_shop_is_a_usage_error(integration: SendcloudIntegration) -> None:
    with pytest.raises(CommandError, match="--shop is required"):
        run("--cancel", "1")


def test_poll_reports_what_it_read(integration: SendcloudIntegration, sandbox: SandboxServer) -> None:
    assert run("--poll").startswith("Read 0 parcel(s) in 0 request(s)")


def test_an_unknown_shop_is_a_usage_error(integration: SendcloudIntegration) -> None:
    with pytest.raises(CommandError) as raised:
        run("--shop", "nope", "--webhook", "status")
    assert raised.value.returncode == 2
