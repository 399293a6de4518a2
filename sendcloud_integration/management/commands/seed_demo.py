"""``manage.py seed_demo [--port 8000] [--sandbox-url URL] [--orders 300] [--force]``: the demo ``make run`` shows.

Sets up everything a person needs to try the push within a minute of ``make run``: the shop
``demo``, its Sendcloud integration pointed at the sandbox's default account, a few hundred varied
orders, an API token and an admin login, and prints ready-to-paste ``curl`` commands.

It lives here, not in ``webshop``, because it is mostly about Sendcloud: the integration, the
shippable orders and the push endpoint.

Safe to run on every ``make run``:

- The shop, the integration and the orders are created only when missing; orders are topped up to
  ``--orders``, never duplicated.
- A token's raw value cannot be recovered (only its hash is stored), so every run issues a fresh
  demo token and revokes the previous ones, leaving exactly one demo token that works.
- The ``admin`` superuser is created once, with ``DEMO_ADMIN_PASSWORD`` or a generated password that
  is printed that one time; later runs leave it (and its password) alone.

It refuses to run with ``DEBUG`` off unless ``--force`` is given: a superuser with a printed password
does not belong in production.
"""

from __future__ import annotations

import os
import secrets
import uuid
from typing import Any, Final

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser
from django.db import transaction
from django.urls import reverse

from sendcloud_integration.integration.services import configure_sendcloud
from sendcloud_integration.models import SendcloudIntegration
from webshop.demo import DEMO_MIX, make_orders
from webshop.management.base import OperatorCommand, input_error
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
MAX_ORDERS: Final = 100_000


