"""The gRPC server bootstrap every service runs: thread-pool server, interceptors, health, reflection,
readiness, and a graceful stop on SIGTERM.

Lifecycle: the port opens at once with health NOT_SERVING; `ServiceDefinition.start` (connect to the store,
load models, migrate) runs in the background and is retried with backoff until it succeeds, then (in a service
process) what it built is frozen out of the garbage collector's scans (`garbage`), then health turns
SERVING. Calls before that get UNAVAILABLE. On SIGTERM health turns NOT_SERVING, new calls are refused,
`ServiceDefinition.drain` ends the long-lived streams, in-flight calls get `shutdown_grace_seconds` to
finish, then `ServiceDefinition.stop` releases resources.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from wayline.common import garbage, grpc_runtime
from wayline.common.auth import Authenticator, InternalCallerAuthenticator
from wayline.common.cpu_affinity import pin_process
from wayline.common.interceptors import CallInterceptor
from wayline.common.internal_token import with_internal_token
from wayline.common.logging import configure_logging
from wayline.common.registry import public_methods
from wayline.common.settings import ServiceSettings
from wayline.common.signals import TerminationSignals
from wayline.common.telemetry import configure_telemetry, process_telemetry
from wayline.common.tls import server_credentials

__all__ = ["Server", "ServiceDefinition", "main", "run"]

S = TypeVar("S", bound=ServiceSettings)

log = structlog.get_logger("wayline.server")


def _nothing() -> None:
    return None


@dataclass
class ServiceDefinition:
    """What a service plugs into the bootstrap.

    `register` adds the servicers to the server and returns their full service names (for health and
    reflection); `start` brings dependencies up and raises while they are not ready (it is called again,
    with backoff, until it returns, so what an attempt started must survive the next one); `drain`, called
    once the server refuses new calls, asks the calls that would otherwise run until the grace is over
    (streams a client keeps open) to end now; `stop` releases the dependencies after the last call.
    `authenticator` defaults to the internal-caller check; the gateway passes its API-key check.
    """

    name: str
    register: Callable[[grpc.Server], Sequence[str]]
    start: Callable[[], None] = _nothing
    stop: Callable[[], None] = _nothing
    drain: Callable[[], None] = _nothing
    authenticator: Authenticator | None = None


class Server:
    """One service's gRPC server. Usable in-process (tests start several on free ports) or through `run`."""

    def __init__(
        self, definition: ServiceDefinition, settings: ServiceSettings, *, owns_process: bool = False
    ) -> None:
        """`owns_process`: the server is the process's whole job (`run`), so it may tune the interpreter
        for it (the collector's freeze after start); servers that tests start in the test process do not."""
        telemetry = process_telemetry()  # configured by `run`, or one that exports nothing (tests)
        self.definition = definition
        self.settings = settings
        self._freeze_garbage = owns_process and settings.gc_freeze_at_start
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self.health = health.HealthServicer(experimental_non_blocking=True)
        authenticator = definition.authenticator or InternalCallerAuthenticator(
            settings.require_internal_token()
        )
        options: list[tuple[str, int | str]] = [
            ("grpc.so_reuseport", 0),  # a port already taken must fail loudly, not be shared
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Recycle connections now and then so that long-lived clients spread over new replicas, with
            # a grace longer than any call may last: a stream cut at the grace fails with UNAVAILABLE.
            ("grpc.max_connection_age_ms", int(settings.connection_max_age_seconds * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.connection_age_grace_seconds * 1000)),
        ]
        self._grpc = grpc.server(
            ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=definition.name),
            interceptors=[
                CallInterceptor(
                    definition.name,
                    authenticator,
                    self.ready,
                    telemetry.rpc_metrics,
                    telemetry.tracer(definition.name),
                    public_methods(),
                ),
            ],
            options=options,
        )
        self.service_names = list(definition.register(self._grpc))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._grpc
        )
        address = f"{settings.host}:{settings.port}"
        credentials = server_credentials(settings)
        if credentials is None:
            self.port = self._grpc.add_insecure_port(address)
        else:
            self.port = self._grpc.add_secure_port(address, credentials)
        self.health_port: int | None = None  # the plaintext health-only port, when there is one
        self._health_grpc = self._health_server(settings)
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)

    def _health_server(self, settings: ServiceSettings) -> grpc.Server | None:
        """A plaintext server with nothing but the health service (the same statuses), for probes that
        cannot speak TLS; None when `health_port` is 0."""
        if not settings.health_port:
            return None
        server = grpc.server(
            ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{self.definition.name}-health"),
            options=[("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self.health_port = server.add_insecure_port(f"{settings.host}:{settings.health_port}")
        return server

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", *self.service_names):
            self.health.set(name, status)

    def start(self) -> None:
        """Open the port and bring dependencies up in the background."""
        self._grpc.start()
        if self._health_grpc is not None:
            self._health_grpc.start()
        log.info(
            "server.listening",
            port=self.port,
            tls=self.settings.tls_cert_file is not None,
            mutual_tls=self.settings.tls_client_ca_file is not None,
            health_port=self.health_port,
            services=self.service_names,
            grpc_experiments=self.settings.grpc_experiments,
        )
        if not grpc_runtime.in_effect():
            log.warning(
                "server.grpc_experiments_not_in_effect",
                detail="grpc was imported before wayline.common, so gRPC runs with its own defaults; "
                "import wayline.common first, or set GRPC_EXPERIMENTS in the environment",
            )
        threading.Thread(
            target=self._become_ready, name=f"{self.definition.name}-startup", daemon=True
        ).start()

    def _become_ready(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                self.definition.start()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready yet; it is logged
                log.warning("server.dependencies_not_ready", error=str(exc), retry_in_s=backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            # Before SERVING, so that the collection it makes holds up no call.
            frozen = garbage.freeze() if self._freeze_garbage else 0
            self.ready.set()
            self._set_health(health_pb2.HealthCheckResponse.SERVING)
            log.info("server.serving", port=self.port, gc_frozen_objects=frozen)
            return

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then let in-flight calls finish within the grace period, then release."""
        self._stopping.set()
        self.health.enter_graceful_shutdown()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        log.info("server.draining", grace_s=grace)
        stopped = self._grpc.stop(grace)  # refuses new calls at once; returns without waiting
        self.definition.drain()
        stopped.wait()
        if self._health_grpc is not None:
            self._health_grpc.stop(0).wait()
        self.definition.stop()
        log.info("server.stopped")

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout)


def main(
    settings_class: type[S],
    service: Callable[[S], ServiceDefinition],
    *,
    server_settings: Callable[[S], ServiceSettings] | None = None,
) -> None:
    """The whole of a service's `__main__`: read settings (exit 2 naming every bad variable), take the
    internal token shared through the data dir when the environment sets none, serve. `server_settings`:
    what the gRPC server itself runs with, when it is not the service's settings (the gateway behind its
    nginx data plane serves on a loopback port)."""
    try:
        read = settings_class()
    except ValidationError as error:
        variables = settings_class.environment_variables()
        for problem in error.errors():
            if not problem["loc"]:  # a check across fields (TLS files); its message names the variables
                print(f"invalid settings: {problem['msg']}", file=sys.stderr)
                continue
            name = str(problem["loc"][0])  # a field name, or the alias it was read under
            variable = variables.get(name, (name,))[0]
            print(f"invalid setting {variable}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    settings = with_internal_token(read)
    run(service(settings), settings if server_settings is None else server_settings(settings))


def run(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    configure_logging(definition.name, settings.log_level, settings.log_format)
    if settings.cpus:  # before the server starts its threads, which inherit the mask
        threads = pin_process(settings.cpus)
        log.info("process.cpu_affinity", cpus=settings.cpu_affinity, threads=threads)
    telemetry = configure_telemetry(
        definition.name,
        otlp_endpoint=settings.otlp_endpoint,
        metrics_host=settings.host,
        metrics_port=settings.metrics_port,
    )
    gc_pauses = garbage.PauseMetrics(telemetry.meter_provider.get_meter("wayline.common"))
    signals = TerminationSignals()
    server = Server(definition, settings, owns_process=True)
    server.start()
    while not signals.wait(3600):
        pass
    log.info("server.signal", signal=signals.first)
    server.stop()
    gc_pauses.close()
    telemetry.shutdown()
