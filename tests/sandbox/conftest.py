"""Fixtures for the sandbox tests.

Plain pytest: nothing here needs Django (run with ``-p no:django`` or with pytest-django loaded;
no test asks for a database). Every test gets a fresh sandbox on a free port with fast timings and
rate limits off; tests about limits or timings override ``sandbox_config``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sendcloud_sandbox import SandboxConfig, SandboxServer
from tests.sandbox.helpers import Api


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        label_delay_seconds=0.2,
        rate_limits_enabled=False,
        seed=1234,
        timeout_seconds=1.0,
        slow_seconds=0.3,
        not_visible_seconds=0.4,
    )


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, config=sandbox_config).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[Api]:
    client = Api(sandbox)
    try:
        yield client
    finally:
        client.session.close()
