"""The two calls the shipper makes, each behind a small class: identity (an identifier of the person, for
the event's identifiers: ingest takes identifiers, never a person id) and ingest (TrackBatch). Failures a
retry may cure raise PeerUnavailable; a person identity does not know raises PersonUnknown."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from wayline.client.batching import split, wire_size
from wayline.common.context import TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc

__all__ = ["BatchOutcome", "EventWriter", "PeerUnavailable", "PersonIdentifiers", "PersonUnknown"]


class PeerUnavailable(Exception):
    """Identity or ingest cannot answer now: ship the same events again later."""

    def __init__(self, service: str, error: grpc.RpcError) -> None:
        super().__init__(f"{service}: {error.code().name}: {error.details() or ''}")


class PersonUnknown(Exception):
    """Identity has no such person (erased, or never known): their events cannot be shipped, ever."""


def _metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_HEADER, tenant),)


class PersonIdentifiers:
    """A person's first identifier (identity orders them by type priority), which identity resolves back to
    the person's profile (or to the one it was merged into). Cached briefly by (tenant, person) and bounded:
    a batch names a person several times, and an erased person's entry must not outlive the erasure long."""

    def __init__(
        self,
        channel: grpc.Channel,
        timeout: float,
        ttl_seconds: float = 60.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._timeout = timeout
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, event_pb2.Identifier]] = OrderedDict()
        self._lock = threading.Lock()

    def identifier(self, tenant: str, person_id: str) -> event_pb2.Identifier:
        key = (tenant, person_id)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        request = identity_pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person_id))
        try:
            profile = self._stub.GetProfile(
                request, timeout=self._timeout, metadata=_metadata(tenant)
            ).profile
        except grpc.RpcError as error:
            if error.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}:
                raise PersonUnknown(person_id) from error  # asking again cannot succeed
            raise PeerUnavailable("identity", error) from error
        if not profile.identifiers:
            raise PersonUnknown(person_id)
        found = profile.identifiers[0].identifier
        with self._lock:
            self._cache[key] = (now + self._ttl, found)
            self._cache.move_to_end(key)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return found


@dataclass(frozen=True)
class BatchOutcome:
    rejected: dict[str, str]  # event id → why, for the events ingest refused (shipping again cannot help)


class EventWriter:
    """TrackBatch through ingest: the events are durable once it answers (ADR 0008)."""

    def __init__(self, channel: grpc.Channel, timeout: float) -> None:
        self._stub = ingest_grpc.IngestServiceStub(channel)
        self._timeout = timeout

    def write(self, tenant: str, events: Sequence[event_pb2.Event]) -> BatchOutcome:
        """Every event stored or rejected; PeerUnavailable when a TrackBatch failed, and then all of them are
        to be written again (those a batch before it stored are stored once: ingest deduplicates by id).

        The events go in as many TrackBatches as ingest's default limits need (1,000 events, 500 KiB):
        ingest refuses a whole batch over its byte limit, and the same batch sent again would be refused
        again, so events with long suppression reasons would wait forever."""
        rejected: dict[str, str] = {}
        for batch in split(events, [wire_size(e) for e in events]):
            try:
                response = self._stub.TrackBatch(
                    ingest_pb.TrackBatchRequest(events=batch),
                    timeout=self._timeout,
                    metadata=_metadata(tenant),
                )
            except grpc.RpcError as error:
                # Whatever the code: this batch was not stored. INVALID_ARGUMENT (a limit set below ingest's
                # defaults) is an operator's to fix, and the events wait for it rather than vanish.
                raise PeerUnavailable("ingest", error) from error
            for r in response.rejections:
                why = "; ".join(f"{v.field}: {v.description}" for v in r.violations)
                rejected[batch[r.index].event_id] = why or "rejected"
        return BatchOutcome(rejected)
