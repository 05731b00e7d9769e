"""The decision service's skeleton: DecisionService and the Open Inference Protocol V2 service are served,
and every RPC answers UNIMPLEMENTED (with the RPC's name) until the decision issues land."""

from __future__ import annotations

import grpc

from wayline.common.server import ServiceDefinition
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.inference.v2 import grpc_service_pb2 as inference_pb
from wayline.inference.v2 import grpc_service_pb2_grpc as inference_grpc
from wayline_decision.settings import DecisionSettings

__all__ = ["decision_service"]


def decision_service(settings: DecisionSettings) -> ServiceDefinition:
    def register(server: grpc.Server) -> list[str]:
        # Every RPC of both services: UNIMPLEMENTED, from the generated base classes.
        decision = pb_grpc.DecisionServiceServicer()  # type: ignore[abstract]
        inference = inference_grpc.GRPCInferenceServiceServicer()  # type: ignore[abstract]
        pb_grpc.add_DecisionServiceServicer_to_server(decision, server)
        inference_grpc.add_GRPCInferenceServiceServicer_to_server(inference, server)
        return [
            pb.DESCRIPTOR.services_by_name["DecisionService"].full_name,
            inference_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
        ]

    return ServiceDefinition(name="decision", register=register)
