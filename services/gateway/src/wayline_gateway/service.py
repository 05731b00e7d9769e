"""Wires the gateway together: keys, route table, backend channels, AdminService."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor

from wayline.common.clients import internal_channel
from wayline.common.registry import backend_contracts, method_scopes
from wayline.common.server import ServiceDefinition
from wayline.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.proxy import PassThroughHandler
from wayline_gateway.routes import build_routes
from wayline_gateway.settings import GatewaySettings

__all__ = ["BACKEND_SERVICES", "gateway_service"]

BACKEND_SERVICES: dict[str, list[descriptor.ServiceDescriptor]] = {
    name: list(contracts) for name, contracts in backend_contracts().items()
}
ADMIN_SERVICE = gateway_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
ALL_SCOPES = frozenset({"read", "write", "admin"})


class AdminServicer(gateway_service_pb2_grpc.AdminServiceServicer):
    """Tenants, API keys and quotas: every RPC answers UNIMPLEMENTED until the gateway issue."""


def gateway_service(settings: GatewaySettings) -> ServiceDefinition:
    token = settings.require_internal_token()
    addresses = {backend: settings.peer_address(backend) for backend in BACKEND_SERVICES}
    channels = {
        backend: internal_channel(
            addresses[backend],
            internal_token=token,
            services=services,
            max_message_bytes=settings.max_message_bytes,
        )
        for backend, services in BACKEND_SERVICES.items()
    }
    routes = build_routes(BACKEND_SERVICES)
    keys = {}
    if settings.api_key is not None and settings.api_key.get_secret_value():
        keys[digest(settings.api_key.get_secret_value())] = ApiKey(
            settings.tenant, ALL_SCOPES, f"tenants/{settings.tenant}/apiKeys/bootstrap"
        )
    scopes = {path: route.scope for path, route in routes.items()} | method_scopes([ADMIN_SERVICE])

    def register(server: grpc.Server) -> list[str]:
        admin = AdminServicer()  # type: ignore[abstract]  # every RPC: UNIMPLEMENTED for now
        gateway_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        server.add_generic_rpc_handlers(
            (
                PassThroughHandler(
                    routes, channels, settings.default_deadline_seconds, settings.max_deadline_seconds
                ),
            )
        )
        routed = sorted({path.split("/")[1] for path in routes})
        return [ADMIN_SERVICE.full_name, *routed]

    def stop() -> None:
        for channel in channels.values():
            channel.close()

    return ServiceDefinition(
        name="gateway", register=register, stop=stop, authenticator=ApiKeyAuthenticator(keys, scopes)
    )
