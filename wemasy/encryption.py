"""Secrets at rest: values encrypted with a key from the environment, and keys that can be rotated.

``FIELD_ENCRYPTION_KEYS`` holds one or more Fernet keys (``cryptography``), comma-separated, newest
first. Values are encrypted with the first key and decrypted with whichever key made them
(``MultiFernet``), so rotation is: put a new key first, deploy, run ``manage.py rotate_encryption_keys``
(re-encrypts every stored value with the new key), then drop the old key. A database dump alone reveals
no secret. Nothing here logs a key or a value.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models

logger = logging.getLogger(__name__)

#: Fernet tokens are url-safe base64 that starts with version byte 0x80: "gAAAAA".
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 - a format marker, not a secret


#: The command that prints a new key, for the messages that ask for one.
MAKE_A_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class UndecryptableValue(ImproperlyConfigured):
    """A stored value that none of the configured keys decrypts (a key was dropped before rotating)."""


def parse_keys(text: str) -> list[bytes]:
    """``"k1,k2"`` → the keys, checked: each must be a Fernet key (32 url-safe base64-encoded bytes)."""
    keys = [part.strip().encode() for part in text.split(",") if part.strip()]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {number} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"make one with: {MAKE_A_KEY}"
            ) from None
    return keys


def development_key(var_dir: Path) -> bytes:
    """The key ``make run`` uses: generated once under ``var/`` (never for production)."""
    path = var_dir / "field-encryption.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created exclusively: processes starting together all end up with the one key written first
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


@functools.cache
def _ring(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def key_ring() -> MultiFernet:
    from django.conf import settings

    return _ring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return key_ring().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return key_ring().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS: was a key removed "
            "before `manage.py rotate_encryption_keys` ran?"
        ) from None


def is_encrypted(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


class EncryptedTextField(models.TextField):
    """Text stored encrypted, read as plain text. ``max_length`` limits the plain text (forms, checks).

    Encryption is not deterministic, so the column can be neither searched nor unique; it is meant for
    secrets that are only ever read whole.
    """

    description = "Text, encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        """The plain text; "" when no configured key decrypts it (logged), never an exception.

        A value none of the keys can read (a key removed before rotating, a wrong key deployed) must not
        take down every page and task that loads its row: it reads as "no secret", so the integration is
        reported as lacking credentials until staff enter the secret again, and the stored value is kept.
        """
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except UndecryptableValue:
            model = self.model._meta.label if hasattr(self, "model") else "?"
            logger.error("%s.%s: a stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS", model, self.name)
            return ""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        return name, "wemasy.encryption.EncryptedTextField", args, kwargs


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted fields, and those fields' names."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


@dataclass(frozen=True)
class Rotation:
    rewritten: int
    #: Values no configured key decrypts: left as they are, to be entered again (or the old key restored).
    unreadable: int


def rotate_all() -> Rotation:
    """Re-encrypt every stored encrypted value with the newest key, row by row; report what it could not read.

    The stored values are read as they are in the database (not through the field, which reads an
    unreadable value as ""), so an unreadable one is counted and left alone, never overwritten, and every
    other row is still rotated.
    """
    rewritten = unreadable = 0
    for model, names in encrypted_fields():
        fields = {f.name: f.column for f in model._meta.concrete_fields}
        quoted = ", ".join(connection.ops.quote_name(str(fields[name])) for name in names)
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(str(fields[model._meta.pk.name if model._meta.pk else "id"]))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {quoted} FROM {table}")  # noqa: S608 - names from the model
            rows = cursor.fetchall()
        for row_pk, *stored in rows:
            plain: dict[str, str] = {}
            for name, value in zip(names, stored, strict=True):
                if not value:
                    continue
                try:
                    plain[name] = decrypt(value)
                except UndecryptableValue:
                    unreadable += 1
            if plain:
                rewritten += model._default_manager.filter(pk=row_pk).update(**plain)
    return Rotation(rewritten=rewritten, unreadable=unreadable)
