"""nginx as a child of the gateway's process (ADR 105): rendered, checked and started once the control plane
is ready, restarted if it dies, reloaded when its certificates change, told at once of a change made through
this replica, drained on SIGTERM.

nginx's master stays in the foreground (`daemon off`), so the gateway owns it as it owns its threads. Drain:
SIGQUIT, nginx's graceful stop: it closes the public port, lets the calls in progress finish, then exits;
after the grace, SIGTERM, then SIGKILL. The control plane's own gRPC server keeps answering the calls nginx
sends it until the gateway's stop, which comes after this drain.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import structlog

from wayline_gateway.data_plane.config import LUA_MODULES, EdgeConfig, render
from wayline_gateway.http.server import HttpServer

__all__ = ["NGINX_PACKAGES", "NginxDataPlane", "nginx_unavailable", "read_metrics", "relay_error_log"]

log = structlog.get_logger("wayline.gateway.data_plane")

# Debian's packages of nginx and its Lua module (nginx-extras has both, and much more).
NGINX_PACKAGES = ["nginx", "libnginx-mod-http-lua"]
INSTALL = f"apt-get install {' '.join(NGINX_PACKAGES)}"


def nginx_path(binary: str = "nginx") -> str | None:
    """`binary` on the PATH, or in /usr/sbin (Debian's nginx, which a non-root PATH may not hold)."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")


def nginx_unavailable(binary: str = "nginx") -> str | None:
    """Why nginx with the Lua module cannot run here; None when it can."""
    if nginx_path(binary) is None:
        return f"{binary} is not installed ({INSTALL})"
    if not (LUA_MODULES / "ngx_http_lua_module.so").exists():
        return f"nginx's Lua module is not installed ({INSTALL})"
    return None


# nginx's error-log line: "2026/12/07 16:00:00 [error] 41#41: *5 connect() failed (111: ...) while ...",
# or, before its log is open, "nginx: [emerg] unknown directive ...".
_ERROR_LINE = re.compile(
    r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d |nginx: )\[(?P<level>\w+)\] (?:\d+#\d+: )?(?:\*\d+ )?(?P<text>.*)$"
)
# nginx's levels as the kit's log levels.
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "crit": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emerg": logging.CRITICAL,
}


def relay_error_log(lines: Iterable[bytes], logger: structlog.typing.FilteringBoundLogger) -> None:
    """Log each of nginx's error-log lines as the gateway logs its own (JSON in production), nginx's level
    mapped to the kit's, until nginx closes its stderr. A line not in nginx's format is logged whole, at
    error."""
    for raw in lines:
        line = raw.decode(errors="replace").rstrip("\n")
        if not line:
            continue
        parsed = _ERROR_LINE.match(line)
        level, text = (parsed["level"], parsed["text"]) if parsed else ("error", line)
        logger.log(_LOG_LEVELS.get(level, logging.ERROR), "nginx.error_log", nginx_level=level, detail=text)


