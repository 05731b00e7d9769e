"""Wires the gateway together: key store, authenticator, quotas, route table, backend channels, AdminService,
and the background upkeep that keeps replicas' caches in step with the store."""

from __future__ import annotations

import logging
import socket
import threading

import grpc
import structlog
from google.protobuf import descriptor
from opentelemetry import metrics

from wayline.common.clients import internal_channel
from wayline.common.logging import level_number
from wayline.common.registry import backend_contracts, method_scopes
from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from wayline_gateway.admin import Admin
from wayline_gateway.admission import Admission
from wayline_gateway.console.assets import ConsoleAssets
from wayline_gateway.data_plane.config import EdgeConfig, data_plane_directory, make_socket_directory
from wayline_gateway.data_plane.lookup import key_lookup_app
from wayline_gateway.data_plane.metrics import DataPlaneMetrics
from wayline_gateway.data_plane.process import NginxDataPlane
from wayline_gateway.erasures import ErasureFollower, IdentityErasureFeed
from wayline_gateway.http.answer_cache import AnswerCache
from wayline_gateway.http.app import gateway_http_app
from wayline_gateway.http.bridge import JsonBridge
from wayline_gateway.http.delivery import IngestSender
from wayline_gateway.http.server import HttpServer, bind_host
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.proxy import PassThroughHandler
from wayline_gateway.quotas import QuotaGate
from wayline_gateway.routes import Route, build_routes
from wayline_gateway.servicer import AdminServicer
from wayline_gateway.settings import GatewaySettings
from wayline_gateway.store.admin_store import AdminStore

__all__ = ["BACKEND_SERVICES", "gateway_service"]

log = structlog.get_logger("wayline.gateway")

BACKEND_SERVICES: dict[str, list[descriptor.ServiceDescriptor]] = {
    name: list(contracts) for name, contracts in backend_contracts().items()
}
ADMIN_SERVICE = gateway_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
ALL_SCOPES = frozenset({"read", "write", "admin"})


