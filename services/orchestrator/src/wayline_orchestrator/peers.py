"""The channels the orchestrator calls its peers through — journeys (person conditions, traits, segments,
history), decision (Decide), identity (the override feed, the timeline events' identifiers) and ingest (the
timeline's contact events) — each None where its address setting is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import descriptor

from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_orchestrator.settings import OrchestratorSettings

__all__ = ["Peers"]


@dataclass(frozen=True)
class Peers:
    journeys: grpc.Channel | None
    decision: grpc.Channel | None
    identity: grpc.Channel | None
    ingest: grpc.Channel | None

    @classmethod
    def open(cls, settings: OrchestratorSettings) -> Peers:
        def service(file: descriptor.FileDescriptor, name: str) -> descriptor.ServiceDescriptor:
            return file.services_by_name[name]

        return cls(
            journeys=settings.peer_channel(
                settings.journeys_address, service(journeys_pb.DESCRIPTOR, "JourneyService")
            ),
            decision=settings.peer_channel(
                settings.decision_address, service(decision_pb.DESCRIPTOR, "DecisionService")
            ),
            identity=settings.peer_channel(
                settings.identity_address, service(identity_pb.DESCRIPTOR, "IdentityService")
            ),
            ingest=settings.peer_channel(
                settings.ingest_address, service(ingest_pb.DESCRIPTOR, "IngestService")
            ),
        )

    def close(self) -> None:
        for channel in (self.journeys, self.decision, self.identity, self.ingest):
            if channel is not None:
                channel.close()
