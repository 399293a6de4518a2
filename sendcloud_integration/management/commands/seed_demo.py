"""``manage.py seed_demo [--port 8000] [--sandbox-url URL] [--orders 300] [--force]``: the demo ``make run`` shows.

Everything a person needs to try the push within a minute of ``make run``: the shop ``demo``, its
Sendcloud integration pointed at the sandbox's default account, a few hundred varied orders, an API
token and an admin login (``integration.demo.seed_demo`` sets them up), and ready-to-paste ``curl``
commands (printed here). It refuses to run with ``DEBUG`` off unless ``--force`` is given: a superuser
with a printed password does not belong in production.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from django.conf import settings
from django.core.management.base import CommandParser
from django.urls import reverse

from sendcloud_integration.integration.demo import CURL_ORDER_COUNT, DEMO_ADMIN_USERNAME, seed_demo
from webshop.management.base import OperatorCommand, input_error

#: The most demo orders one run creates.
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

        seed = seed_demo(orders_wanted=orders_wanted)
        shop, integration = seed.shop, seed.integration
        base = f"http://127.0.0.1:{port}"
        out = self.stdout.write
        out(
            f"Demo shop {shop.slug!r} ({'created now' if seed.shop_created else 'already there'}): "
            f"{seed.total_orders} demo orders ({seed.created_orders} created now), Sendcloud integration "
            f"{integration.integration_id} "
            f"({integration.public_key})."
        )
        if settings.SENDCLOUD_API_BASE_URL.rstrip("/") != sandbox_url:
            self.stderr.write(
                f"Warning: SENDCLOUD_API_BASE_URL is {settings.SENDCLOUD_API_BASE_URL}, not the sandbox at "
                f"{sandbox_url}; the worker will push demo orders there."
            )
        out("")
        revoked = seed.revoked_tokens
        out(f"API token (new this run{f'; {revoked} older demo token(s) revoked' if revoked else ''}):")
        out(f"  {seed.token}")
        out("")
        out(f"Push {min(CURL_ORDER_COUNT, len(seed.push_order_ids))} shippable demo orders to the sandbox:")
        out(self._push_curl(seed.push_order_ids, base, seed.token))
        out("")
        out("Read the batch (put the batch id from the push answer, batch.id, in place of <BATCH_ID>):")
        out(self._batch_curl(base, seed.token))
        out("")
        if seed.admin_password is None:
            password = f"unchanged (shown when created; to reset: manage.py changepassword {DEMO_ADMIN_USERNAME})"
        else:
            password = f"{seed.admin_password}  (shown this once)"
        out(f"Admin: {base}{reverse('admin:index')}  user {DEMO_ADMIN_USERNAME}  password {password}")
        out(f"Sendcloud sandbox: {sandbox_url}  (state: {sandbox_url.removesuffix('/api')}/_sandbox/state)")

    # --- the printed commands -----------------------------------------------------------------------------

    def _push_curl(self, ids: list[int], base: str, token: str) -> str:
        """A ``curl`` for the push endpoint with the given order ids."""
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
