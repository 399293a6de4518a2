"""``manage.py configure_sendcloud --shop SLUG --public-key K --secret-key S --integration-id N …``.

Creates or updates the shop's Sendcloud integration to exactly the settings given (an optional
setting left out is cleared). The secret is never echoed: the confirmation shows it masked.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sendcloud_integration.integration.services import configure_sendcloud
from webshop.management.base import OperatorCommand
from webshop.services import get_shop_by_slug


def parse_id(value: str | int, flag: str) -> int:
    """A Sendcloud id from the command line; a typo becomes one clear line instead of a usage dump."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise CommandError(f"{flag} must be a positive integer, not {value!r}")
    return number


class Command(OperatorCommand):
    help = (
        "Create or update a shop's Sendcloud integration. Options left out are cleared; "
        "new keys also clear a previous 'credentials refused' state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, metavar="SLUG", help="The shop's slug.")
        parser.add_argument("--public-key", required=True, metavar="K", help="Sendcloud API public key.")
        parser.add_argument("--secret-key", required=True, metavar="S", help="Sendcloud API secret key.")
        parser.add_argument(
            "--integration-id",
            required=True,
            metavar="N",
            help="Sendcloud shop integration id.",
        )
        parser.add_argument("--sender-address-id", metavar="N", help="Sender address id.")
        parser.add_argument(
            "--shipping-option-code",
            default="",
            metavar="CODE",
            help="Default shipping option, e.g. postnl:standard.",
        )
        parser.add_argument("--inactive", action="store_true", help="Store the integration switched off.")

    def handle(self, *args: Any, **options: Any) -> None:
        integration_id = parse_id(options["integration_id"], "--integration-id")
        sender_address_id = (
            None
            if options["sender_address_id"] is None
            else parse_id(options["sender_address_id"], "--sender-address-id")
        )
        shop = get_shop_by_slug(slug=options["shop"])
        integration, created = configure_sendcloud(
            shop=shop,
            public_key=options["public_key"],
            secret_key=options["secret_key"],
            integration_id=integration_id,
            sender_address_id=sender_address_id,
            shipping_option_code=options["shipping_option_code"],
            active=not options["inactive"],
        )
        self.stdout.write(
            f"{'Created' if created else 'Updated'} Sendcloud integration for shop {shop.slug}: "
            f"integration {integration.integration_id}, "
            f"public key {_mask(integration.public_key)}, secret {integration.masked_secret}, "
            f"sender address {integration.sender_address_id or 'default'}, "
            f"shipping option {integration.shipping_option_code or 'default'}, "
            f"{'active' if integration.is_active else 'inactive'}."
        )


def _mask(key: str) -> str:
    """The first four characters, enough to tell two keys apart without exposing one."""
    return f"{key[:4]}…" if len(key) > 8 else "…"
