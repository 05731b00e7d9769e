"""Wires the ingest service together."""

from __future__ import annotations

from datetime import timedelta

import grpc

from wayline.common.clients import internal_channel
from wayline.common.server import ServiceDefinition
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_ingest.servicer import IngestServicer
from wayline_ingest.settings import IngestSettings
from wayline_ingest.validation import EventLimits

__all__ = ["ingest_service"]


def ingest_service(settings: IngestSettings) -> ServiceDefinition:
    channel = internal_channel(
        settings.journeys_address,
        internal_token=settings.resolved_internal_token(),
        services=[journeys_pb.DESCRIPTOR.services_by_name["JourneyService"]],
        max_message_bytes=settings.max_message_bytes,
    )
    limits = EventLimits(
        max_properties_bytes=settings.max_properties_bytes,
        max_text_bytes=settings.max_text_bytes,
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
    )

    def register(server: grpc.Server) -> list[str]:
        # RPCs IngestServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        servicer = IngestServicer(  # type: ignore[abstract]
            journeys_grpc.JourneyServiceStub(channel),
            limits,
            settings.max_batch_events,
            settings.max_write_bytes,
        )
        pb_grpc.add_IngestServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IngestService"].full_name]

    return ServiceDefinition(name="ingest", register=register, stop=channel.close)
