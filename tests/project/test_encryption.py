"""Secrets at rest: the Sendcloud secret key is encrypted in the database, and keys can be rotated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sendcloud_integration.integration.services import configure_sendcloud
from sendcloud_integration.models import IntegrationProblem, SendcloudIntegration, integration_problem
from tests.factories import SendcloudIntegrationFactory, ShopFactory
from webshop.models import Shop
from wemasy import encryption

ROOT = Path(__file__).resolve().parents[2]


def stored(integration: SendcloudIntegration) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT secret_key FROM {SendcloudIntegration._meta.db_table} WHERE id = %s",
            [integration.pk],
        )
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_the_secret_key_is_stored_encrypted_and_read_plain(shop: Shop) -> None:
    integration = SendcloudIntegrationFactory(shop=shop, secret_key="sk-the-real-secret-1234")
    raw = stored(integration)
    assert "sk-the-real-secret-1234" not in raw
    assert raw.startswith(encryption.TOKEN_PREFIX)
    assert SendcloudIntegration.objects.get(pk=integration.pk).secret_key == "sk-the-real-secret-1234"


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_newest_key(shop: Shop, settings: Any) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    integration = SendcloudIntegrationFactory(shop=shop, secret_key="sk-rotate-me")
    before = stored(integration)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115

    after = stored(integration)
    assert after != before
    assert Fernet(new).decrypt(after.encode()) == b"sk-rotate-me"
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can go now
    assert SendcloudIntegration.objects.get(pk=integration.pk).secret_key == "sk-rotate-me"


@pytest.mark.django_db
def test_a_dropped_key_reads_as_no_secret_and_can_be_repaired(
    shop: Shop, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable secret must not take every page and task down: the integration lacks credentials,
    says so, and staff can enter the secret again."""
    integration = SendcloudIntegrationFactory(shop=shop, secret_key="sk-lost")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key()]

    loaded = SendcloudIntegration.objects.get(pk=integration.pk)
    assert loaded.secret_key == ""
    assert integration_problem(loaded) is IntegrationProblem.NO_CREDENTIALS
    assert "cannot be decrypted" in caplog.text
    assert "sk-lost" not in caplog.text

    with pytest.raises(CommandError, match="1 stored value"):
        call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert stored(integration).startswith(encryption.TOKEN_PREFIX)  # left as it was, not overwritten

    configure_sendcloud(shop=shop, public_key=loaded.public_key, secret_key="sk-new", integration_id=1)
    assert SendcloudIntegration.objects.get(pk=integration.pk).secret_key == "sk-new"


@pytest.mark.django_db
def test_rotation_rotates_every_readable_row_even_past_an_unreadable_one(settings: Any) -> None:
    old, new, lost = Fernet.generate_key(), Fernet.generate_key(), Fernet.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    unreadable = SendcloudIntegrationFactory(shop=ShopFactory(slug="lost"), secret_key="sk-a")
    settings.FIELD_ENCRYPTION_KEYS = [old]
    readable = SendcloudIntegrationFactory(shop=ShopFactory(slug="kept"), secret_key="sk-b")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    with pytest.raises(CommandError, match="1 stored value"):
        call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert Fernet(new).decrypt(stored(readable).encode()) == b"sk-b"
    assert Fernet(lost).decrypt(stored(unreadable).encode()) == b"sk-a"


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_secrets_stored_in_plain_text_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("sendcloud_integration", "0002_repush_permission")])
    old = executor.loader.project_state([("sendcloud_integration", "0002_repush_permission")]).apps
    shop = old.get_model("webshop", "Shop").objects.create(slug="legacy", name="Legacy")
    legacy = old.get_model("sendcloud_integration", "SendcloudIntegration").objects.create(
        shop_id=shop.pk, public_key="pk", secret_key="sk-plain-legacy", integration_id=1
    )

    executor = MigrationExecutor(connection)
    executor.migrate([("sendcloud_integration", "0003_encrypt_secret_key")])
    # The model as it was at 0003: later migrations add columns the current model would read.
    at_0003 = executor.loader.project_state([("sendcloud_integration", "0003_encrypt_secret_key")]).apps
    integration = at_0003.get_model("sendcloud_integration", "SendcloudIntegration").objects.get(pk=legacy.pk)
    assert stored(integration).startswith(encryption.TOKEN_PREFIX)
    assert integration.secret_key == "sk-plain-legacy"

    executor = MigrationExecutor(connection)
    executor.migrate([("sendcloud_integration", "0002_repush_permission")])
    assert stored(integration) == "sk-plain-legacy"
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_production_without_keys_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_", "CELERY_"))},
        "DJANGO_SECRET_KEY": "a-production-like-secret-key-with-enough-length-0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is off" in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_a_malformed_key_is_refused_naming_which() -> None:
    with pytest.raises(Exception, match="key 2 is not a Fernet key"):
        encryption.parse_keys(f"{Fernet.generate_key().decode()}, not-a-key")


def test_make_run_gets_a_development_key_once(tmp_path: Path) -> None:
    first = encryption.development_key(tmp_path)
    assert encryption.development_key(tmp_path) == first
    Fernet(first)
    assert oct((tmp_path / "field-encryption.key").stat().st_mode & 0o777) == "0o600"