class _Upkeep:
    """Every few seconds: the quota limits from the store, and the keys' last use times to it."""

    def __init__(self, store: AdminStore, authenticator: ApiKeyAuthenticator, gate: QuotaGate, every: float):
        self._store = store
        self._authenticator = authenticator
        self._gate = gate
        self._every = max(every, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-upkeep", daemon=True)

    def run_once(self) -> None:
        self._gate.refresh(self._store.all_limits())
        self._store.record_uses(self._authenticator.take_uses())

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.run_once()
            except Exception as error:  # noqa: BLE001 - the store may be down for a while; caches stay
                log.warning("gateway.upkeep_failed", error=str(error))

    def start(self) -> None:
        # The gateway's start is retried until every part of it is up (the HTTP port may be busy for a while);
        # the thread runs from the first attempt on.
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self.run_once()  # the last minutes of key use


class _HttpCollector:
    """The Segment-compatible HTTP collector beside the gRPC port, started once the store is ready."""

    def __init__(self, server: HttpServer, sender: IngestSender, grace: float) -> None:
        self._server = server
        self._sender = sender
        self._grace = grace
        self._started = False

    def start(self) -> None:
        if not self._started:  # start() is retried until the store is up; the port opens once
            self._server.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._server.stop(self._grace)
        self._sender.close()


def _http_collector(
    settings: GatewaySettings,
    token: str,
    authenticator: ApiKeyAuthenticator,
    admission: Admission,
    bridge: JsonBridge,
) -> _HttpCollector | None:
    if not settings.http_port:
        return None
    sender = IngestSender.connect(
        settings.ingest_address,
        internal_token=token,
        timeout_seconds=settings.default_deadline_seconds,
        max_message_bytes=settings.max_message_bytes,
        tls=settings.channel_tls(),
    )
    app = gateway_http_app(
        authenticator,
        sender,
        settings,
        bridge=bridge,
        console=ConsoleAssets.from_package(),
        admit=admission.events,
    )
    tls = (
        (settings.tls_cert_file, settings.tls_key_file)
        if settings.tls_cert_file and settings.tls_key_file
        else None
    )
    return _HttpCollector(
        HttpServer(app, settings.host, settings.http_port, tls=tls), sender, settings.shutdown_grace_seconds
    )


def _listen(host: str, port: int) -> str:
    """The gRPC host setting as nginx's `listen` address, bound as the HTTP port binds it."""
    family, bound = bind_host(host)
    return f"[{bound}]:{port}" if family == socket.AF_INET6 else f"{bound}:{port}"


class _PythonDataPlane:
    """This process serves the public port itself: nothing to start, drain or tell."""

    def start(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        pass

    def stop(self, grace: float) -> None:
        pass


def _data_plane(  # noqa: PLR0917 - one call site, which names them
    settings: GatewaySettings,
    token: str,
    addresses: dict[str, str],
    routes: dict[str, Route],
    authenticator: ApiKeyAuthenticator,
    gate: QuotaGate,
) -> NginxDataPlane | _PythonDataPlane:
    if settings.data_plane != "nginx":
        return _PythonDataPlane()
    directory = data_plane_directory(settings.service_dir)
    directory.mkdir(parents=True, exist_ok=True)
    config = EdgeConfig(
        directory=directory,
        listen=_listen(settings.host, settings.port),
        control_address=f"127.0.0.1:{settings.serving_control_port}",
        sockets=make_socket_directory(directory),
        backends=addresses,
        routes=routes,
        internal_token=token,
        key_cache_seconds=settings.key_cache_seconds,
        default_deadline_seconds=settings.default_deadline_seconds,
        max_deadline_seconds=settings.max_deadline_seconds,
        max_message_bytes=settings.max_message_bytes,
        stream_quota_wait_seconds=settings.stream_quota_wait_seconds,
        workers=settings.data_plane_workers,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
        tls_client_ca_file=settings.tls_client_ca_file,
        backend_ca_file=settings.tls_ca_file,
        backend_cert_file=settings.tls_client_cert_file,
        backend_key_file=settings.tls_client_key_file,
        backend_server_name=settings.tls_server_name,
        log_calls=level_number(settings.log_level) <= logging.INFO,
        log_json=settings.log_format == "json",
    )
    lookups = HttpServer(
        key_lookup_app(authenticator, gate),
        "127.0.0.1",
        0,
        name="gateway-key-lookups",
        unix_socket=config.lookup_socket,
    )
    plane = NginxDataPlane(config, lookups, binary=settings.nginx_binary)
    DataPlaneMetrics(metrics.get_meter("wayline.gateway.data_plane"), plane.metrics)
    return plane


def _authenticator(
    settings: GatewaySettings, routes: dict[str, Route], store: AdminStore
) -> ApiKeyAuthenticator:
    bootstrap = {}
    if settings.api_key is not None and settings.api_key.get_secret_value():
        bootstrap[digest(settings.api_key.get_secret_value())] = ApiKey(
            settings.tenant, ALL_SCOPES, f"tenants/{settings.tenant}/apiKeys/bootstrap"
        )
    scopes = {path: route.scope for path, route in routes.items()} | method_scopes([ADMIN_SERVICE])
    return ApiKeyAuthenticator(
        scopes, lookup=store.key_by_digest, memory_keys=bootstrap, cache_seconds=settings.key_cache_seconds
    )


def gateway_service(settings: GatewaySettings) -> ServiceDefinition:
    token = settings.require_internal_token()
    addresses = {backend: settings.peer_address(backend) for backend in BACKEND_SERVICES}
    channels = {
        backend: internal_channel(
            addresses[backend],
            internal_token=token,
            services=services,
            max_message_bytes=settings.max_message_bytes,
            tls=settings.channel_tls(),
        )
        for backend, services in BACKEND_SERVICES.items()
    }
    routes = build_routes(BACKEND_SERVICES)
    db = open_database(
        settings.database_url.get_secret_value() if settings.database_url else None,
        settings.service_dir / "gateway.db",
    )
    store = AdminStore(db)
    authenticator = _authenticator(settings, routes, store)
    gate = QuotaGate(settings.default_limits())
    upkeep = _Upkeep(store, authenticator, gate, settings.key_cache_seconds)
    data_plane = _data_plane(settings, token, addresses, routes, authenticator, gate)

    def changed() -> None:
        authenticator.forget()
        gate.refresh(store.all_limits())
        data_plane.flush()

    admin = Admin(store, settings.tenant, settings.default_limits(), on_change=changed)
    admission = Admission(gate, settings.stream_quota_wait_seconds)
    cache = (
        AnswerCache(settings.answer_cache_bytes, settings.answer_refresh_seconds)
        if settings.answer_cache_bytes
        else None
    )
    erasures = (
        ErasureFollower(
            IdentityErasureFeed(channels["identity"], timeout=settings.default_deadline_seconds),
            cache,
            poll_seconds=settings.answer_erasure_poll_seconds,
            blind_after=10 * settings.answer_erasure_poll_seconds,
        )
        if cache is not None
        else None
    )
    if cache is not None and erasures is not None:
        cache.guard_with(erasures.follow)
    bridge = JsonBridge(
        routes,
        channels,
        authenticator,
        admission,
        default_deadline=settings.default_deadline_seconds,
        max_deadline=settings.max_deadline_seconds,
        cache=cache,
    )
    http = _http_collector(settings, token, authenticator, admission, bridge)

    pass_through = PassThroughHandler(
        routes,
        channels,
        settings.default_deadline_seconds,
        settings.max_deadline_seconds,
        admission,
        on_erasure=cache.forget_tenant if cache is not None else None,
    )

    def register(server: grpc.Server) -> list[str]:
        gateway_service_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(admin, admission.request), server
        )
        server.add_generic_rpc_handlers((pass_through,))
        routed = sorted({path.split("/")[1] for path in routes})
        return [ADMIN_SERVICE.full_name, *routed]

    def start() -> None:
        store.migrate()
        admin.ensure_operator_tenant()
        upkeep.run_once()
        upkeep.start()
        if erasures is not None:
            erasures.start()
        if http is not None:
            http.start()
        data_plane.start()

    def drain() -> None:
        data_plane.drain()
        pass_through.drain()

    def stop() -> None:
        data_plane.stop(settings.shutdown_grace_seconds)
        if http is not None:
            http.stop()
        bridge.close()
        if erasures is not None:
            erasures.stop()
        upkeep.stop()
        for channel in channels.values():
            channel.close()
        db.close()

    return ServiceDefinition(
        name="gateway",
        register=register,
        start=start,
        stop=stop,
        drain=drain,
        authenticator=authenticator,
    )
