"""The calls traces make to other services, each behind a small class: identity (a person's identifier, for
the events' identifiers), ingest (writing events), journeys (reading them back) and the contact ledger.
Failures that a retry may cure become DownstreamUnavailable; the rest say what was wrong."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc

from wayline.common.context import TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
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
    profile (or to the profile it was merged into). Cached by (tenant, person), bounded: a person's first
    identifier rarely changes, and any identifier of the profile resolves to it."""

    def __init__(self, channel: grpc.Channel, timeout: float = 5.0, capacity: int = 100_000) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._timeout = timeout
        self._capacity = capacity
        self._cache: OrderedDict[tuple[str, str], event_pb2.Identifier] = OrderedDict()
        self._lock = threading.Lock()

    def identifier(self, tenant: str, person_id: str) -> event_pb2.Identifier:
        """PersonUnknown when identity has no such profile (or no person was named: a decision for an
        identifier identity does not know); DownstreamUnavailable when it is down."""
        if not person_id:
            raise PersonUnknown(person_id)
        key = (tenant, person_id)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
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
        found = profile.identifiers[0].identifier
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return found


@dataclass(frozen=True)
class BatchOutcome:
    accepted: frozenset[str]  # event ids
    rejected: dict[str, str]  # event id → why, for the events ingest refused (retrying will not help)


class EventWriter:
    """Writes events through ingest: durable once acknowledged (ADR 0008)."""

    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        self._stub = ingest_grpc.IngestServiceStub(channel)
        self._timeout = timeout

    def write(self, tenant: str, events: Sequence[event_pb2.Event]) -> BatchOutcome:
        """DownstreamUnavailable when ingest cannot take them now (down, its spool full): retry the same
        events."""
        try:
            response = self._stub.TrackBatch(
                ingest_pb.TrackBatchRequest(events=events), timeout=self._timeout, metadata=_metadata(tenant)
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
