"""A stand-in identity service for the TLS tests: GetProfile answers with the tenant the server trusted from
the caller's metadata (so a test sees what reached the service, through whichever TLS and hops)."""

from __future__ import annotations

import grpc

from wayline.common.context import require_tenant
from wayline.common.server import ServiceDefinition
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import profile_pb2

__all__ = ["tenant_echo"]


class TenantEcho(identity_grpc.IdentityServiceServicer):
    def GetProfile(self, request: object, context: grpc.ServicerContext) -> identity_pb.GetProfileResponse:
        return identity_pb.GetProfileResponse(profile=profile_pb2.Profile(person_id=require_tenant()))


def tenant_echo() -> ServiceDefinition:
    def register(server: grpc.Server) -> list[str]:
        identity_grpc.add_IdentityServiceServicer_to_server(TenantEcho(), server)  # type: ignore[abstract]
        return ["wayline.identity.v1.IdentityService"]

    return ServiceDefinition(name="identity", register=register)
