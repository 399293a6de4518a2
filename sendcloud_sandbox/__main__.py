"""Command line: ``python -m sendcloud_sandbox --port 8025 [--host 127.0.0.1] [--config FILE.json]``.

Flags override the matching keys of the config file, so a benchmark script can reuse one file and
vary only the fault rate or the rate-limit scale.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from sendcloud_sandbox.config import ConfigError, SandboxConfig
from sendcloud_sandbox.server import SandboxServer


def build_parser() -> argparse.ArgumentParser:
    """The CLI's options."""
    parser = argparse.ArgumentParser(
        prog="python -m sendcloud_sandbox", description="Run a local stand-in for the Sendcloud v3 API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port to bind (default 8025; 0 = any free port)")
    parser.add_argument("--config", help="JSON config file (see README.md)")
    parser.add_argument("--seed", type=int, help="seed for fault randomness")
    parser.add_argument("--fault-rate", type=float, help="share of API answers that are faulty, 0..1")
    parser.add_argument("--label-delay", type=float, help="seconds until a label is READY_TO_SEND")
    parser.add_argument("--rate-limit-scale", type=float, help="multiply every rate limit (0.1 = 10x stricter)")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn rate limiting off")
    parser.add_argument("--verbose", action="store_true", help="print an access log line per request")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The config file (or defaults) with the command-line overrides applied."""
    config = SandboxConfig.from_file(args.config) if args.config else SandboxConfig()
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.fault_rate is not None:
        overrides["fault_rate"] = args.fault_rate
    if args.label_delay is not None:
        overrides["label_delay_seconds"] = args.label_delay
    if args.rate_limit_scale is not None:
        overrides["rate_limit_scale"] = args.rate_limit_scale
    if args.no_rate_limits:
        overrides["rate_limits_enabled"] = False
    return config.updated(overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (OSError, ValueError, ConfigError) as exc:
        print(f"sendcloud_sandbox: bad config: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer(args.host, args.port, config, verbose=args.verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so it must run off the serving thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    accounts = ", ".join(account.public_key for account in config.accounts)
    print(f"Sendcloud sandbox listening on {server.url} (accounts: {accounts})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.app.stopping.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
