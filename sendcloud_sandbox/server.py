"""The HTTP transport: a threaded stdlib server in front of :class:`SandboxApp`.

Only this module touches sockets. It speaks HTTP/1.1 with keep-alive (clients use connection pools)
and turns the application's outcomes into real network behaviour: normal answers, a silent hang-up
(timeouts), or a TCP reset (SO_LINGER 0), optionally after part of the body was sent.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from sendcloud_sandbox.app import SandboxApp
from sendcloud_sandbox.config import Account, SandboxConfig
from sendcloud_sandbox.jsonapi import ApiError
from sendcloud_sandbox.web import Delivery, Outcome, Request, Response, error_response


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server that never waits for sleeping fault threads when it closes."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: SandboxApp, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, asks the app, delivers the outcome."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "SendcloudSandbox/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = self._content_length()
        if length is None:
            return
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request.build(self.command, self.path, dict(self.headers.items()), body, f"http://{host}")
        self._deliver(self.server.app.handle(request))

    def _content_length(self) -> int | None:
        """The body length, or None after refusing a body the sandbox cannot read."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._refuse(ApiError.single(411, "length_required", "Send a Content-Length header."))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(ApiError.single(400, "invalid", "Bad Content-Length header."))
            return None
        return length

    def _refuse(self, error: ApiError) -> None:
        self.close_connection = True  # the unread body makes the connection unusable
        self._write(error_response(error))

    def _deliver(self, outcome: Outcome) -> None:
        if outcome.delivery is Delivery.DROP:
            self.close_connection = True
            return
        if outcome.delivery is Delivery.RESET:
            if outcome.partial and outcome.response is not None:
                self._write(outcome.response, body_limit=len(outcome.response.body) // 2)
            self._reset()
            return
        if outcome.response is not None:
            self._write(outcome.response)

    def _write(self, response: Response, body_limit: int | None = None) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            # Say so when closing after this answer; otherwise a pooling client may reuse the
            # connection before it sees the close and lose its next request.
            self.send_header("Connection", "close")
        self.end_headers()
        body = response.body if body_limit is None else response.body[:body_limit]
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the TCP connection with RST instead of a clean close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class SandboxServer:
    """The sandbox on a real port, in a background thread or in the foreground.

    ``SandboxServer(port=0)`` picks a free port; read it back from :attr:`port` or :attr:`url`.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None, *, verbose: bool = False
    ) -> None:
        self.app = SandboxApp(config)
        self._httpd = _HTTPServer((host, port), self.app, verbose)
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked)."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the ``/_sandbox`` endpoints live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL a client is configured with: ``http://host:port/api``."""
        return f"{self.base_url}/api"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return at once."""
        self.app.webhooks.start()
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sendcloud-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or Ctrl-C in the CLI)."""
        self._serving = True
        self.app.webhooks.start()
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving, wake sleeping fault threads and close the socket."""
        self.app.stopping.set()
        self.app.webhooks.stop()
        if self._serving:  # shutdown() would wait forever for a loop that never started
            self._httpd.shutdown()
            self._serving = False
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Conveniences that forward to the app, so tests need one object.

    @property
    def config(self) -> SandboxConfig:
        """The current configuration."""
        return self.app.config

    def update_config(self, **changes: object) -> SandboxConfig:
        """Change config values (JSON form) while running, e.g. ``label_delay_seconds=0``."""
        return self.app.update_config(changes)

    def set_faults(
        self,
        faults: dict[str, object] | None = None,
        *,
        fault_rate: float | None = None,
        fault_rate_kinds: list[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Replace the fault table (see README) and optionally the random-fault settings."""
        self.app.set_faults(faults, fault_rate=fault_rate, fault_rate_kinds=fault_rate_kinds, seed=seed)

    def add_account(self, account: Account) -> None:
        """Register or rotate an account while running."""
        self.app.add_account(account)

    def reset(self, *, clear_faults: bool = False, reset_accounts: bool = False) -> None:
        """Clear state, request log and counters."""
        self.app.reset(clear_faults=clear_faults, reset_accounts=reset_accounts)

    def snapshot(self, *, include_items: bool = True) -> dict[str, object]:
        """Same JSON as ``GET /_sandbox/state`` (incl. ``duplicate_labels``)."""
        return self.app.snapshot(include_items=include_items)

    def request_log(self, limit: int | None = None) -> list[dict[str, object]]:
        """Same JSON as ``GET /_sandbox/requests``."""
        return self.app.request_log(limit)
