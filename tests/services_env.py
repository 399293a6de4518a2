"""Prints ``export`` lines for the PostgreSQL and Redis that answer on localhost (used by ``make test``).

Variables already set win. A service that does not answer is left out, and the tests that need it
are skipped with a reason that says so.
"""

from __future__ import annotations

import os
import shlex
import socket

CANDIDATES = {
    "DATABASE_URL": ("127.0.0.1", 5432, "postgres://postgres@127.0.0.1:5432/wemasy"),
    "REDIS_URL": ("127.0.0.1", 6379, "redis://127.0.0.1:6379/15"),
}


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> None:
    for name, (host, port, url) in CANDIDATES.items():
        if os.environ.get(name):
            print(f"export {name}={shlex.quote(os.environ[name])}")
        elif answers(host, port):
            print(f"export {name}={shlex.quote(url)}")
        else:
            print(f"echo 'make test: nothing answers on {host}:{port}; {name} left unset' >&2")


if __name__ == "__main__":
    main()
