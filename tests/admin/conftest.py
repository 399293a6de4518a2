"""Fixtures for the staff (admin) tests: users with and without the re-push permission, and data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from sendcloud_integration.models import OrderShipment, Phase, PushBatch, SendcloudIntegration, ShipmentState, StartedBy
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory
from webshop.models import Order, Shop

#: A secret that is easy to search for in pages and logs.
SECRET = "sk-admin-test-9f2c7e1b-DO-NOT-LEAK"
PASSWORD = "a-long-test-password-1"

#: What a member of the support team may see without being able to send anything anywhere.
VIEW_PERMISSIONS = (
    "webshop.view_order",
    "webshop.view_shop",
    "sendcloud_integration.view_pushbatch",
    "sendcloud_integration.view_sendcloudapicall",
)


def grant(user: User, codenames: Iterable[str]) -> User:
    for dotted in codenames:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # fresh: the permission cache is per instance


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Users are created in almost every test here; the production hasher would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look at orders and batches but not re-push."""
    user = User.objects.create_user("viewer", "viewer@example.com", PASSWORD, is_staff=True)
    return grant(user, VIEW_PERMISSIONS)


@pytest.fixture
def repusher(db: None) -> User:
    """Limited staff with the re-push permission (and nothing else beyond viewing)."""
    user = User.objects.create_user("repusher", "repusher@example.com", PASSWORD, is_staff=True)
    return grant(user, (*VIEW_PERMISSIONS, "sendcloud_integration.repush_ordershipment"))


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(superuser: User) -> Client:
    return login(superuser)


@pytest.fixture
def secret_integration(shop: Shop) -> SendcloudIntegration:
    return SendcloudIntegrationFactory(shop=shop, secret_key=SECRET, public_key="pk-admin-test")


def make_batch(shop: Shop, **fields: object) -> PushBatch:
    values: dict[str, object] = {"started_by_kind": StartedBy.COMMAND, "started_by_label": "command test"}
    values.update(fields)
    return PushBatch.objects.create(shop=shop, **values)


def ship(order: Order, state: str, *, batch: PushBatch | None = None, **fields: object) -> OrderShipment:
    """Give ``order`` a shipment row in ``state`` (FAILED rows get a push-phase error by default)."""
    if state == ShipmentState.FAILED:
        fields.setdefault("failed_phase", Phase.PUSH)
        fields.setdefault("last_error", "Sendcloud refused this order: shipping_address.city: Field required")
        fields.setdefault("attempts", 1)
    return OrderShipment.objects.create(order=order, shop=order.shop, state=state, batch=batch, **fields)


@pytest.fixture
def other_shop(db: None) -> Shop:
    return ShopFactory(slug="globex", name="Globex")


__all__ = ["PASSWORD", "SECRET", "OrderFactory", "grant", "login", "make_batch", "ship"]
