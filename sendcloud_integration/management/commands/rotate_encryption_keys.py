"""``manage.py rotate_encryption_keys``: re-encrypt every stored secret with the newest key.

Rotation: put the new key first in ``FIELD_ENCRYPTION_KEYS`` (keep the old ones after it), deploy, run
this command, then drop the old keys. Exit 0 when done; 1 when some value cannot be decrypted with any of
the keys (that value is left as it is; every other one is rotated).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from webshop.management.base import OperatorCommand
from wemasy.encryption import rotate_all


class Command(OperatorCommand):
    help = "Re-encrypt every secret stored at rest with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        rotation = rotate_all()
        rows = rotation.rewritten
        self.stdout.write(f"Re-encrypted {rows} row{'s' if rows != 1 else ''} with the newest key.")
        if rotation.unreadable:
            raise CommandError(
                f"{rotation.unreadable} stored value(s) cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS "
                "and were left as they are: put the key that made them back in the list, or enter those secrets again."
            )
