"""``seed_demo``: what ``make run`` prints must work, and running it again must not pile up data."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from sendcloud_integration.models import SendcloudIntegration
from tests.commands.conftest import Output, run
from tests.factories import SendcloudIntegrationFactory, ShopFactory
from webshop.models import ApiToken, Order, Shop

pytestmark = pytest.mark.django_db

ORDERS = "40"


@pytest.fixture(autouse=True)
def debug_on(settings: Any) -> None:
    """``make run`` sets DJANGO_DEBUG=1; pytest-django turns DEBUG off, so turn it back on.

    The admin's password is hashed with a fast hasher: the real one takes most of a test's time.
    """
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def start_batch() -> Iterator[mock.Mock]:
    """Nothing is dispatched from a push made with the printed ``curl``."""
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as patched:
        yield patched


def seed(*args: str) -> Output:
    return run("seed_demo", "--orders", ORDERS, *args)


def printed_token(output: Output) -> str:
    match = re.search(r"^  (wms_\S+)$", output.stdout, re.MULTILINE)
    assert match, output.stdout
    return match.group(1)


def printed_curl(output: Output, marker: str) -> list[str]:
    """The shell words of the ``curl`` printed after the line containing ``marker``."""
    lines = output.stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if marker in line) + 1
    command: list[str] = []
    for line in lines[start:]:
        command.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    return shlex.split(" ".join(command))


def test_first_run_creates_everything_and_prints_how_to_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)

    output = seed("--port", "8123")

    shop = Shop.objects.get(slug="demo")
    assert Order.objects.filter(shop=shop).count() == 40
    integration = SendcloudIntegration.objects.get(shop=shop)
    assert (integration.public_key, integration.secret_key, integration.integration_id) == (
        "sandbox-public",
        "sandbox-secret",
        1001,
    )
    assert integration.shipping_option_code == "postnl:standard"
    token = ApiToken.objects.active().get(shop=shop)
    assert token.matches(printed_token(output))
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    password = re.search(r"user admin  password (\S+)  \(shown this once\)", output.stdout)
    assert password, output.stdout
    assert admin.check_password(password.group(1))
    assert "Admin: http://127.0.0.1:8123/admin/" in output.stdout
    batch_curl = printed_curl(output, "Read the batch")
    assert (
        batch_curl[2] == "http://127.0.0.1:8123/api/services/webshop/v1/orders/sendcloud/shipments/batches/<BATCH_ID>"
    )
    assert "<BATCH_ID>" in output.stdout.split("Read the batch", 1)[1].splitlines()[0]  # the hint names it


@pytest.mark.usefixtures("start_batch")
def test_the_printed_push_curl_works() -> None:
    output = seed()
    curl = printed_curl(output, "Push 20 shippable demo orders")
    url = curl[curl.index("-X") + 2]
    headers = dict(curl[index + 1].split(": ", 1) for index, word in enumerate(curl) if word == "-H")
    body = json.loads(curl[curl.index("-d") + 1])

    assert url == "http://127.0.0.1:8000/api/services/webshop/v1/orders/sendcloud/shipments/push"
    assert body["create_label"] is False
    assert len(body["order_ids"]) == 20
    client = APIClient()
    response = client.post(
        url.removeprefix("http://127.0.0.1:8000"),
        body,
        format="json",
        HTTP_AUTHORIZATION=headers["Authorization"],
    )
    assert response.status_code == 200, response.content
    assert response.json()["summary"]["queued_orders"] == 20  # every listed order is shippable


def test_running_again_duplicates_nothing_and_rotates_the_token() -> None:
    first = seed()
    second = seed()

    shop = Shop.objects.get(slug="demo")
    assert Order.objects.filter(shop=shop).count() == 40
    assert SendcloudIntegration.objects.filter(shop=shop).count() == 1
    assert get_user_model().objects.filter(username="admin").count() == 1
    active = ApiToken.objects.active().filter(shop=shop)
    assert active.count() == 1
    assert active.get().matches(printed_token(second))
    assert not active.get().matches(printed_token(first))
    assert ApiToken.objects.filter(shop=shop, revoked_at__isnull=False).count() == 1
    assert "(0 created now)" in second.stdout
    assert "1 older demo token(s) revoked" in second.stdout
    assert "password unchanged" in second.stdout
    assert "shown this once" not in second.stdout


def test_more_orders_tops_up_without_renumbering() -> None:
    seed()
    run("seed_demo", "--orders", "45")

    numbers = list(Order.objects.filter(shop__slug="demo").order_by("pk").values_list("order_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 45
    assert numbers[-1] == "DEMO-000045"


def test_admin_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-pass-123")

    output = seed()

    assert get_user_model().objects.get(username="admin").check_password("demo-pass-123")
    assert "password demo-pass-123" in output.stdout


def test_an_existing_integration_is_left_alone() -> None:
    SendcloudIntegrationFactory(shop=ShopFactory(slug="demo"), public_key="my-own-key", integration_id=7)

    seed()

    integration = SendcloudIntegration.objects.get(shop__slug="demo")
    assert (integration.public_key, integration.integration_id) == ("my-own-key", 7)


def test_refuses_without_debug(settings: Any) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError) as caught:
        seed()

    assert caught.value.returncode == 2
    assert str(caught.value).startswith("refusing to seed demo data with DEBUG off")
    assert "\n" not in str(caught.value)
    assert not Shop.objects.exists()
    assert not get_user_model().objects.exists()


def test_force_runs_without_debug(settings: Any) -> None:
    settings.DEBUG = False

    seed("--force")

    assert Shop.objects.filter(slug="demo").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "--port must be between 1 and 65535, not 0"),
        (["--orders", "-1"], "--orders must be between 0 and 100000, not -1"),
    ],
)
def test_bad_numbers_are_one_line(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=f"^{re.escape(message)}$"):
        run("seed_demo", *args)


def test_warns_when_the_worker_would_not_use_the_sandbox(settings: Any) -> None:
    settings.SENDCLOUD_API_BASE_URL = "https://panel.sendcloud.sc/api"

    output = seed("--sandbox-url", "http://127.0.0.1:9999/api/")

    assert output.stderr.startswith("Warning: SENDCLOUD_API_BASE_URL is https://panel.sendcloud.sc/api")
    assert (
        "Sendcloud sandbox: http://127.0.0.1:9999/api  (state: http://127.0.0.1:9999/_sandbox/state)" in output.stdout
    )
