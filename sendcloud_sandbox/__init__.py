"""A local stand-in for the Sendcloud v3 API, for tests and benchmarks.

Standard library only, and independent of the rest of the project. Start it with
``python -m sendcloud_sandbox --port 8025`` or, in tests::

    from sendcloud_sandbox import SandboxConfig, SandboxServer

    with SandboxServer(port=0, config=SandboxConfig(label_delay_seconds=0.1)) as sandbox:
        ...  # point the client at sandbox.url; assert on sandbox.snapshot()
"""

from sendcloud_sandbox.app import SandboxApp
from sendcloud_sandbox.config import Account, ConfigError, SandboxConfig
from sendcloud_sandbox.faults import FaultConfigError, FaultSpec
from sendcloud_sandbox.server import SandboxServer

__all__ = [
    "Account",
    "ConfigError",
    "FaultConfigError",
    "FaultSpec",
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
]
