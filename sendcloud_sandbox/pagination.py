"""Cursor pagination as Sendcloud v3 does it: a base64 ``cursor`` query value and a ``Link`` header.

The cursor encodes an offset as ``o=<n>``, the format the v3 specs describe; an undecodable cursor is
the documented 404 "Invalid cursor".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from sendcloud_sandbox.jsonapi import ApiError

T = TypeVar("T")


def encode_cursor(offset: int) -> str:
    """The cursor that starts a page at ``offset``."""
    return base64.b64encode(f"o={offset}".encode()).decode("ascii")


def decode_cursor(cursor: str | None) -> int:
    """The offset in a cursor (0 without one); 404 "Invalid cursor" when it cannot be read."""
    if not cursor:
        return 0
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), validate=True).decode("ascii")
        fields = dict(part.split("=", 1) for part in text.split("&"))
        offset = int(fields["o"])
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise ApiError.single(404, "not_found", "Invalid cursor", title="Invalid cursor") from exc
    if offset < 0:
        raise ApiError.single(404, "not_found", "Invalid cursor", title="Invalid cursor")
    return offset


def page_size(raw: str | None, *, default: int, maximum: int) -> int:
    """The ``page_size`` parameter, clamped into 1..maximum."""
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise ApiError.single(400, "invalid", "A valid integer is required.", parameter="page_size") from exc
    return max(1, min(size, maximum))


def paginate(
    items: Sequence[T], *, offset: int, size: int, url: str, query: Mapping[str, list[str]]
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the ``Link`` header value pointing at the next/previous pages."""
    page = list(items[offset : offset + size])
    links: list[str] = []
    base_query = {key: values for key, values in query.items() if key != "cursor"}

    def link(target_offset: int, rel: str) -> str:
        params = {**base_query, "cursor": [encode_cursor(target_offset)]}
        return f'<{url}?{urlencode(params, doseq=True)}>; rel="{rel}"'

    if offset > 0:
        links.append(link(max(0, offset - size), "prev"))
    if offset + size < len(items):
        links.append(link(offset + size, "next"))
    return page, (", ".join(links) or None)
