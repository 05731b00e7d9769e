"""Identity resolution in front of a sink: every event reaches it with its person.

The forwarder resolves a chunk of events with one IdentityService.ResolveIdentities call (identity resolves
them in spool order), stores the person id and the identifiers as identity normalised them on each event
(ignored identifiers stay as sent), and, for journeys, records the person overrides the chunk's merges made
(JourneyService.ApplyPersonOverrides) before the events are written, so that past events follow a merge as
soon as the events that caused it are stored. Resolution is idempotent, so a retried delivery resolves
again to the same person; identity down is a transient failure like the sink's own.

Every sink reads the same events from the spool, so the resolver keeps the latest resolutions (the event
as the sinks get it → the event resolved, and the overrides of the call that made a merge) and one sink's
call serves the others, which ask only for what arrived since it read (before, every event was
resolved once per sink: three times with journeys, decision and the orchestrator). One call at a time, so
that two sinks woken by the same write do not both miss. A sink too far behind for the cache resolves
again, as a retry does. An event resolved just before a merge or an erasure and delivered after it is the
in-flight case the consumers already handle (ADR 38); the cache widens that window from one call to about
a linger (the journey store's, 1 s).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import replace

import grpc
from opentelemetry import metrics

from wayline.common.context import TENANT_HEADER
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_ingest import wire
from wayline_ingest.sinks.base import PermanentDeliveryError, Sink, TransientDeliveryError
from wayline_ingest.sinks.grpc import classify
from wayline_ingest.sized_fifo import SizedFifo

__all__ = ["IdentityResolver", "ResolvingSink"]

_RESOLVE_BATCH = 1000  # the contract's limit per call
# Resolutions kept for the other sinks: a second or two of a busy spool's events, the journey store's 1 s
# linger included; at most _CACHED_BYTES of events (each kept as read and as resolved, 200-500 bytes).
_CACHED_RESOLUTIONS = 20_000
_CACHED_BYTES = 16 * 1024 * 1024
_OVERRIDES_BATCH = 10_000
_IDENTITY = identity_pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
_JOURNEYS = journeys_pb.DESCRIPTOR.services_by_name["JourneyService"].full_name
_RESOLVE = f"/{_IDENTITY}/ResolveIdentities"
_resolutions = metrics.get_meter("wayline.ingest").create_counter(
    "ingest.identity.resolutions",
    unit="{event}",
    description="Events whose person the sinks took from the resolver's cache or asked identity for.",
)
_APPLY_OVERRIDES = f"/{_JOURNEYS}/ApplyPersonOverrides"
_INPUT_INDEX = re.compile(r"^inputs\[(\d+)\]")


class IdentityResolver:
    """Resolves events' persons with the identity service; shared by every sink of the forwarder.

    It works on the events' bytes (`wire.py`): the requests are projected from them and identity's answers
    written into them without building a Python message per event (ADR 13)."""

    def __init__(
        self,
        channel: grpc.Channel,
        timeout: float = 30.0,
        cached: int = _CACHED_RESOLUTIONS,
        cached_bytes: int = _CACHED_BYTES,
    ) -> None:
        # Bytes in, bytes out: no serialiser, no deserialiser.
        self._call = channel.unary_unary(_RESOLVE, request_serializer=None, response_deserializer=None)
        self._timeout = timeout
        self._lock = threading.Lock()
        # (tenant, the event as the sinks get it) → (the event resolved, the overrides of the call that made
        # it). The forwarder hands every sink the same bytes objects, whose hash Python keeps: a lookup costs
        # no hashing and its comparison is by identity. An entry's size: both events.
        self._cache: SizedFifo[tuple[str, bytes], tuple[bytes, tuple[bytes, ...]]] = SizedFifo(
            cached_bytes, cached
        )
        self.calls = 0  # ResolveIdentities calls made (the tests count them)

    def resolve(self, tenant: str, events: Sequence[bytes]) -> tuple[list[bytes], list[bytes]]:
        """Each event with its person id and normalised identifiers; and the person overrides the merges
        made (serialised)."""
        resolved = list(events)
        overrides: dict[bytes, None] = {}  # in order, each once
        with self._lock:
            cache = self._cache
            missing: list[int] = []
            for index, raw in enumerate(events):
                hit = cache.get((tenant, raw))
                if hit is None:
                    missing.append(index)
                    continue
                resolved[index] = hit[0]
                if hit[1]:
                    overrides.update(dict.fromkeys(hit[1]))
            todo = [index for index in missing if wire.has_identifiers(events[index])]
            hits = len(events) - len(missing)
            for start in range(0, len(todo), _RESOLVE_BATCH):
                chunk = todo[start : start + _RESOLVE_BATCH]
                answer = self._resolve_chunk(tenant, events, chunk)
                made = tuple(answer.person_overrides)
                for index, resolution in zip(chunk, answer.resolutions, strict=True):
                    raw = events[index]
                    done = resolved[index] = wire.apply_resolution(raw, resolution)
                    cache.put((tenant, raw), (done, made), len(raw) + len(done))
                overrides.update(dict.fromkeys(made))
            cache.evict()
        if hits:
            _resolutions.add(hits, {"source": "cache"})
        if todo:
            _resolutions.add(len(todo), {"source": "identity"})
        return resolved, list(overrides)

    def _resolve_chunk(self, tenant: str, events: Sequence[bytes], chunk: list[int]) -> wire.Resolutions:
        """Resolve `events` at the positions `chunk` in one call."""
        self.calls += 1
        request = wire.resolution_request([events[index] for index in chunk])
        try:
            response = self._call(request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout)
        except grpc.RpcError as error:
            raise _blaming_the_event(classify(error), chunk) from error
        return wire.read_resolutions(response)


def _blaming_the_event(
    error: TransientDeliveryError | PermanentDeliveryError, chunk: list[int]
) -> TransientDeliveryError | PermanentDeliveryError:
    """Identity names the input it refused (`inputs[i]...`), the i-th of the call's; the deliverer parks the
    event it names by its place in the delivery (`events[j]...`). Translated, one refused event costs the
    delivery one more call, not the halvings that find it when no event is named."""
    failure = error.failure
    named = _INPUT_INDEX.match(failure.field)
    if not isinstance(error, PermanentDeliveryError) or named is None or int(named[1]) >= len(chunk):
        return error
    position = chunk[int(named[1])]
    field = f"events[{position}]{failure.field[named.end() :]}"
    return PermanentDeliveryError(replace(failure, field=field, index=position))


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
        self._apply_overrides = (  # bytes in, bytes out, like the resolver's calls
            journeys.unary_unary(_APPLY_OVERRIDES, request_serializer=None, response_deserializer=None)
            if journeys is not None
            else None
        )
        self._timeout = timeout

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        resolved, overrides = self._resolver.resolve(tenant, events)
        if overrides and self._apply_overrides is not None:
            for start in range(0, len(overrides), _OVERRIDES_BATCH):
                request = wire.person_overrides_request(overrides[start : start + _OVERRIDES_BATCH])
                try:
                    self._apply_overrides(request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout)
                except grpc.RpcError as error:
                    raise classify(error) from error
        self._inner.deliver(tenant, resolved)

    def close(self) -> None:
        self._inner.close()
