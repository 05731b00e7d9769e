"""The calls traces make to other services, each behind a small class: identity (a person's identifier, for
the events' identifiers), ingest (writing events), journeys (reading them back) and the contact ledger.
Failures that a retry may cure become DownstreamUnavailable; the rest say what was wrong."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc

from wayline.client.batching import track_batch_bytes
from wayline.common.context import TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_decision.errors import DownstreamUnavailable, PersonUnknown

__all__ = [
    "BatchOutcome",
    "ContactLedger",
    "EventWriter",
    "JourneysDecisions",
    "PersonIdentifiers",
    "unavailable",
]

_INGEST = ingest_pb.DESCRIPTOR.services_by_name["IngestService"]
_TRACK_BATCH = f"/{_INGEST.full_name}/{_INGEST.methods_by_name['TrackBatch'].name}"
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,  # a backend's defect or crash mid-call: the next attempt may succeed
    }
)


def unavailable(service: str, error: grpc.RpcError) -> DownstreamUnavailable:
    return DownstreamUnavailable(service, f"{error.code().name}: {error.details() or ''}")


def _metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_HEADER, tenant),)


class PersonIdentifiers:
    """A person's first identifier (identity orders them by type priority), for the events written on their
    behalf: ingest takes identifiers, never a person id, and identity resolves this one to the person's
    profile (or to the profile it was merged into). Cached by (tenant, person), bounded, for `ttl_seconds`
    at most, and forgotten as soon as identity's override feed reports a change of the person (forgetting.py:
    a merge, an unmerge or a split may change which identifier is theirs; an erasure ends them).

    An erased person is remembered as erased (bounded, the oldest forgotten first): `identifier` raises
    PersonUnknown for them without asking identity, so nothing is written for them any more, even with an
    identifier looked up before the erasure. A lookup that was under way when its person was forgotten is
    not cached: it may have read identity before the change."""

    def __init__(  # noqa: PLR0917 - the client, its bounds, and the clock of its expiry
        self,
        channel: grpc.Channel,
        timeout: float = 5.0,
        capacity: int = 100_000,
        ttl_seconds: float = 60.0,
        erased_capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._timeout = timeout
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._erased_capacity = erased_capacity
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, event_pb2.Identifier]] = OrderedDict()
        self._erased: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._looking_up: Counter[tuple[str, str]] = Counter()  # lookups under way, by person
        self._forgotten_meanwhile: set[tuple[str, str]] = set()  # persons forgotten during their lookup
        self._tenants: set[str] = set()
        self._lock = threading.Lock()

    def identifier(self, tenant: str, person_id: str) -> event_pb2.Identifier:
        """PersonUnknown when identity has no such profile (erased, or no person was named: a decision for
        an identifier identity does not know); DownstreamUnavailable when it is down."""
        if not person_id:
            raise PersonUnknown(person_id)
        key = (tenant, person_id)
        with self._lock:
            self._tenants.add(tenant)
            if key in self._erased:
                raise PersonUnknown(person_id)
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._clock():
                self._cache.move_to_end(key)
                return cached[1]
            self._looking_up[key] += 1
        try:
            found = self._look_up(tenant, person_id)
        finally:
            with self._lock:
                self._looking_up[key] -= 1
                forgotten = key in self._forgotten_meanwhile
                if not self._looking_up[key]:
                    del self._looking_up[key]
                    self._forgotten_meanwhile.discard(key)
        with self._lock:
            if key in self._erased:
                raise PersonUnknown(person_id)  # erased while identity was asked
            if not forgotten:
                self._cache[key] = (self._clock() + self._ttl, found)
                self._cache.move_to_end(key)
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        if forgotten:  # the person changed while identity was asked: what it answered may be stale
            return self._look_up(tenant, person_id)
        return found

    def _look_up(self, tenant: str, person_id: str) -> event_pb2.Identifier:
        request = identity_pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person_id))
        try:
            profile = self._stub.GetProfile(
                request, timeout=self._timeout, metadata=_metadata(tenant)
            ).profile
        except grpc.RpcError as error:
            if error.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}:
                raise PersonUnknown(person_id) from error  # retrying the same lookup cannot succeed
            raise unavailable("identity", error) from error
        if not profile.identifiers:
            raise PersonUnknown(person_id)
        return profile.identifiers[0].identifier

    def forget(self, tenant: str, person_id: str) -> None:
        """The person's identifier may have changed (a merge, an unmerge, a split): ask identity next time."""
        key = (tenant, person_id)
        with self._lock:
            self._cache.pop(key, None)
            if key in self._looking_up:
                self._forgotten_meanwhile.add(key)

    def erase(self, tenant: str, person_id: str) -> None:
        """The person was erased: forget their identifier, and write nothing for them from now on."""
        key = (tenant, person_id)
        with self._lock:
            self._cache.pop(key, None)
            if key in self._looking_up:
                self._forgotten_meanwhile.add(key)
            self._erased[key] = None
            self._erased.move_to_end(key)
            while len(self._erased) > self._erased_capacity:
                self._erased.popitem(last=False)

    def erased(self, tenant: str, person_id: str) -> bool:
        """True when the person is known to be erased (identity's override feed said so)."""
        if not person_id:
            return False
        with self._lock:
            return (tenant, person_id) in self._erased

    def tenant_names(self) -> set[str]:
        """The tenants persons were looked up for."""
        with self._lock:
            return set(self._tenants)


