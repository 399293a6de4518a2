"""``manage.py create_api_token --shop SLUG [--name NAME] [--scopes a,b]``: issue an API token.

Only the raw token goes to stdout, so scripts can capture it with ``TOKEN=$(manage.py …)``; every
note for the person at the terminal goes to stderr.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from webshop.management.base import OperatorCommand
from webshop.models import Scope
from webshop.services import create_api_token, get_shop_by_slug


class Command(OperatorCommand):
    help = (
        "Issue an API token for a shop and print the raw token, alone, on stdout. "
        "Only its hash is stored: it cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, metavar="SLUG", help="The shop's slug.")
        parser.add_argument("--name", default="", metavar="NAME", help="A label to recognise the token by.")
        parser.add_argument(
            "--scopes",
            default=Scope.SHIPMENTS_PUSH.value,
            metavar="SCOPE,...",
            help=f"Comma-separated scopes (default: %(default)s; known: {', '.join(Scope.values)}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = options["scopes"].split(",")
        shop = get_shop_by_slug(slug=options["shop"])
        issued = create_api_token(shop=shop, name=options["name"], scopes=scopes)
        self.stdout.write(issued.raw)
        token = issued.token
        self.stderr.write(
            f"Issued token {token.prefix}… for shop {shop.slug} with scopes {', '.join(token.scopes)}. "
            "Store it now: it cannot be shown again.",
            style_func=str,
        )
        if not shop.is_active:
            self.stderr.write(f"Warning: shop {shop.slug} is disabled; its tokens are refused until it is enabled.")
