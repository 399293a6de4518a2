"""``configure_sendcloud``: create, then update the shop's integration; the secret is never echoed."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management.base import CommandError

from sendcloud_integration.integration.services import SendcloudConfigError, configure_sendcloud
from sendcloud_integration.models import SendcloudIntegration
from tests.commands.conftest import run
from webshop.models import Shop

pytestmark = pytest.mark.django_db

SECRET = "very-secret-value-123"


def configure(shop: Shop, *extra: str, secret: str = SECRET, public: str = "public-key-abc") -> str:
    args = ["--shop", shop.slug, "--public-key", public, "--secret-key", secret, "--integration-id", "1001"]
    out = run("configure_sendcloud", *args, *extra)
    assert secret not in out.stdout
    assert secret not in out.stderr
    return out.stdout


def test_creates_the_integration(shop: Shop) -> None:
    stdout = configure(shop, "--sender-address-id", "55", "--shipping-option-code", "postnl:standard")

    integration = SendcloudIntegration.objects.get(shop=shop)
    assert integration.public_key == "public-key-abc"
    assert integration.secret_key == SECRET
    assert integration.integration_id == 1001
    assert integration.sender_address_id == 55
    assert integration.shipping_option_code == "postnl:standard"
    assert integration.is_active
    assert integration.is_connected
    assert stdout.startswith("Created Sendcloud integration for shop acme:")
    assert integration.masked_secret in stdout
    assert stdout.count("\n") == 1


def test_updates_it_to_exactly_the_settings_given(shop: Shop) -> None:
    configure(shop, "--sender-address-id", "55", "--shipping-option-code", "postnl:standard")

    stdout = configure(shop, "--inactive")

    integration = SendcloudIntegration.objects.get(shop=shop)
    assert SendcloudIntegration.objects.count() == 1
    assert stdout.startswith("Updated Sendcloud integration")
    assert not integration.is_active
    assert integration.sender_address_id is None
    assert integration.shipping_option_code == ""


def test_new_keys_clear_a_refused_connection(shop: Shop) -> None:
    configure(shop)
    SendcloudIntegration.objects.filter(shop=shop).update(is_connected=False, connection_error="401 Unauthorized")

    configure(shop, secret="a-brand-new-secret")

    integration = SendcloudIntegration.objects.get(shop=shop)
    assert integration.secret_key == "a-brand-new-secret"
    assert integration.is_connected
    assert integration.connection_error == ""


def test_same_keys_keep_a_refused_connection_visible(shop: Shop) -> None:
    configure(shop)
    SendcloudIntegration.objects.filter(shop=shop).update(is_connected=False, connection_error="401 Unauthorized")

    configure(shop, "--shipping-option-code", "dhl:standard")

    integration = SendcloudIntegration.objects.get(shop=shop)
    assert not integration.is_connected
    assert integration.connection_error == "401 Unauthorized"


def test_service_returns_created_flag(shop: Shop) -> None:
    _, created = configure_sendcloud(shop=shop, public_key="p", secret_key="s", integration_id=1)
    _, created_again = configure_sendcloud(shop=shop, public_key="p", secret_key="s", integration_id=2)

    assert (created, created_again) == (True, False)
    assert SendcloudIntegration.objects.get(shop=shop).integration_id == 2


@pytest.mark.parametrize(
    ("flag", "value"), [("--integration-id", "0"), ("--integration-id", "abc"), ("--sender-address-id", "-3")]
)
def test_bad_ids_are_one_line_errors(shop: Shop, flag: str, value: str) -> None:
    args = ["--shop", shop.slug, "--public-key", "p", "--secret-key", "s", "--integration-id", "1", flag, value]

    with pytest.raises(CommandError, match=f"{flag} must be a positive integer"):
        run("configure_sendcloud", *args)

    assert not SendcloudIntegration.objects.exists()


def test_blank_secret_is_refused(shop: Shop) -> None:
    with pytest.raises(SendcloudConfigError, match="secret key must not be empty"):
        configure_sendcloud(shop=shop, public_key="p", secret_key="  ", integration_id=1)


def test_unknown_shop(db: None) -> None:
    with pytest.raises(CommandError, match="unknown shop 'nope'"):
        run(
            "configure_sendcloud",
            *["--shop", "nope", "--public-key", "p", "--secret-key", "s", "--integration-id", "1"],
        )


def test_the_secret_can_come_from_the_environment_out_of_the_process_list(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDCLOUD_SECRET_KEY", "secret-from-the-environment")
    out = run("configure_sendcloud", "--shop", shop.slug, "--public-key", "public-key-abc", "--integration-id", "7")
    assert SendcloudIntegration.objects.get(shop=shop).secret_key == "secret-from-the-environment"
    assert "secret-from-the-environment" not in out.stdout + out.stderr


def test_the_secret_can_come_from_standard_input(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDCLOUD_SECRET_KEY", "not-this-one")
    out = run(
        "configure_sendcloud",
        *["--shop", shop.slug, "--public-key", "public-key-abc", "--integration-id", "7", "--secret-key-stdin"],
        stdin=StringIO("secret-from-a-pipe\n"),
    )
    assert SendcloudIntegration.objects.get(shop=shop).secret_key == "secret-from-a-pipe"
    assert "secret-from-a-pipe" not in out.stdout + out.stderr


def test_without_any_secret_it_says_where_to_put_one(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDCLOUD_SECRET_KEY", raising=False)
    with pytest.raises(CommandError, match="set SENDCLOUD_SECRET_KEY, or pass --secret-key-stdin") as info:
        run("configure_sendcloud", "--shop", shop.slug, "--public-key", "p", "--integration-id", "7")
    assert info.value.returncode == 2
    assert not SendcloudIntegration.objects.exists()


def test_two_sources_of_the_secret_are_refused(shop: Shop) -> None:
    with pytest.raises(CommandError, match="not allowed with argument"):
        run(
            "configure_sendcloud",
            *["--shop", shop.slug, "--public-key", "p", "--integration-id", "7", "--secret-key", "s"],
            "--secret-key-stdin",
        )
