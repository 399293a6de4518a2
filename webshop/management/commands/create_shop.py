"""``manage.py create_shop SLUG [--name NAME]``: create a shop (a tenant), idempotently."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from webshop.management.base import OperatorCommand
from webshop.services import create_shop


class Command(OperatorCommand):
    help = "Create a shop (a tenant). Running it again for the same slug changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", metavar="SLUG", help="The shop's unique slug, e.g. acme.")
        parser.add_argument("--name", metavar="NAME", help="Display name (default: the slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str | None = options["name"]
        shop, created = create_shop(slug=options["slug"], name=name)
        if created:
            self.stdout.write(f"Created shop {shop.slug} ({shop.name}).")
        elif name is not None and name.strip() and name.strip() != shop.name:
            self.stdout.write(f"Shop {shop.slug} already exists; nothing changed (it keeps its name {shop.name!r}).")
        else:
            self.stdout.write(f"Shop {shop.slug} already exists; nothing changed.")
