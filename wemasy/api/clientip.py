"""The client's address for rate limiting, behind trusted proxies or not.

Without configuration the client is ``REMOTE_ADDR``: a header is only trusted when the operator says a
proxy adds it. Behind a load balancer every request's ``REMOTE_ADDR`` is the balancer, so all anonymous
and bad-token clients would share one bucket; two settings tell the service where the client really is:

- ``API_TRUSTED_PROXY_COUNT = N``: exactly N proxies sit in front and each appends the address it saw to
  ``X-Forwarded-For``; the client is the N-th address from the right (anything left of it may be forged).
  Only safe when the service cannot be reached except through those proxies; otherwise prefer the
  networks below, which also check who sent the header.
- ``API_TRUSTED_PROXIES = <networks>``: the proxies' networks; the chain (``X-Forwarded-For`` then
  ``REMOTE_ADDR``) is read from the right, skipping trusted addresses, and the first other one is the
  client. A request whose ``REMOTE_ADDR`` is not trusted is taken as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.0/8, 192.168.1.7"`` → networks; a single address is a network of one. Raises ValueError."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The address to count this request against (see the module docstring)."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    count: int = settings.API_TRUSTED_PROXY_COUNT
    networks: Sequence[Network] = settings.API_TRUSTED_PROXIES
    if not count and not networks:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if count:
        if not forwarded:
            return remote
        # Fewer hops than proxies configured: the request did not come through all of them, so nothing in
        # the header can be trusted; the peer itself is counted.
        return forwarded[-count] if len(forwarded) >= count else remote
    if not _trusted(remote, networks):
        return remote
    for address in reversed(forwarded):
        if not _trusted(address, networks):
            return address
    return forwarded[0] if forwarded else remote
