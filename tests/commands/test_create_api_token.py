"""``create_api_token``: the raw token alone on stdout; only its hash in the database."""

from __future__ import annotations

import re

import pytest
from django.core.management.base import CommandError

from tests.commands.conftest import run
from webshop.models import ApiToken, Scope, Shop, hash_token
from webshop.services import InvalidScopeError, create_api_token, revoke_api_token

pytestmark = pytest.mark.django_db

RAW_TOKEN = re.compile(r"wms_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def test_prints_the_raw_token_alone_on_stdout(shop: Shop) -> None:
    out = run("create_api_token", "--shop", shop.slug, "--name", "ci")

    assert out.stdout.endswith("\n")
    raw = out.stdout.strip()
    assert RAW_TOKEN.fullmatch(raw), out.stdout
    assert out.stdout.count("\n") == 1
    assert raw not in out.stderr  # the note on stderr names the prefix only
    token = ApiToken.objects.get(shop=shop)
    assert token.prefix in out.stderr
    assert token.name == "ci"


def test_only_the_hash_is_stored(shop: Shop) -> None:
    raw = run("create_api_token", "--shop", shop.slug).stdout.strip()

    token = ApiToken.objects.get(shop=shop)
    assert token.token_hash == hash_token(raw)
    assert token.matches(raw)
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(raw in str(value) for value in stored.values())


def test_default_scope_is_shipments_push(shop: Shop) -> None:
    run("create_api_token", "--shop", shop.slug)

    assert ApiToken.objects.get(shop=shop).scopes == [Scope.SHIPMENTS_PUSH]


def test_scopes_are_parsed_deduplicated_and_stripped(shop: Shop) -> None:
    run("create_api_token", "--shop", shop.slug, "--scopes", " shipments:push ,shipments:push,")

    assert ApiToken.objects.get(shop=shop).scopes == ["shipments:push"]


def test_unknown_scope_is_refused_and_nothing_is_stored(shop: Shop) -> None:
    with pytest.raises(CommandError, match=r"unknown scope 'shipments:pull'; known scopes: shipments:push"):
        run("create_api_token", "--shop", shop.slug, "--scopes", "shipments:push,shipments:pull")

    assert not ApiToken.objects.exists()


def test_no_scope_at_all_is_refused(shop: Shop) -> None:
    with pytest.raises(InvalidScopeError, match="at least one scope"):
        create_api_token(shop=shop, scopes=[" ", ""])


def test_unknown_shop(db: None) -> None:
    with pytest.raises(CommandError, match="unknown shop 'nope'"):
        run("create_api_token", "--shop", "nope")


def test_disabled_shop_gets_a_warning_on_stderr(shop: Shop) -> None:
    shop.is_active = False
    shop.save()

    out = run("create_api_token", "--shop", shop.slug)

    assert RAW_TOKEN.fullmatch(out.stdout.strip())
    assert "disabled" in out.stderr


def test_revoke_keeps_the_first_revocation_time(shop: Shop) -> None:
    token = create_api_token(shop=shop, name="old").token

    revoke_api_token(token=token)
    first = token.revoked_at
    revoke_api_token(token=ApiToken.objects.get(pk=token.pk))

    assert first is not None
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first
    assert not ApiToken.objects.active().filter(pk=token.pk).exists()


def test_the_integration_scopes_are_known(shop: Shop) -> None:
    run("create_api_token", "--shop", shop.slug, "--scopes", "integrations:manage,integrations:read,shipments:push")
    token = ApiToken.objects.get()
    assert token.scopes == ["integrations:manage", "integrations:read", "shipments:push"]
    with pytest.raises(CommandError, match=r"known scopes: shipments:push, integrations:read, integrations:manage"):
        run("create_api_token", "--shop", shop.slug, "--scopes", "integrations:write")


def test_managing_the_integration_includes_reading_it(shop: Shop) -> None:
    token = create_api_token(shop=shop, scopes=["integrations:manage"]).token
    assert token.has_scope(Scope.INTEGRATIONS_READ)
    assert not token.has_scope(Scope.SHIPMENTS_PUSH)
    assert not create_api_token(shop=shop, scopes=["integrations:read"]).token.has_scope(Scope.INTEGRATIONS_MANAGE)
