"""Rate limiting behind a proxy: the client's address comes from X-Forwarded-For only when configured."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from tests.conftest import PUSH_URL
from wemasy.api.clientip import client_ip, parse_networks

pytestmark = pytest.mark.django_db


def request(remote: str, forwarded: str | None = None) -> Any:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/api/x", REMOTE_ADDR=remote, **extra)


def test_without_configuration_the_header_is_ignored(settings: Any) -> None:
    settings.API_TRUSTED_PROXY_COUNT, settings.API_TRUSTED_PROXIES = 0, []
    assert client_ip(request("10.0.0.5", "203.0.113.9")) == "10.0.0.5"


@pytest.mark.parametrize(
    ("count", "forwarded", "client"),
    [
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the left entry is the client's own (forgeable) claim
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.5"),  # fewer hops than proxies: not through them all, so the peer counts
        (1, None, "10.0.0.5"),
    ],
)
def test_a_proxy_count_takes_the_nth_address_from_the_right(
    settings: Any, count: int, forwarded: str | None, client: str
) -> None:
    settings.API_TRUSTED_PROXY_COUNT, settings.API_TRUSTED_PROXIES = count, []
    assert client_ip(request("10.0.0.5", forwarded)) == client


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not from a trusted proxy: the header is ignored
        ("10.0.0.5", "10.9.9.9", "10.9.9.9"),  # only proxies in the chain: the furthest
        ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_trusted_networks_skip_the_proxies_from_the_right(
    settings: Any, remote: str, forwarded: str, client: str
) -> None:
    settings.API_TRUSTED_PROXY_COUNT, settings.API_TRUSTED_PROXIES = 0, parse_networks("10.0.0.0/8, 192.168.1.7")
    assert client_ip(request(remote, forwarded)) == client


def test_networks_are_parsed_strictly() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8 ,192.168.1.7,")] == ["10.0.0.0/8", "192.168.1.7/32"]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        parse_networks("10.0.0.0/8, not-a-network")


def test_behind_one_proxy_anonymous_clients_get_buckets_of_their_own(settings: Any, api_client: APIClient) -> None:
    """Without the setting every client behind the balancer shares one window; with it, each has its own."""
    settings.API_RATE_LIMIT_PER_MINUTE = 2

    def remaining(client_address: str) -> int:
        response = api_client.post(
            PUSH_URL, {}, format="json", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address
        )
        assert response.status_code in (401, 429)
        return int(response["X-RateLimit-Remaining"])

    settings.API_TRUSTED_PROXY_COUNT = 0
    assert [remaining("203.0.113.1"), remaining("203.0.113.2")] == [1, 0]  # one shared bucket: the balancer's

    settings.API_TRUSTED_PROXY_COUNT = 1
    assert [remaining("203.0.113.3"), remaining("203.0.113.4"), remaining("203.0.113.3")] == [1, 1, 0]
