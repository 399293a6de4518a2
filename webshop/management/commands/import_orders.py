"""``manage.py import_orders --shop SLUG FILE``: upsert a shop's orders from JSON (``-`` = stdin).

stdout carries only the JSON result (``[{"id": 1, "order_number": "ORD-1001"}, …]``) so it can be
piped on; the summary for people goes to stderr.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from webshop.management.base import OperatorCommand
from webshop.services import ServiceError, get_shop_by_slug, import_orders


class Command(OperatorCommand):
    help = (
        "Import orders from a JSON file (- for stdin) in the format of docs/operations.md, creating or "
        "updating them by order number. All or nothing: one bad item and nothing is imported."
    )
    #: ``call_command(..., stdin=StringIO(...))`` feeds ``-`` in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, metavar="SLUG", help="The shop's slug.")
        parser.add_argument("file", metavar="FILE", help="Path of the JSON file, or - to read stdin.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["file"]
        shop = get_shop_by_slug(slug=options["shop"])
        source = "stdin" if path == "-" else path
        text = self._read(path, source, options.get("stdin") or sys.stdin)
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"invalid JSON in {source} at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        try:
            orders = import_orders(shop=shop, items=items)
        except ServiceError as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        result = [{"id": order.pk, "order_number": order.order_number} for order in orders]
        self.stdout.write(json.dumps(result))
        self.stderr.write(
            f"Imported {len(orders)} order{'' if len(orders) == 1 else 's'} into shop {shop.slug}.",
            style_func=str,
        )

    @staticmethod
    def _read(path: str, source: str, stdin: IO[Any]) -> str:
        """The input as text. UTF-8, tolerating the byte-order mark some Windows editors write."""
        try:
            if path == "-":
                raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
                return raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
            with open(path, encoding="utf-8-sig") as file:
                return file.read()
        except UnicodeDecodeError as exc:
            raise CommandError(f"cannot read {source}: not UTF-8 text (at byte {exc.start})") from exc
        except OSError as exc:
            raise CommandError(f"cannot read {source}: {exc.strerror or exc}") from exc
