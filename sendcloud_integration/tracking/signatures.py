"""Sendcloud's webhook signature: the hex HMAC-SHA256 of the raw request body under the signing key.

Always over the bytes as they arrived: parsing the JSON and serialising it again changes spacing, key
order and escapes, and with them the digest (peers got this wrong). Compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Sendcloud-Signature"


def sign(body: bytes, key: str) -> str:
    """The signature Sendcloud sends for ``body`` (lower-case hex)."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_valid(body: bytes, signature: str | None, key: str) -> bool:
    """Whether ``signature`` (the header's value) signs ``body`` under ``key``; False when either is missing."""
    if not signature or not key:
        return False
    expected = sign(body, key)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8", "replace"))