@dataclass(frozen=True)
class BatchOutcome:
    accepted: frozenset[str]  # event ids
    rejected: dict[str, str]  # event id → why, for the events ingest refused (retrying will not help)


class EventWriter:
    """Writes events through ingest: durable once acknowledged (ADR 0008)."""

    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        # TrackBatch with the request's bytes framed from the events' own (track_batch_bytes): no copy.
        self._track_batch = channel.unary_unary(
            _TRACK_BATCH,
            request_serializer=None,
            response_deserializer=ingest_pb.TrackBatchResponse.FromString,
        )
        self._timeout = timeout

    def write(self, tenant: str, events: Sequence[event_pb2.Event]) -> BatchOutcome:
        """DownstreamUnavailable when ingest cannot take them now (down, its spool full): retry the same
        events."""
        try:
            response: ingest_pb.TrackBatchResponse = self._track_batch(
                track_batch_bytes(events), timeout=self._timeout, metadata=_metadata(tenant)
            )
        except grpc.RpcError as error:
            raise unavailable("ingest", error) from error
        rejected = {
            events[r.index].event_id: "; ".join(f"{v.field}: {v.description}" for v in r.violations)
            or "rejected"
            for r in response.rejections
        }
        return BatchOutcome(frozenset(response.accepted_event_ids), rejected)


class JourneysDecisions:
    """The decisions journeys indexes (GetDecisionEvents, ExportDecisionEvents, CountDecisionOutcomes)."""

    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = journeys_grpc.JourneyServiceStub(channel)
        self._timeout = timeout

    def events(self, tenant: str, decision_id: str) -> list[event_pb2.Event]:
        try:
            response = self._stub.GetDecisionEvents(
                journeys_pb.GetDecisionEventsRequest(decision_id=decision_id),
                timeout=self._timeout,
                metadata=_metadata(tenant),
            )
        except grpc.RpcError as error:
            raise unavailable("journeys", error) from error
        return list(response.decision.events)

    def timeline(
        self, tenant: str, request: journeys_pb.GetTimelineRequest
    ) -> journeys_pb.GetTimelineResponse | None:
        """One page of a person's timeline; None when the request names an identifier no stored event
        carries. InvalidArgument (journeys' own, with its violations) is re-raised as the grpc.RpcError."""
        try:
            response: journeys_pb.GetTimelineResponse = self._stub.GetTimeline(
                request, timeout=self._timeout, metadata=_metadata(tenant)
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise
            raise unavailable("journeys", error) from error
        return response

    def export(
        self, tenant: str, request: journeys_pb.ExportDecisionEventsRequest, timeout: float | None
    ) -> Iterator[list[journeys_pb.DecisionEvents]]:
        try:
            for response in self._stub.ExportDecisionEvents(
                request, timeout=timeout, metadata=_metadata(tenant)
            ):
                yield list(response.decisions)
        except grpc.RpcError as error:
            if error.code() in _RETRYABLE:
                raise unavailable("journeys", error) from error
            raise

    def count_outcomes(
        self, tenant: str, request: journeys_pb.CountDecisionOutcomesRequest
    ) -> journeys_pb.CountDecisionOutcomesResponse:
        try:
            response: journeys_pb.CountDecisionOutcomesResponse = self._stub.CountDecisionOutcomes(
                request, timeout=self._timeout, metadata=_metadata(tenant)
            )
        except grpc.RpcError as error:
            raise unavailable("journeys", error) from error
        return response


class ContactLedger:
    """The orchestrator's contact ledger (RecordContact): one ledger for decisions and flows."""

    def __init__(self, channel: grpc.Channel, timeout: float = 5.0) -> None:
        self._stub = orchestrator_grpc.OrchestratorServiceStub(channel)
        self._timeout = timeout

    def record(self, tenant: str, contact: contact_pb2.ContactRecord) -> None:
        """Idempotent by `contact.contact_id`; DownstreamUnavailable when the ledger is down."""
        try:
            self._stub.RecordContact(
                orchestrator_pb.RecordContactRequest(contact=contact),
                timeout=self._timeout,
                metadata=_metadata(tenant),
            )
        except grpc.RpcError as error:
            raise unavailable("orchestrator", error) from error
