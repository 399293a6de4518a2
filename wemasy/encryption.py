"""Secrets at rest: values encrypted with a key from the environment, and keys that can be rotated.

``FIELD_ENCRYPTION_KEYS`` holds one or more Fernet keys (``cryptography``), comma-separated, newest
first. Values are encrypted with the first key and decrypted with whichever key made them
(``MultiFernet``), so rotation is: put a new key first, deploy, run ``manage.py rotate_encryption_keys``
(re-encrypts every stored value with the new key), then drop the old key. A database dump alone reveals
no secret. Nothing here logs a key or a value.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models

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
        if value is None or value == "":
            return value
        return decrypt(value)

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


def rotate_all() -> int:
    """Re-encrypt every stored encrypted value with the newest key; returns the number of rows rewritten.

    Each value is read (decrypted with whichever key made it) and written back (encrypted with the first
    key), row by row: secrets are few, and a row-by-row update never holds the table.
    """
    rewritten = 0
    for model, names in encrypted_fields():
        for row in model._default_manager.values("pk", *names).iterator():
            values = {name: row[name] for name in names if row[name]}
            if values:
                rewritten += model._default_manager.filter(pk=row["pk"]).update(**values)
    return rewritten
