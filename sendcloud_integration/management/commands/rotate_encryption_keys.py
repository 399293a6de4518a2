"""``manage.py rotate_encryption_keys``: re-encrypt every stored secret with the newest key.

Rotation: put the new key first in ``FIELD_ENCRYPTION_KEYS`` (keep the old ones after it), deploy, run
this command, then drop the old keys. Exit 0 when done; 1 when a value cannot be decrypted with any of
the keys (nothing is changed for that value).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from webshop.management.base import OperatorCommand
from wemasy.encryption import UndecryptableValue, rotate_all


class Command(OperatorCommand):
    help = "Re-encrypt every secret stored at rest with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rewritten = rotate_all()
        except UndecryptableValue as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Re-encrypted {rewritten} row{'s' if rewritten != 1 else ''} with the newest key.")
