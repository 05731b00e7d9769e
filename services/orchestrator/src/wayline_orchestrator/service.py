"""The orchestrator's skeleton: its contract is served, and every RPC answers UNIMPLEMENTED (with the RPC's
name) until the orchestration issues land."""

from __future__ import annotations

import grpc

from wayline.common.server import ServiceDefinition
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.settings import OrchestratorSettings

__all__ = ["orchestrator_service"]


def orchestrator_service(settings: OrchestratorSettings) -> ServiceDefinition:
    def register(server: grpc.Server) -> list[str]:
        # Every RPC answers UNIMPLEMENTED, from the generated base class.
        servicer = pb_grpc.OrchestratorServiceServicer()  # type: ignore[abstract]
        pb_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["OrchestratorService"].full_name]

    return ServiceDefinition(name="orchestrator", register=register)
