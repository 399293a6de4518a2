"""Per-account rate limits: 100 unsafe/min with 15/s bursts, 1000 GET/min, 429 without Retry-After."""

from __future__ import annotations

import pytest
import requests

from sendcloud_sandbox import Account, SandboxConfig, SandboxServer
from sendcloud_sandbox.ratelimit import Limits, RateLimiter
from tests.sandbox.helpers import Api, make_order


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(label_delay_seconds=0.1)  # rate limits on, documented numbers


@pytest.fixture
def frozen_clock(sandbox: SandboxServer) -> None:
    """Every request lands in the same instant, so burst tests do not depend on machine speed."""
    sandbox.app.limiter = RateLimiter(Limits(100, 15, 1000), clock=lambda: 1000.0)


@pytest.mark.usefixtures("frozen_clock")
def test_a_burst_of_more_than_15_unsafe_requests_per_second_gets_429(api: Api) -> None:
    statuses = [api.push([make_order(n)]).status_code for n in range(16)]

    assert statuses[:15] == [201] * 15
    assert statuses[15] == 429


@pytest.mark.usefixtures("frozen_clock")
def test_429_is_a_jsonapi_error_without_retry_after(api: Api) -> None:
    for n in range(15):
        api.push([make_order(n)])

    response = api.push([make_order(99)])

    assert response.status_code == 429
    assert response.json()["errors"][0]["status"] == "429"
    assert "Retry-After" not in response.headers
    assert api.state()["orders"]["count"] == 15


def test_the_per_minute_limit_scales(sandbox: SandboxServer, api: Api) -> None:
    sandbox.update_config(rate_limit_scale=0.1, unsafe_per_second=1000)  # 10 per minute, no burst cap

    statuses = [api.push([make_order(n)]).status_code for n in range(11)]

    assert statuses == [201] * 10 + [429]


def test_gets_have_their_own_budget(sandbox: SandboxServer, api: Api) -> None:
    sandbox.update_config(rate_limit_scale=0.005)  # 5 GETs per minute

    statuses = [api.get("/integrations").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
    assert api.push([make_order(1)]).status_code == 201


def test_limits_are_per_account(sandbox: SandboxServer, api: Api) -> None:
    sandbox.update_config(rate_limit_scale=0.005)
    sandbox.add_account(Account(public_key="other", secret_key="other-secret"))
    for _ in range(5):
        api.get("/integrations")

    assert api.get("/integrations").status_code == 429
    assert Api(sandbox, auth=("other", "other-secret")).get("/integrations").status_code == 200


def test_limits_can_be_turned_off(sandbox: SandboxServer, api: Api) -> None:
    sandbox.update_config(rate_limits_enabled=False)

    assert {api.push([make_order(n)]).status_code for n in range(20)} == {201}


def test_sandbox_endpoints_are_never_limited(sandbox: SandboxServer) -> None:
    sandbox.update_config(rate_limit_scale=0.001)

    statuses = {requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=5).status_code for _ in range(5)}

    assert statuses == {200}


def test_the_sliding_windows_let_requests_through_again() -> None:
    now = [0.0]
    limiter = RateLimiter(Limits(unsafe_per_minute=3, unsafe_per_second=2, safe_per_minute=1), clock=lambda: now[0])

    assert [limiter.allow("a", unsafe=True) for _ in range(3)] == [True, True, False]  # burst of 2
    now[0] = 1.5
    assert [limiter.allow("a", unsafe=True) for _ in range(2)] == [True, False]  # minute budget of 3
    now[0] = 60.5
    assert limiter.allow("a", unsafe=True)
    assert limiter.allow("a", unsafe=False)
    assert not limiter.allow("a", unsafe=False)
    assert limiter.allow("b", unsafe=False)


def test_scaled_limits_never_drop_to_zero() -> None:
    assert Limits.scaled(100, 15, 1000, 0.001) == Limits(1, 1, 1)
    assert Limits.scaled(100, 15, 1000, 0.1) == Limits(10, 1, 100)
