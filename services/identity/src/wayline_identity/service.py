"""The identity service's skeleton: its contract is served, and every RPC answers UNIMPLEMENTED (with the
RPC's name) until the identity issue lands."""

from __future__ import annotations

import grpc

from wayline.common.server import ServiceDefinition
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity.settings import IdentitySettings

__all__ = ["identity_service"]


def identity_service(settings: IdentitySettings) -> ServiceDefinition:
    def register(server: grpc.Server) -> list[str]:
        # Every RPC answers UNIMPLEMENTED, from the generated base class.
        servicer = pb_grpc.IdentityServiceServicer()  # type: ignore[abstract]
        pb_grpc.add_IdentityServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IdentityService"].full_name]

    return ServiceDefinition(name="identity", register=register)
