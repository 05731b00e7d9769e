"""Identity resolution in front of a sink: every event reaches it with its person.

The forwarder resolves a chunk of events with one IdentityService.ResolveIdentities call (identity resolves
them in spool order), stores the person id and the identifiers as identity normalised them on each event
(ignored identifiers stay as sent), and, for journeys, records the person overrides the chunk's merges made
(JourneyService.ApplyPersonOverrides) before the events are written, so that past events follow a merge as
soon as the events that caused it are stored. Resolution is idempotent, so a retried delivery resolves
again to the same person; identity down is a transient failure like the sink's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from wayline.common.context import TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_ingest.sinks.base import Sink
from wayline_ingest.sinks.grpc import classify

__all__ = ["IdentityResolver", "ResolvingSink"]

_RESOLVE_BATCH = 1000  # the contract's limit per call
_OVERRIDES_BATCH = 10_000


class IdentityResolver:
    """Resolves events' persons with the identity service; shared by every sink of the forwarder."""

    def __init__(self, channel: grpc.Channel, timeout: float = 30.0) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._timeout = timeout

    def resolve(
        self, tenant: str, events: Sequence[event_pb2.Event]
    ) -> list[person_override_pb2.PersonOverride]:
        """Set each event's person id and normalised identifiers; the person overrides the merges made."""
        overrides: list[person_override_pb2.PersonOverride] = []
        todo = [e for e in events if e.identifiers]
        for start in range(0, len(todo), _RESOLVE_BATCH):
            chunk = todo[start : start + _RESOLVE_BATCH]
            request = identity_pb.ResolveIdentitiesRequest(
                inputs=[
                    identity_pb.IdentityResolutionInput(
                        event_id=e.event_id,
                        timestamp=e.timestamp,
                        event_type=e.type,
                        identifiers=e.identifiers,
                    )
                    for e in chunk
                ]
            )
            try:
                response = self._stub.ResolveIdentities(
                    request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
                )
            except grpc.RpcError as error:
                raise classify(error) from error
            for event, resolution in zip(chunk, response.resolutions, strict=True):
                event.person_id = resolution.person_id
                kept = [i.identifier for i in resolution.ignored_identifiers]
                del event.identifiers[:]
                event.identifiers.extend([*resolution.identifiers, *kept])
            overrides.extend(response.person_overrides)
        return overrides


class ResolvingSink:
    """`inner`, with each event's person resolved first; `journeys` (a channel to it) gets the overrides."""

    def __init__(
        self,
        inner: Sink,
        resolver: IdentityResolver,
        journeys: grpc.Channel | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._resolver = resolver
        self._journeys = journeys_grpc.JourneyServiceStub(journeys) if journeys is not None else None
        self._timeout = timeout

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        parsed = [event_pb2.Event.FromString(raw) for raw in events]
        overrides = self._resolver.resolve(tenant, parsed)
        if overrides and self._journeys is not None:
            for start in range(0, len(overrides), _OVERRIDES_BATCH):
                request = journeys_pb.ApplyPersonOverridesRequest(
                    person_overrides=overrides[start : start + _OVERRIDES_BATCH]
                )
                try:
                    self._journeys.ApplyPersonOverrides(
                        request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
                    )
                except grpc.RpcError as error:
                    raise classify(error) from error
        self._inner.deliver(tenant, [event.SerializeToString() for event in parsed])

    def close(self) -> None:
        self._inner.close()
