"""The gateway's route table, read from the contracts themselves.

Every public RPC of an internal service is routed by its full method name to that service; the scope a key
needs is the method's `(wayline.api.v1.required_scope)` option (read through the kit's registry), and
SCOPE_INTERNAL methods are not routed. Adding an RPC to a proto is therefore all it takes to expose it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import descriptor, descriptor_pb2

from wayline.common.registry import required_scope

__all__ = ["ERASING_METHODS", "PACED_BY_BACKEND", "Route", "build_routes"]


EVENT_MESSAGE = "wayline.event.v1.Event"

# The public RPCs that erase a person's data (right to erasure): once one has passed through the gateway, the
# tenant's kept answers are dropped (answer_cache.py, ADR 73).
ERASING_METHODS = frozenset(
    {
        "/wayline.identity.v1.IdentityService/DeleteProfile",
        "/wayline.journeys.v1.JourneyService/DeletePersonEvents",
        "/wayline.journeys.v1.JourneyService/BatchDeletePersonEvents",
        "/wayline.ingest.v1.IngestService/DeletePersonDeadLetters",
    }
)

# The public streams whose service paces their events itself, to the limits the gateway's data plane states
# in the kit's event-pacing header (quotas.py there; ADR 106): nginx passes them straight to the service,
# which it cannot do for a stream whose messages it would have to read to charge their events.
PACED_BY_BACKEND = frozenset({"/wayline.ingest.v1.IngestService/StreamEvents"})


@dataclass(frozen=True)
class Route:
    method: str  # "/wayline.ingest.v1.IngestService/Track"
    backend: str  # "ingest"
    scope: str  # "write"
    client_streaming: bool
    server_streaming: bool
    # The request's top-level `wayline.event.v1.Event` field, which quotas count; 0: none.
    event_field: int = 0
    # The method's contract: its message types (the HTTP bridge converts JSON with them) and options.
    descriptor: descriptor.MethodDescriptor | None = field(default=None, compare=False, repr=False)

    @property
    def erases(self) -> bool:
        """The method erases a person's data (ERASING_METHODS)."""
        return self.method in ERASING_METHODS

    @property
    def paced_by_backend(self) -> bool:
        """The service paces the stream's events to the event-pacing header (PACED_BY_BACKEND)."""
        return self.method in PACED_BY_BACKEND

    @property
    def read_only(self) -> bool:
        """The contract marks the method NO_SIDE_EFFECTS (a read: the HTTP bridge may answer it from a kept
        answer)."""
        return (
            self.descriptor is not None
            and self.descriptor.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
        )


def _event_field(message: descriptor.Descriptor) -> int:
    for candidate in message.fields:
        if candidate.message_type is not None and candidate.message_type.full_name == EVENT_MESSAGE:
            return int(candidate.number)
    return 0


def build_routes(backends: Mapping[str, Iterable[descriptor.ServiceDescriptor]]) -> dict[str, Route]:
    """Full method path → route, for every non-internal method of every backend's services."""
    routes: dict[str, Route] = {}
    for backend, services in backends.items():
        for service in services:
            for method in service.methods:
                scope = required_scope(method)
                if scope == "internal":
                    continue
                path = f"/{service.full_name}/{method.name}"
                routes[path] = Route(
                    method=path,
                    backend=backend,
                    scope=scope,
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                    event_field=_event_field(method.input_type),
                    descriptor=method,
                )
    return routes
