"""``create_shop``: creates a tenant once; running it again changes nothing."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from tests.commands.conftest import run
from webshop.models import Shop
from webshop.services import ServiceError, create_shop

pytestmark = pytest.mark.django_db


def test_creates_the_shop() -> None:
    out = run("create_shop", "acme", "--name", "Acme B.V.")

    shop = Shop.objects.get(slug="acme")
    assert shop.name == "Acme B.V."
    assert shop.is_active
    assert out.stdout == "Created shop acme (Acme B.V.).\n"


def test_name_defaults_to_the_slug() -> None:
    run("create_shop", "demo")

    assert Shop.objects.get(slug="demo").name == "demo"


def test_running_again_changes_nothing_not_even_the_name() -> None:
    run("create_shop", "acme", "--name", "Acme")
    before = Shop.objects.values().get(slug="acme")

    out = run("create_shop", "acme", "--name", "Something else")

    assert Shop.objects.count() == 1
    assert Shop.objects.values().get(slug="acme") == before
    assert "already exists; nothing changed" in out.stdout
    assert "'Acme'" in out.stdout


def test_service_reports_whether_it_created() -> None:
    first, created_first = create_shop(slug="acme", name="Acme")
    second, created_second = create_shop(slug="acme")

    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk


@pytest.mark.parametrize("slug", ["not a slug", "acme/shop", "", "x" * 65])
def test_bad_slug_is_a_command_error(slug: str) -> None:
    with pytest.raises(CommandError, match="invalid shop slug"):
        run("create_shop", slug)

    assert not Shop.objects.exists()


def test_overlong_name_is_refused() -> None:
    with pytest.raises(ServiceError, match="at most 200 characters"):
        create_shop(slug="acme", name="x" * 201)
