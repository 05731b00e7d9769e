"""Serving an ASGI app with uvicorn on a background thread, with the gRPC server's lifecycle:
`start()` returns once the port listens (and raises when it cannot be bound), `stop(grace)` stops accepting,
lets in-flight requests finish within `grace` seconds, then returns.

The gateway's process owns SIGTERM (the kit's `run`), so uvicorn must never install signal handlers: it
would take the signal from the gRPC side and stop only itself.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

__all__ = ["HttpServer", "bind_host"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the process's own handlers stay in place, see the module docstring


def bind_host(host: str) -> tuple[socket.AddressFamily, str]:
    """The gRPC host setting (`[::]`, `0.0.0.0`, `127.0.0.1`, `[::1]`) as a socket family and address.
    A wildcard binds IPv4's, as the kit's Prometheus port does: clusters without IPv6 refuse `::`."""
    bare = host.strip("[]")
    if bare in ("", "::", "0.0.0.0"):
        return socket.AF_INET, "0.0.0.0"
    return (socket.AF_INET6 if ":" in bare else socket.AF_INET), bare


class HttpServer:
    """One ASGI app on `host:port` (port 0: a free port, read back from `port` after `start`)."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        name: str = "gateway-http",
        tls: tuple[Path, Path] | None = None,
        unix_socket: Path | None = None,
    ) -> None:
        """`tls` (certificate chain, key): serve HTTPS with the public port's certificate, as the gRPC port
        does (`WAYLINE_TLS_CERT_FILE`, `WAYLINE_TLS_KEY_FILE`). `unix_socket`: serve on that socket, which
        only this user may reach, instead of `host:port` (the data plane's key lookups)."""
        self._app = app
        self._tls = tls
        self._unix_socket = unix_socket
        self._host, self._requested_port = host, port
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def address(self) -> str:
        """`http(s)://127.0.0.1:<port>` (or the bound address when it is not a wildcard)."""
        family, bound = bind_host(self._host)
        host = "127.0.0.1" if bound == "0.0.0.0" else (f"[{bound}]" if family == socket.AF_INET6 else bound)
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    def _bind(self) -> tuple[socket.socket, str]:
        if self._unix_socket is not None:
            self._unix_socket.unlink(missing_ok=True)  # left by a process that did not stop cleanly
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(self._unix_socket))
            self._unix_socket.chmod(0o600)
            return sock, str(self._unix_socket)
        family, bound = bind_host(self._host)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart without waiting for TIME_WAIT
        try:
            sock.bind((bound, self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock, f"{bound}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        sock, bound = self._bind()
        config = uvicorn.Config(
            self._app,
            log_config=None,  # the process's structlog/logging setup stays as it is
            access_log=False,  # request metrics cover it; one log line per event batch is noise
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=None,
            ssl_certfile=str(self._tls[0]) if self._tls else None,
            ssl_keyfile=str(self._tls[1]) if self._tls else None,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name=self._name)
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop(0)
            raise RuntimeError(f"the HTTP server on {bound} did not start")

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting; wait up to `grace` seconds (None: as long as requests take) for in-flight ones."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        # uvicorn waits this long for in-flight requests once it stops accepting (it types it int | None).
        server.config.timeout_graceful_shutdown = None if grace is None else math.ceil(grace)
        server.should_exit = True
        thread.join(None if grace is None else grace + 5.0)
        self._server = self._thread = None
