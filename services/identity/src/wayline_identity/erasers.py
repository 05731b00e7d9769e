"""The stores identity erases directly, over their contracts: journeys' events and ingest's dead letters."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from wayline.common.clients import internal_channel
from wayline.common.context import TENANT_HEADER
from wayline.common.settings import ServiceSettings
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_identity.erasure import Eraser
from wayline_identity.model import Key

__all__ = ["grpc_erasers"]

_TIMEOUT = 60.0


def _journeys(channel: grpc.Channel) -> Eraser:
    stub = journeys_grpc.JourneyServiceStub(channel)

    def erase(tenant: str, persons: Sequence[str], identifiers: Sequence[Key]) -> int:
        metadata = ((TENANT_HEADER, tenant),)
        wanted = [event_pb2.Identifier(type=kind, value=value) for kind, value in identifiers]
        deleted = 0
        for i, person in enumerate(persons):  # the identifiers once: any event carrying them goes too
            request = journeys_pb.DeletePersonEventsRequest(
                person_id=person, identifiers=wanted if i == 0 else []
            )
            deleted += stub.DeletePersonEvents(
                request, metadata=metadata, timeout=_TIMEOUT
            ).deleted_event_count
        return deleted

    return erase


def _ingest(channel: grpc.Channel) -> Eraser:
    stub = ingest_grpc.IngestServiceStub(channel)

    def erase(tenant: str, persons: Sequence[str], identifiers: Sequence[Key]) -> int:
        metadata = ((TENANT_HEADER, tenant),)
        wanted = [event_pb2.Identifier(type=kind, value=value) for kind, value in identifiers]
        deleted = 0
        for i, person in enumerate(persons):
            request = ingest_pb.DeletePersonDeadLettersRequest(
                person_id=person, identifiers=wanted if i == 0 else []
            )
            deleted += stub.DeletePersonDeadLetters(
                request, metadata=metadata, timeout=_TIMEOUT
            ).deleted_count
        return deleted

    return erase


def grpc_erasers(
    settings: ServiceSettings, journeys_address: str, ingest_address: str
) -> tuple[dict[str, Eraser], list[grpc.Channel]]:
    """The erasers of the configured stores, and their channels (to close at shutdown)."""
    erasers: dict[str, Eraser] = {}
    channels: list[grpc.Channel] = []
    token = settings.resolved_internal_token()
    if journeys_address:
        channel = internal_channel(journeys_address, internal_token=token)
        channels.append(channel)
        erasers["journeys"] = _journeys(channel)
    if ingest_address:
        channel = internal_channel(ingest_address, internal_token=token)
        channels.append(channel)
        erasers["ingest"] = _ingest(channel)
    return erasers, channels
