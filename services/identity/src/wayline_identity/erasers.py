"""The stores identity erases directly, over their contracts: journeys' events and ingest's dead letters.

Each eraser takes a batch of erasures (erasure.py's `Eraser`). Journeys gets them in `BatchDeletePersonEvents`
calls of up to 1,000 persons: its deletes cost seconds each on a live store whatever they delete, so one
call per batch instead of one per person (docs/adr/0096-erasures-in-batches.md). A journeys older than that
call answers UNIMPLEMENTED (a rolling upgrade), and gets `DeletePersonEvents` per person as before. Ingest's
dead letters are cheap to delete (SQLite or PostgreSQL) and keep one call per person.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from wayline.common.clients import internal_channel
from wayline.common.context import TENANT_HEADER
from wayline.common.settings import ServiceSettings
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_identity.erasure import Eraser, ErasureWork
from wayline_identity.model import Key

__all__ = [
    "BATCH_LIMIT",
    "PersonRequest",
    "counts_per_erasure",
    "grpc_erasers",
    "person_requests",
    "plan_calls",
]

_TIMEOUT = 60.0
BATCH_LIMIT = 1000  # persons per BatchDeletePersonEvents call: the most journeys accepts

_Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PersonRequest:
    """One person of one erasure, as a store's delete takes it."""

    erasure: int  # the erasure's position in the batch, to add the person's count to
    person_id: str
    identifiers: tuple[Key, ...]


def person_requests(works: Sequence[ErasureWork]) -> list[PersonRequest]:
    """Every person of `works`, in order. An erasure's identifiers go with its first person only: once is
    enough, a store deletes every record carrying them whoever it belongs to."""
    return [
        PersonRequest(position, person, work.identifiers if i == 0 else ())
        for position, work in enumerate(works)
        for i, person in enumerate(work.person_ids)
    ]


def plan_calls(works: Sequence[ErasureWork], limit: int) -> list[list[PersonRequest]]:
    """Every person of `works` (`person_requests`), cut into calls of at most `limit`: an erasure's persons
    may span calls. No call when there is no person (a store refuses an empty batch)."""
    requests = person_requests(works)
    return [requests[start : start + limit] for start in range(0, len(requests), limit)]


def counts_per_erasure(
    erasures: int, calls: Sequence[Sequence[PersonRequest]], answers: Sequence[Sequence[int]]
) -> list[int]:
    """Each of the `erasures`' deleted count: the sum of its persons' counts, each call's answers matched to
    its requests by position. Raises ValueError when a call's answers do not match its requests one for one
    (the store did not confirm every person)."""
    if len(answers) != len(calls):
        raise ValueError(f"{len(answers)} answers for {len(calls)} calls")
    totals = [0] * erasures
    for call, counts in zip(calls, answers, strict=True):
        if len(counts) != len(call):
            raise ValueError(f"{len(counts)} counts for {len(call)} persons")
        for request, count in zip(call, counts, strict=True):
            totals[request.erasure] += count
    return totals


def _identifiers(request: PersonRequest) -> list[event_pb2.Identifier]:
    return [event_pb2.Identifier(type=kind, value=value) for kind, value in request.identifiers]


# Deletes one person's records in one store (with the identifiers it carries), under the metadata; how many.
_DeleteOne = Callable[[PersonRequest, _Metadata], int]


def _per_person(delete: _DeleteOne) -> Eraser:
    """An eraser calling `delete` for each person of each erasure, one after the other."""

    def erase(tenant: str, works: Sequence[ErasureWork]) -> list[int]:
        metadata = ((TENANT_HEADER, tenant),)
        requests = person_requests(works)
        counts = [delete(request, metadata) for request in requests]
        return counts_per_erasure(len(works), [requests], [counts])

    return erase


def _journeys(channel: grpc.Channel) -> Eraser:
    stub = journeys_grpc.JourneyServiceStub(channel)

    def one(request: PersonRequest, metadata: _Metadata) -> int:
        response = stub.DeletePersonEvents(
            journeys_pb.DeletePersonEventsRequest(
                person_id=request.person_id, identifiers=_identifiers(request)
            ),
            metadata=metadata,
            timeout=_TIMEOUT,
        )
        return int(response.deleted_event_count)

    def batch(call: Sequence[PersonRequest], metadata: _Metadata) -> list[int]:
        """The call's counts, from one BatchDeletePersonEvents; per person from a journeys without it."""
        request = journeys_pb.BatchDeletePersonEventsRequest(
            requests=[
                journeys_pb.DeletePersonEventsRequest(person_id=r.person_id, identifiers=_identifiers(r))
                for r in call
            ]
        )
        try:
            response = stub.BatchDeletePersonEvents(request, metadata=metadata, timeout=_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            return [one(r, metadata) for r in call]  # asked again each pass: it is served once upgraded
        return [int(r.deleted_event_count) for r in response.responses]

    def erase(tenant: str, works: Sequence[ErasureWork]) -> list[int]:
        metadata = ((TENANT_HEADER, tenant),)
        calls = plan_calls(works, BATCH_LIMIT)
        return counts_per_erasure(len(works), calls, [batch(call, metadata) for call in calls])

    return erase


def _ingest(channel: grpc.Channel) -> Eraser:
    stub = ingest_grpc.IngestServiceStub(channel)
    return _per_person(
        lambda request, metadata: int(
            stub.DeletePersonDeadLetters(
                ingest_pb.DeletePersonDeadLettersRequest(
                    person_id=request.person_id, identifiers=_identifiers(request)
                ),
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
