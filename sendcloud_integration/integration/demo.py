"""The demo ``make run`` shows: a shop with a sandbox integration, varied orders, a token and an admin login.

``seed_demo`` (the command) validates its flags, calls :func:`seed_demo` once and prints what it returns.
Safe to run on every ``make run``:

- The shop, the integration and the orders are created only when missing; orders are topped up to the
  number asked for, never duplicated.
- A token's raw value cannot be recovered (only its hash is stored), so every run issues a fresh demo
  token and revokes the previous ones, leaving exactly one demo token that works.
- The ``admin`` superuser is created once, with ``DEMO_ADMIN_PASSWORD`` or a generated password that is
  returned that one time; later runs leave it (and its password) alone.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Final

from django.contrib.auth import get_user_model
from django.db import transaction

from sendcloud_integration.integration.services import configure_sendcloud
from sendcloud_integration.models import SendcloudIntegration
from webshop.demo import DEMO_MIX, make_orders
from webshop.models import ApiToken, Order, Shop
from webshop.services import create_api_token, create_shop, revoke_api_token

DEMO_SHOP_SLUG: Final = "demo"
DEMO_SHOP_NAME: Final = "Demo shop"
DEMO_ORDER_PREFIX: Final = "DEMO"
#: Tokens with this name are the demo's own: each run revokes them and issues a fresh one.
DEMO_TOKEN_NAME: Final = "seed_demo"  # noqa: S105 - a label, not a secret
DEMO_ADMIN_USERNAME: Final = "admin"
DEMO_ADMIN_EMAIL: Final = "admin@example.com"
ADMIN_PASSWORD_ENV: Final = "DEMO_ADMIN_PASSWORD"  # noqa: S105 - the variable's name

#: The sandbox's default account (sendcloud_sandbox/README.md).
SANDBOX_PUBLIC_KEY: Final = "sandbox-public"
SANDBOX_SECRET_KEY: Final = "sandbox-secret"  # noqa: S105 - the public sandbox default
SANDBOX_INTEGRATION_ID: Final = 1001
SANDBOX_SHIPPING_OPTION: Final = "postnl:standard"

#: Order ids in the printed push ``curl``: enough to watch a batch run, short enough to paste.
CURL_ORDER_COUNT: Final = 20


@dataclass(frozen=True)
class DemoSeed:
    """What the demo has now, for the command to print."""

    shop: Shop
    shop_created: bool
    integration: SendcloudIntegration
    created_orders: int
    total_orders: int
    token: str
    revoked_tokens: int
    #: The new admin's password, when this run created the admin; None when it already existed.
    admin_password: str | None
    #: The first never-pushed demo orders that pass the push's checks: the ids of the printed ``curl``.
    push_order_ids: list[int]


#: A made-up Dutch EORI number for the demo shop.
DEMO_EORI_NUMBER = "NL000000000000"


def seed_demo(*, orders_wanted: int) -> DemoSeed:
    """Create what is missing of the demo, issue a fresh demo token, and say what there is."""
    with transaction.atomic():
        shop, shop_created = create_shop(slug=DEMO_SHOP_SLUG, name=DEMO_SHOP_NAME)
        integration = _integration(shop)
        created_orders = _top_up_orders(shop, orders_wanted)
        token, revoked = _fresh_token(shop)
        admin_password = _admin()
    return DemoSeed(
        shop=shop,
        shop_created=shop_created,
        integration=integration,
        created_orders=created_orders,
        total_orders=Order.objects.filter(shop=shop, order_number__startswith=f"{DEMO_ORDER_PREFIX}-").count(),
        token=token,
        revoked_tokens=revoked,
        admin_password=admin_password,
        push_order_ids=_shippable_order_ids(shop),
    )


def _integration(shop: Shop) -> SendcloudIntegration:
    """The sandbox integration, created with the sandbox defaults when missing.

    An existing one is left as it is: someone may have pointed the demo shop at other keys on
    purpose, and ``configure_sendcloud`` would overwrite every setting.
    """
    existing = SendcloudIntegration.objects.filter(shop=shop).first()
    if existing is not None:
        return existing
    integration, _ = configure_sendcloud(
        shop=shop,
        public_key=SANDBOX_PUBLIC_KEY,
        secret_key=SANDBOX_SECRET_KEY,
        integration_id=SANDBOX_INTEGRATION_ID,
        shipping_option_code=SANDBOX_SHIPPING_OPTION,
    )
    # The demo's exports to Switzerland are commercial: customs need the shop's EORI number.
    SendcloudIntegration.objects.filter(pk=integration.pk).update(sender_eori_number=DEMO_EORI_NUMBER)
    integration.sender_eori_number = DEMO_EORI_NUMBER
    return integration


def _top_up_orders(shop: Shop, wanted: int) -> int:
    """Create demo orders until the shop has ``wanted`` of them; returns how many were created.

    ``make_orders`` numbers new orders after the existing ``DEMO-`` ones, so topping up never
    collides with an order number already taken.
    """
    have = Order.objects.filter(shop=shop, order_number__startswith=f"{DEMO_ORDER_PREFIX}-").count()
    missing = max(0, wanted - have)
    if missing:
        make_orders(shop, missing, prefix=DEMO_ORDER_PREFIX, mix=DEMO_MIX)
    return missing


def _fresh_token(shop: Shop) -> tuple[str, int]:
    """Revoke the previous demo tokens and issue a new one; returns ``(raw token, revoked count)``."""
    previous = list(ApiToken.objects.active().filter(shop=shop, name=DEMO_TOKEN_NAME))
    for old in previous:
        revoke_api_token(token=old)
    issued = create_api_token(shop=shop, name=DEMO_TOKEN_NAME)
    return issued.raw, len(previous)


def _admin() -> str | None:
    """Create the ``admin`` superuser when missing; returns its password then, None otherwise."""
    users = get_user_model()
    if users._default_manager.filter(**{users.USERNAME_FIELD: DEMO_ADMIN_USERNAME}).exists():
        return None
    password = os.environ.get(ADMIN_PASSWORD_ENV) or secrets.token_urlsafe(12)
    users._default_manager.db_manager().create_superuser(DEMO_ADMIN_USERNAME, DEMO_ADMIN_EMAIL, password)
    return password


def _shippable_order_ids(shop: Shop) -> list[int]:
    """The first never-pushed demo orders that pass the push's checks."""
    return list(
        Order.objects.filter(
            shop=shop,
            type=Order.Type.CHECKOUT,
            status__in=Order.SHIPPABLE_STATUSES,
            shipping_address__isnull=False,
            shipment__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:CURL_ORDER_COUNT]
    )
