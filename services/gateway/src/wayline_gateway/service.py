"""Wires the gateway together: keys, route table, backend channels, AdminService."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor

from wayline.common.clients import internal_channel
from wayline.common.server import ServiceDefinition
from wayline.decision.v1 import decision_service_pb2
from wayline.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from wayline.identity.v1 import identity_service_pb2
from wayline.inference.v2 import grpc_service_pb2
from wayline.ingest.v1 import ingest_service_pb2
from wayline.journeys.v1 import journeys_service_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.proxy import PassThroughHandler
from wayline_gateway.routes import build_routes, method_scopes
from wayline_gateway.settings import GatewaySettings

__all__ = ["BACKEND_SERVICES", "gateway_service"]

BACKEND_SERVICES: dict[str, list[descriptor.ServiceDescriptor]] = {
    "ingest": list(ingest_service_pb2.DESCRIPTOR.services_by_name.values()),
    "identity": list(identity_service_pb2.DESCRIPTOR.services_by_name.values()),
    "journeys": list(journeys_service_pb2.DESCRIPTOR.services_by_name.values()),
    "decision": [
        *decision_service_pb2.DESCRIPTOR.services_by_name.values(),
        *grpc_service_pb2.DESCRIPTOR.services_by_name.values(),  # Open Inference Protocol V2
    ],
    "orchestrator": list(orchestrator_service_pb2.DESCRIPTOR.services_by_name.values()),
}
ADMIN_SERVICE = gateway_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
ALL_SCOPES = frozenset({"read", "write", "admin"})


class AdminServicer(gateway_service_pb2_grpc.AdminServiceServicer):
    """Tenants, API keys and quotas: every RPC answers UNIMPLEMENTED until the gateway issue."""


def gateway_service(settings: GatewaySettings) -> ServiceDefinition:
    token = settings.resolved_internal_token()
    addresses = {
        "ingest": settings.ingest_address,
        "identity": settings.identity_address,
        "journeys": settings.journeys_address,
        "decision": settings.decision_address,
        "orchestrator": settings.orchestrator_address,
    }
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