class Command(OperatorCommand):
    help = """\
Create the demo shop "demo" with its sandbox Sendcloud integration, orders, an API token and an admin \
user, and print how to use them. Idempotent: orders are topped up, never duplicated.

Each run issues a new demo API token and revokes the previous demo tokens (a token's raw value cannot \
be shown again). The superuser "admin" is created once, with the password in DEMO_ADMIN_PASSWORD or a \
generated one printed that time only. Refuses to run with DEBUG off unless --force is given.
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=8000, metavar="PORT", help="Port of the web server (default: %(default)s)."
        )
        parser.add_argument(
            "--sandbox-url",
            default="http://127.0.0.1:8025/api",
            metavar="URL",
            help="Base URL of the Sendcloud sandbox the worker should use (default: %(default)s).",
        )
        parser.add_argument(
            "--orders",
            type=int,
            default=300,
            metavar="N",
            help="How many demo orders the shop should have (default: %(default)s).",
        )
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (not for production).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise input_error(
                "refusing to seed demo data with DEBUG off: it creates a superuser with a known password "
                "(set DJANGO_DEBUG=1, or pass --force if you really mean it)"
            )
        port: int = options["port"]
        orders_wanted: int = options["orders"]
        if not 1 <= port <= 65535:
            raise input_error(f"--port must be between 1 and 65535, not {port}")
        if not 0 <= orders_wanted <= MAX_ORDERS:
            raise input_error(f"--orders must be between 0 and {MAX_ORDERS}, not {orders_wanted}")
        sandbox_url: str = options["sandbox_url"].rstrip("/")

        with transaction.atomic():
            shop, shop_created = create_shop(slug=DEMO_SHOP_SLUG, name=DEMO_SHOP_NAME)
            integration = self._integration(shop)
            created_orders = self._top_up_orders(shop, orders_wanted)
            token, revoked = self._fresh_token(shop)
            admin_password = self._admin()

        base = f"http://127.0.0.1:{port}"
        total_orders = Order.objects.filter(shop=shop, order_number__startswith=f"{DEMO_ORDER_PREFIX}-").count()
        out = self.stdout.write
        out(
            f"Demo shop {shop.slug!r} ({'created now' if shop_created else 'already there'}): {total_orders} demo "
            f"orders ({created_orders} created now), Sendcloud integration {integration.integration_id} "
            f"({integration.public_key})."
        )
        if settings.SENDCLOUD_API_BASE_URL.rstrip("/") != sandbox_url:
            self.stderr.write(
                f"Warning: SENDCLOUD_API_BASE_URL is {settings.SENDCLOUD_API_BASE_URL}, not the sandbox at "
                f"{sandbox_url}; the worker will push demo orders there."
            )
        out("")
        out(f"API token (new this run{f'; {revoked} older demo token(s) revoked' if revoked else ''}):")
        out(f"  {token}")
        out("")
        out(f"Push {CURL_ORDER_COUNT} shippable demo orders to the sandbox:")
        out(self._push_curl(shop, base, token))
        out("")
        out("Read the batch (put the batch id from the push answer, batch.id, in place of <BATCH_ID>):")
        out(self._batch_curl(base, token))
        out("")
        if admin_password is None:
            password = f"unchanged (shown when created; to reset: manage.py changepassword {DEMO_ADMIN_USERNAME})"
        else:
            password = f"{admin_password}  (shown this once)"
        out(f"Admin: {base}{reverse('admin:index')}  user {DEMO_ADMIN_USERNAME}  password {password}")
        out(f"Sendcloud sandbox: {sandbox_url}  (state: {sandbox_url.removesuffix('/api')}/_sandbox/state)")

    # --- the pieces --------------------------------------------------------------------------------------

    def _integration(self, shop: Shop) -> SendcloudIntegration:
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
        return integration

    def _top_up_orders(self, shop: Shop, wanted: int) -> int:
        """Create demo orders until the shop has ``wanted`` of them; returns how many were created.

        ``make_orders`` numbers new orders after the existing ``DEMO-`` ones, so topping up never
        collides with an order number already taken.
        """
        have = Order.objects.filter(shop=shop, order_number__startswith=f"{DEMO_ORDER_PREFIX}-").count()
        missing = max(0, wanted - have)
        if missing:
            make_orders(shop, missing, prefix=DEMO_ORDER_PREFIX, mix=DEMO_MIX)
        return missing

    def _fresh_token(self, shop: Shop) -> tuple[str, int]:
        """Revoke the previous demo tokens and issue a new one; returns ``(raw token, revoked count)``."""
        previous = list(ApiToken.objects.active().filter(shop=shop, name=DEMO_TOKEN_NAME))
        for old in previous:
            revoke_api_token(token=old)
        issued = create_api_token(shop=shop, name=DEMO_TOKEN_NAME)
        return issued.raw, len(previous)

    def _admin(self) -> str | None:
        """Create the ``admin`` superuser when missing; returns its password then, None otherwise."""
        users = get_user_model()
        if users._default_manager.filter(**{users.USERNAME_FIELD: DEMO_ADMIN_USERNAME}).exists():
            return None
        password = os.environ.get(ADMIN_PASSWORD_ENV) or secrets.token_urlsafe(12)
        users._default_manager.db_manager().create_superuser(DEMO_ADMIN_USERNAME, DEMO_ADMIN_EMAIL, password)
        return password

    def _push_curl(self, shop: Shop, base: str, token: str) -> str:
        """A ``curl`` for the push endpoint with the first never-pushed demo orders that pass our checks."""
        ids = list(
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
        body = f'{{"create_label": false, "order_ids": [{", ".join(map(str, ids))}]}}'
        return (
            f"  curl -sS -X POST {base}{reverse('sendcloud_api:shipments-push')} \\\n"
            f'    -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\\n'
            f"    -d '{body}'"
        )

    def _batch_curl(self, base: str, token: str) -> str:
        placeholder = uuid.UUID(int=0)
        path = reverse("sendcloud_api:batch-detail", args=[placeholder]).replace(str(placeholder), "<BATCH_ID>")
        return f'  curl -sS {base}{path} \\\n    -H "Authorization: Bearer {token}"'
