"""Accounts and HTTP Basic authentication.

Sendcloud authenticates with HTTP Basic: the public key as user, the secret key as password. The
registry can change while the server runs (``POST /_sandbox/accounts``) so a test can rotate or
revoke keys and check that the client reports 401 instead of retrying.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Iterable

from sendcloud_sandbox.config import Account
from sendcloud_sandbox.jsonapi import ApiError

NO_CREDENTIALS = "Authentication credentials were not provided."
BAD_CREDENTIALS = "Invalid username/password."


class AccountRegistry:
    """Thread-safe map of public key to account."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self.replace_all(accounts)

    def replace_all(self, accounts: Iterable[Account]) -> None:
        """Forget every account and register ``accounts`` (used by reset)."""
        with self._lock:
            self._accounts = {account.public_key: account for account in accounts}

    def put(self, account: Account) -> None:
        """Add an account, or replace the one with the same public key (key rotation)."""
        with self._lock:
            self._accounts[account.public_key] = account

    def remove(self, public_key: str) -> bool:
        """Revoke an account's keys; False when it did not exist."""
        with self._lock:
            return self._accounts.pop(public_key, None) is not None

    def all(self) -> list[Account]:
        """Every registered account."""
        with self._lock:
            return list(self._accounts.values())

    def secret_for_integration(self, integration_id: int) -> str | None:
        """The secret key webhooks of an integration are signed with (its account's), or None."""
        with self._lock:
            for account in self._accounts.values():
                if integration_id in account.integration_ids:
                    return account.secret_key
        return None

    def authenticate(self, authorization: str | None) -> Account:
        """The account named by an ``Authorization: Basic`` header, or a 401 ApiError."""
        if not authorization:
            raise ApiError.single(401, "authentication_failed", NO_CREDENTIALS)
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise ApiError.single(401, "authentication_failed", BAD_CREDENTIALS)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ApiError.single(401, "authentication_failed", BAD_CREDENTIALS) from exc
        public_key, _, secret_key = decoded.partition(":")
        with self._lock:
            account = self._accounts.get(public_key)
        if account is None or not hmac.compare_digest(account.secret_key, secret_key):
            raise ApiError.single(401, "authentication_failed", BAD_CREDENTIALS)
        return account
