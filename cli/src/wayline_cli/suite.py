"""The suite as child processes: start every service, wait until each is SERVING, stop them all cleanly.

Children are started in the registry's order (what others call first, gateway last) and stopped with
SIGTERM so each drains, in the registry's waves (`stop_waves`: a service that flushes what it holds in memory
into peers, as decision's traces go through ingest, is stopped before them); anything still running after
the grace period is killed. One service can also be restarted alone (`restart`), as a rolling restart does.
On Linux every child also gets SIGTERM from the kernel if this process dies without cleaning up
(PR_SET_PDEATHSIG, asked for by the child itself: child.py), so no service is ever left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wayline.common.registry import SERVICES, ServiceInfo, stop_waves
from wayline_gateway.settings import GatewaySettings

__all__ = ["SERVICES", "Suite", "SuiteError", "free_port", "is_serving"]

_SPECS = {spec.name: spec for spec in SERVICES}

_INGEST_SINKS = ["journeys", "decision", "orchestrator"]
"""Where the suite's ingest forwards events: the journey store, the decision service's online features and
the orchestrator's contact ledger (consent, channel preference and time zone come from events)."""
_ERASURE_FEED_CONSUMERS = ["decision", "orchestrator"]
"""The stores identity's erasures wait for through the override feed: the decision service (online features,
traces' identifiers and recent decisions) and the orchestrator (flow state, contacts, consent). Each follows
every tenant the suite's ingest forwards to it, and the decision service every tenant it was asked to decide
or given feedback for too (ADRs 38 and 76)."""


class SuiteError(RuntimeError):
    """A service did not start; the message carries the end of its log."""


