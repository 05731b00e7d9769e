"""The stores identity erases directly, over their contracts: journeys' events and ingest's dead letters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


# Deletes in one store for one person (with the identifiers, or none), under the metadata; how many records.
_DeleteOne = Callable[[str, list[event_pb2.Identifier], tuple[tuple[str, str], ...]], int]


def _per_person(delete: _DeleteOne) -> Eraser:
    """An eraser calling `delete` for each person, the identifiers with the first call only (once is enough:
    a store deletes every record carrying them whoever it belongs to)."""

    def erase(tenant: str, persons: Sequence[str], identifiers: Sequence[Key]) -> int:
        metadata = ((TENANT_HEADER, tenant),)
        wanted = [event_pb2.Identifier(type=kind, value=value) for kind, value in identifiers]
        return sum(delete(person, wanted if i == 0 else [], metadata) for i, person in enumerate(persons))

    return erase


def _journeys(channel: grpc.Channel) -> Eraser:
    stub = journeys_grpc.JourneyServiceStub(channel)
    return _per_person(
        lambda person, identifiers, metadata: (
            stub.DeletePersonEvents(
                journeys_pb.DeletePersonEventsRequest(person_id=person, identifiers=identifiers),
                metadata=metadata,
                timeout=_TIMEOUT,
            ).deleted_event_count
        )
    )


def _ingest(channel: grpc.Channel) -> Eraser:
    stub = ingest_grpc.IngestServiceStub(channel)
    return _per_person(
        lambda person, identifiers, metadata: (
            stub.DeletePersonDeadLetters(
                ingest_pb.DeletePersonDeadLettersRequest(person_id=person, identifiers=identifiers),
                metadata=metadata,
                timeout=_TIMEOUT,
            ).deleted_count
        )
    )


def grpc_erasers(
    settings: ServiceSettings, journeys_address: str, ingest_address: str
) -> tuple[dict[str, Eraser], list[grpc.Channel]]:
    """The erasers of the configured stores, and their channels (to close at shutdown)."""
    erasers: dict[str, Eraser] = {}
    channels: list[grpc.Channel] = []
    token = settings.require_internal_token()
    tls = settings.channel_tls()
    if journeys_address:
        channel = internal_channel(journeys_address, internal_token=token, tls=tls)
        channels.append(channel)
        erasers["journeys"] = _journeys(channel)
    if ingest_address:
        channel = internal_channel(ingest_address, internal_token=token, tls=tls)
        channels.append(channel)
        erasers["ingest"] = _ingest(channel)
    return erasers, channels
