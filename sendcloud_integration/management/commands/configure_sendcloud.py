"""``manage.py configure_sendcloud --shop SLUG --public-key K --integration-id N …`` with the secret key from
``SENDCLOUD_SECRET_KEY``, from standard input (``--secret-key-stdin``), or ``--secret-key S``.

Creates or updates the shop's Sendcloud integration to exactly the settings given (an optional
setting left out is cleared). The secret is never echoed: the confirmation shows it masked. A secret on
the command line lands in the process list and the shell's history, so the other two ways come first
in the help.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from sendcloud_integration.integration.services import configure_sendcloud
from webshop.management.base import OperatorCommand, input_error
from webshop.services import get_shop_by_slug

#: The environment variable the secret key can come from (kept out of the process list and history).
SECRET_ENV = "SENDCLOUD_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


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
    stealth_options = ("stdin",)  # tests pass a stream in place of standard input
    help = (
        "Create or update a shop's Sendcloud integration. Options left out are cleared; "
        "new keys also clear a previous 'credentials refused' state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, metavar="SLUG", help="The shop's slug.")
        parser.add_argument("--public-key", required=True, metavar="K", help="Sendcloud API public key.")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument(
            "--secret-key-stdin",
            action="store_true",
            help=f"Read the secret key from standard input (one line). Or set {SECRET_ENV}.",
        )
        secret.add_argument(
            "--secret-key",
            metavar="S",
            help=f"The secret key itself (visible in the process list and shell history; prefer {SECRET_ENV}).",
        )
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
        secret_key = self._secret_key(options)
        shop = get_shop_by_slug(slug=options["shop"])
        integration, created = configure_sendcloud(
            shop=shop,
            public_key=options["public_key"],
            secret_key=secret_key,
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

    def _secret_key(self, options: dict[str, Any]) -> str:
        """From ``--secret-key-stdin``, ``--secret-key`` or ``SENDCLOUD_SECRET_KEY``, in that order."""
        if options["secret_key_stdin"]:
            stream = options.get("stdin") or sys.stdin
            return stream.readline().strip()
        if options["secret_key"] is not None:
            return str(options["secret_key"])
        from_env = os.environ.get(SECRET_ENV, "")
        if not from_env:
            raise input_error(f"give the secret key: set {SECRET_ENV}, or pass --secret-key-stdin and pipe it in")
        return from_env


def _mask(key: str) -> str:
    """The first four characters, enough to tell two keys apart without exposing one."""
    return f"{key[:4]}…" if len(key) > 8 else "…"