def free_port() -> int:
    """A port nothing listens on, held back from every other `bind(0)` for a minute.

    A port merely closed is the next one the kernel may hand a server asking for any port (a gateway's gRPC
    server, on port 0, once took the HTTP port just picked for it). One connection to the port, closed by
    the accepting end first, leaves that end in TIME_WAIT, which a bind to port 0 skips (Linux with
    `net.ipv4.ip_autobind_reuse` off, its default) and a server binding the port itself with SO_REUSEADDR
    (gRPC, the gateway's HTTP collector, PostgreSQL, Redis, NATS) takes at once.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:  # SO_REUSEADDR, which the accepted end inherits
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = listener.accept()
            accepted.close()  # before the connecting end, so TIME_WAIT holds the listening port
        return port


@dataclass
class Suite:
    """Every service of the suite, as child processes sharing one data dir."""

    data_dir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: {s.name: s.port for s in SERVICES})
    metrics_ports: dict[str, int] = field(default_factory=lambda: {s.name: s.metrics_port for s in SERVICES})
    # The gateway's Segment-compatible HTTP collector.
    http_port: int = field(default_factory=lambda: int(GatewaySettings.model_fields["http_port"].default))
    # The gateway's own gRPC port behind its nginx data plane (ADR 105); 0: the public port + 100.
    control_port: int = 0
    api_key: str = field(default_factory=lambda: "wl_" + secrets.token_urlsafe(24))
    tenant: str = "demo"
    log_format: str = "json"
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, data_dir: Path, *, metrics: bool = False, **kwargs: object) -> Suite:
        """Every port free (chosen now); the Prometheus endpoints off unless `metrics`."""
        return cls(
            data_dir=data_dir,
            ports={s.name: free_port() for s in SERVICES},
            metrics_ports={s.name: free_port() if metrics else 0 for s in SERVICES},
            http_port=free_port(),
            control_port=free_port(),
            **kwargs,  # type: ignore[arg-type]
        )

    def address(self, name: str) -> str:
        return f"{self.host}:{self.ports[name]}"

    @property
    def gateway_control_port(self) -> int:
        """The gateway's own gRPC port behind its nginx data plane: the one chosen, or the gateway's rule."""
        settings = GatewaySettings.model_construct(port=self.ports["gateway"], control_port=self.control_port)
        return settings.serving_control_port

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def environment(self, spec: ServiceInfo) -> dict[str, str]:
        """The caller's environment (so WAYLINE_JOURNEYS_CLICKHOUSE_URL, log level and the like reach the
        services), with what the suite must decide itself on top: data dir, token, ports, peers, key."""
        env = dict(os.environ)
        env |= {
            "WAYLINE_DATA_DIR": str(self.data_dir),
            "WAYLINE_INTERNAL_TOKEN": self.internal_token,
            "WAYLINE_LOG_FORMAT": self.log_format,
            f"{spec.env_prefix}HOST": self.host,
            f"{spec.env_prefix}PORT": str(self.ports[spec.name]),
            f"{spec.env_prefix}METRICS_PORT": str(self.metrics_ports[spec.name]),
        }
        for peer in spec.peers:
            env[f"{spec.env_prefix}{peer.upper()}_ADDRESS"] = self.address(peer)
        if spec.name == "ingest" and "WAYLINE_INGEST_SINKS" not in os.environ:
            # The suite runs the decision service and the orchestrator: every event also feeds the online
            # features and the contact ledger.
            env["WAYLINE_INGEST_SINKS"] = json.dumps(_INGEST_SINKS)
        if spec.name == "identity" and "WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS" not in os.environ:
            env["WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS"] = json.dumps(_ERASURE_FEED_CONSUMERS)
        if spec.name == "gateway":
            env["WAYLINE_GATEWAY_API_KEY"] = self.api_key
            env["WAYLINE_GATEWAY_TENANT"] = self.tenant
            env["WAYLINE_GATEWAY_HTTP_PORT"] = str(self.http_port)
            env["WAYLINE_GATEWAY_CONTROL_PORT"] = str(self.control_port)
        return env

    def start(self) -> None:
        for spec in SERVICES:
            self.start_service(spec.name)

    def start_service(self, name: str) -> None:
        """Start one service's process (its log appended to, so a restart keeps the earlier lines)."""
        spec = _SPECS[name]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        with (self.log_dir / f"{spec.name}.log").open("ab") as log:
            # The child asks for SIGTERM on our death itself (child.py): no preexec_fn, so no fork
            # handlers run between fork and exec.
            self.processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", "wayline_cli.child", str(os.getpid()), spec.package],
                env=self.environment(spec),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop_service(self, name: str, grace: float = 15.0) -> int:
        """SIGTERM one service and wait for it to drain and exit; killed after `grace`. Its exit code
        (negative: the signal that ended it, -9 when it had to be killed)."""
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def wait_serving(self, name: str, timeout: float = 90.0) -> None:
        """Block until one service's health says SERVING; SuiteError if it exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not is_serving(self.address(name)):
            self._check_alive(name)
            if time.monotonic() > deadline:
                raise SuiteError(f"{name} was not SERVING after {timeout:.0f}s\n{self.log_tail(name)}")
            time.sleep(0.1)

    def restart(self, name: str, grace: float = 15.0, timeout: float = 90.0) -> int:
        """A rolling restart's step: stop one service as Kubernetes would (SIGTERM, drain), start it again
        on the same data dir and port, wait until it is SERVING. The stopped process's exit code."""
        code = self.stop_service(name, grace)
        self.start_service(name)
        self.wait_serving(name, timeout)
        return code

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until every service's health says SERVING; SuiteError if one exits or time runs out."""
        deadline = time.monotonic() + timeout
        for spec in SERVICES:
            self.wait_serving(spec.name, max(0.0, deadline - time.monotonic()))

    def _check_alive(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            raise SuiteError(f"{name} exited with code {code}\n{self.log_tail(name)}")

    def first_exited(self) -> str | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> dict[str, int]:
        """SIGTERM every service, wave by wave (`stop_waves`); kill what is still running after `grace`
        (one deadline for all the waves). Exit codes."""
        deadline = time.monotonic() + grace
        codes: dict[str, int] = {}
        for wave in stop_waves():
            running = [(name, self.processes[name]) for name in wave if name in self.processes]
            for _, process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for name, process in running:
                try:
                    codes[name] = process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    codes[name] = process.wait()
        self.processes.clear()
        return codes

    def __enter__(self) -> Suite:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def is_serving(address: str) -> bool:
    """True when the service at `address` answers its health check with SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