def _relaying(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with stream:
            relay_error_log(stream, log)


def _end_stale(pid_file: Path) -> None:
    """Kill the nginx that a gateway killed outright left running (its pid file remains): it holds the
    public port."""
    try:
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"nginx" in command:
        log.warning("data_plane.ending_stale_nginx", pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of an nginx whose master has exited: its workers keep the public port open and
    serve on until they are ended, and they share the master's process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def read_metrics(admin_socket: Path) -> dict[tuple[str, str, str], float]:
    """(method, grpc-status, "count" | "seconds") → total since nginx started, for the calls it passed or
    answered itself, from its admin socket; empty when nginx cannot be asked."""
    connection = _UnixConnection(admin_socket, timeout=2.0)
    try:
        connection.request("GET", "/metrics")
        body = connection.getresponse().read().decode()
    except OSError:
        return {}
    finally:
        connection.close()
    totals: dict[tuple[str, str, str], float] = {}
    for line in body.splitlines():
        method, status, kind, value = line.split("\t")
        totals[(method, status, kind)] = float(value)
    return totals


class NginxDataPlane:
    def __init__(self, config: EdgeConfig, lookups: HttpServer, *, binary: str = "nginx") -> None:
        """`lookups` serves the key lookups on `config.lookup_socket` (lookup.py)."""
        self.config = config
        self._lookups = lookups
        self._binary = nginx_path(binary) or binary
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None
        self._serving_lookups = False
        self._tls_seen: tuple[tuple[int, int, int], ...] = ()

    def _command(self, conf: Path, *extra: str) -> list[str]:
        return [self._binary, "-e", "stderr", "-p", str(self.config.directory), "-c", str(conf), *extra]

    def _refusal(self, conf: Path) -> str | None:
        """What `nginx -t` says against `conf` and the files it names; None when it accepts them."""
        checked = subprocess.run(self._command(conf, "-t", "-q"), capture_output=True, text=True, check=False)
        return None if checked.returncode == 0 else checked.stderr.strip()

    def _spawn(self) -> subprocess.Popen[bytes]:
        conf = render(self.config)
        refused = self._refusal(conf)
        if refused is not None:
            raise RuntimeError(f"nginx refused the rendered configuration {conf}: {refused}")
        self._tls_seen = self._tls_files()
        _end_stale(self.config.directory / "nginx.pid")
        self.config.admin_socket.unlink(missing_ok=True)  # nginx binds a Unix socket only where none is
        # Its own process group, so that workers a dead master leaves behind can be ended with it.
        # nginx's error log goes to its stderr, which the gateway reads and logs as its own lines.
        process = subprocess.Popen(self._command(conf), start_new_session=True, stderr=subprocess.PIPE)
        threading.Thread(
            target=_relaying, args=(process.stderr,), name="gateway-nginx-errors", daemon=True
        ).start()
        deadline = time.monotonic() + 10
        while not self._accepting():
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode} at start; its errors are logged")
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"nginx did not open {self.config.listen} within 10 s")
            time.sleep(0.02)
        return process

    def _accepting(self) -> bool:
        host, _, port = self.config.listen.rpartition(":")
        host = host.strip("[]")
        try:
            with socket.create_connection(("127.0.0.1" if host in ("", "0.0.0.0") else host, int(port)), 0.5):
                return True
        except OSError:
            return False

    def start(self) -> None:
        """Serve the key lookups, then start nginx; returns once its public port accepts. Called again
        (the kit retries a start that raised) it starts only what is not running yet."""
        with self._lock:
            if self._process is not None:
                return
            if not self._serving_lookups:
                self._lookups.start()
                self._serving_lookups = True
            self._process = self._spawn()
            log.info("data_plane.started", listen=self.config.listen, pid=self._process.pid)
        self._watch = threading.Thread(target=self._keep_running, name="gateway-data-plane", daemon=True)
        self._watch.start()

    def _tls_files(self) -> tuple[tuple[int, int, int], ...]:
        """The identity (inode, size, mtime) of every certificate and key file nginx reads: a Kubernetes
        Secret volume swaps a symlink (a new inode), `cp` and editors change size or mtime."""
        config = self.config
        files = (
            config.tls_cert_file,
            config.tls_key_file,
            config.tls_client_ca_file,
            config.backend_ca_file,
            config.backend_cert_file,
            config.backend_key_file,
        )
        identities = []
        for path in files:
            if path is not None:
                try:
                    found = path.stat()
                except OSError:
                    identities.append((0, 0, 0))
                else:
                    identities.append((found.st_ino, found.st_size, found.st_mtime_ns))
        return tuple(identities)

    def _reload_if_certificates_changed(self, process: subprocess.Popen[bytes]) -> None:
        """nginx reads its certificates at start; a changed file is taken by a reload (SIGHUP: new workers
        with the new files, the old ones finishing their calls), once nginx accepts the files."""
        seen = self._tls_files()
        if seen == self._tls_seen:
            return
        refused = self._refusal(self.config.directory / "nginx.conf")
        if refused is not None:  # a key written before its certificate: tried again at the next look
            log.warning("data_plane.certificates_not_loaded", error=refused)
            return
        self._tls_seen = seen
        process.send_signal(signal.SIGHUP)
        log.info("data_plane.certificates_reloaded", pid=process.pid)

    def _keep_running(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            try:
                code = process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                backoff = 0.2
                self._reload_if_certificates_changed(process)
                continue
            if self._stopping.is_set():
                return
            _end_group(process)
            log.error("data_plane.exited", code=code, restart_in_s=backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 5.0)
            with self._lock:
                try:
                    self._process = self._spawn()
                except (OSError, RuntimeError) as error:
                    log.error("data_plane.restart_failed", error=str(error))
                    continue
            log.info("data_plane.restarted", pid=self._process.pid)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def flush(self) -> None:
        """Tell nginx a key, a tenant or a limit changed through this replica: its workers drop the keys they
        hold (without this, the change reaches them within the key cache window, as from another replica)."""
        connection = _UnixConnection(self.config.admin_socket, timeout=2.0)
        try:
            connection.request("POST", "/flush")
            connection.getresponse().read()
        except OSError as error:  # nginx restarting: it starts with nothing held
            log.warning("data_plane.flush_failed", error=str(error))
        finally:
            connection.close()

    def metrics(self) -> dict[tuple[str, str, str], float]:
        return read_metrics(self.config.admin_socket)

    def drain(self) -> None:
        """Close the public port and let the calls in progress finish (nginx's graceful stop); once."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            log.info("data_plane.draining", pid=process.pid)

    def stop(self, grace: float) -> None:
        """Drain if not yet, wait up to `grace` seconds for nginx to exit, then end it; stop the lookups."""
        self.drain()
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            _end_group(process)
            log.info("data_plane.stopped", code=process.returncode)
        if self._watch is not None:
            self._watch.join()
        if self._serving_lookups:
            self._lookups.stop(grace)
        shutil.rmtree(self.config.sockets, ignore_errors=True)
