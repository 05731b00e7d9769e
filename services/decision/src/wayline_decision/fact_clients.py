"""Decide's facts over gRPC: segment memberships and lifecycle stages from journeys, profiles from identity,
contact-policy verdicts from the orchestrator's ledger (CheckContact).

Each call is started as a gRPC future from the handler's thread (so the kit's interceptor passes on the
tenant, the request id and the remaining deadline) with the fact budget as its timeout; they all travel at
once, while Decide reads features and scores. A call that fails or does not answer in time leaves its fact
unavailable, with a reason the trace shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.journeys.v1 import lifecycle_stage_pb2
from wayline.orchestrator.v1 import contact_pb2, contact_policy_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_decision.decide.facts import (
    ContactKey,
    ContactVerdict,
    ContactViolation,
    Fact,
    FactNeeds,
    Facts,
    ResolvedPerson,
)
from wayline_decision.errors import DecideRequestInvalid, IdentityUnavailable

__all__ = ["GrpcFactSource", "GrpcPersonResolver"]

_MAX_CHECKS = 50  # CheckContact's limit per request


def _why(error: grpc.RpcError, service: str, budget_s: float) -> str:
    code = error.code()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{service} did not answer within {budget_s * 1000:.0f} ms"
    return f"{service} answered {code.name}: {error.details()}"


def _person(person_id: str) -> event_pb2.PersonRef:
    return event_pb2.PersonRef(person_id=person_id)


@dataclass
class _Call:
    fact: Fact
    future: Any  # grpc.Future
    service: str
    apply: Callable[[Facts, Any], None]
    not_found_is_empty: bool = True  # NOT_FOUND answers the question (an unknown person), or fails it


@dataclass
class _Pending:
    deadline: float
    budget_s: float
    calls: list[_Call] = field(default_factory=list)
    unavailable: dict[Fact, str] = field(default_factory=dict)

    def result(self) -> Facts:
        facts = Facts(unavailable=dict(self.unavailable))
        for call in self.calls:
            if call.fact in facts.unavailable:
                continue  # an earlier part of the same fact failed
            try:
                response = call.future.result(timeout=max(0.0, self.deadline - time.monotonic()))
            except grpc.FutureTimeoutError:
                call.future.cancel()
                facts.unavailable[call.fact] = (
                    f"{call.service} did not answer within {self.budget_s * 1000:.0f} ms"
                )
            except grpc.RpcError as error:
                if error.code() is grpc.StatusCode.NOT_FOUND and call.not_found_is_empty:
                    call.apply(facts, None)
                else:
                    facts.unavailable[call.fact] = _why(error, call.service, self.budget_s)
            else:
                call.apply(facts, response)
        if Fact.CONTACT_POLICY in facts.unavailable:
            facts.contacts = None
        return facts


def _segments(facts: Facts, response: journeys_pb.GetSegmentMembershipsResponse | None) -> None:
    # NOT_FOUND: journeys holds no event of the person, who belongs to no segment.
    facts.segments = (
        frozenset(m.segment for m in response.memberships) if response is not None else frozenset()
    )


def _lifecycle(facts: Facts, response: journeys_pb.GetLifecycleStagesResponse | None) -> None:
    stage = response.persons[0].stage if response is not None and response.persons else 0
    facts.lifecycle_stage = lifecycle_stage_pb2.LifecycleStage.Name(stage)  # type: ignore[arg-type]


def _profile(facts: Facts, response: identity_pb.GetProfileResponse | None) -> None:
    identifiers = response.profile.identifiers if response is not None else ()
    facts.identifier_types = frozenset(i.identifier.type for i in identifiers)


def _contacts(keys: list[ContactKey]) -> Callable[[Facts, Any], None]:
    def apply(facts: Facts, response: orchestrator_pb.CheckContactResponse | None) -> None:
        verdicts = dict(facts.contacts or {})
        results = response.results if response is not None else ()
        for key, result in zip(keys, results, strict=False):
            verdicts[key] = ContactVerdict(
                result.allowed,
                tuple(
                    ContactViolation(contact_pb2.ContactBlockReason.Name(v.reason), v.rule, v.description)
                    for v in result.violations
                ),
            )
        facts.contacts = verdicts

    return apply


class GrpcFactSource:
    """Facts from the other services; a service without a channel (no address configured) leaves its facts
    unavailable, so the candidates that need them are filtered."""

    def __init__(
        self,
        journeys: grpc.Channel | None,
        identity: grpc.Channel | None,
        orchestrator: grpc.Channel | None,
    ) -> None:
        self._journeys = journeys_grpc.JourneyServiceStub(journeys) if journeys else None
        self._identity = identity_grpc.IdentityServiceStub(identity) if identity else None
        self._orchestrator = orchestrator_grpc.OrchestratorServiceStub(orchestrator) if orchestrator else None

    def start(self, person_id: str, needs: FactNeeds, budget_s: float) -> _Pending:
        pending = _Pending(time.monotonic() + budget_s, budget_s)
        person = _person(person_id)
        wanted: list[tuple[bool, Fact, str, Callable[[], list[_Call]] | None]] = [
            (bool(needs.segments), Fact.SEGMENTS, "journeys", self._segments(person, needs, budget_s)),
            (needs.lifecycle, Fact.LIFECYCLE, "journeys", self._lifecycle(person, budget_s)),
            (needs.profile, Fact.PROFILE, "identity", self._profile(person, budget_s)),
            (
                bool(needs.contacts),
                Fact.CONTACT_POLICY,
                "orchestrator",
                self._contacts(person_id, needs, budget_s),
            ),
        ]
        for needed, fact, service, begin in wanted:
            if not needed:
                continue
            if begin is None:
                variable = f"WAYLINE_DECISION_{service.upper()}_ADDRESS"
                pending.unavailable[fact] = f"no {service} address is configured ({variable})"
            else:
                pending.calls.extend(begin())
        return pending

    def _segments(
        self, person: event_pb2.PersonRef, needs: FactNeeds, budget_s: float
    ) -> Callable[[], list[_Call]] | None:
        stub = self._journeys
        if stub is None:
            return None
        request = journeys_pb.GetSegmentMembershipsRequest(person=person, segments=sorted(needs.segments))
        return lambda: [
            _Call(
                Fact.SEGMENTS,
                stub.GetSegmentMemberships.future(request, timeout=budget_s),
                "journeys",
                _segments,
            )
        ]

    def _lifecycle(self, person: event_pb2.PersonRef, budget_s: float) -> Callable[[], list[_Call]] | None:
        stub = self._journeys
        if stub is None:
            return None
        request = journeys_pb.GetLifecycleStagesRequest(persons=[person])
        return lambda: [
            _Call(
                Fact.LIFECYCLE,
                stub.GetLifecycleStages.future(request, timeout=budget_s),
                "journeys",
                _lifecycle,
            )
        ]

    def _profile(self, person: event_pb2.PersonRef, budget_s: float) -> Callable[[], list[_Call]] | None:
        stub = self._identity
        if stub is None:
            return None
        request = identity_pb.GetProfileRequest(person=person)
        return lambda: [
            _Call(Fact.PROFILE, stub.GetProfile.future(request, timeout=budget_s), "identity", _profile)
        ]

    def _contacts(
        self, person_id: str, needs: FactNeeds, budget_s: float
    ) -> Callable[[], list[_Call]] | None:
        stub = self._orchestrator
        if stub is None:
            return None

        def begin() -> list[_Call]:
            calls = []
            keys = sorted(needs.contacts)
            for start in range(0, len(keys), _MAX_CHECKS):  # CheckContact takes at most 50 checks
                chunk = keys[start : start + _MAX_CHECKS]
                request = orchestrator_pb.CheckContactRequest(
                    person_id=person_id,
                    checks=[
                        contact_pb2.ContactCheck(
                            channel=event_pb2.Channel.Value(channel),
                            purpose=contact_policy_pb2.ContactPurpose.Value(purpose),
                        )
                        for channel, purpose in chunk
                    ],
                )
                future = stub.CheckContact.future(request, timeout=budget_s)
                calls.append(_Call(Fact.CONTACT_POLICY, future, "orchestrator", _contacts(chunk)))
            return calls

        return begin


class GrpcPersonResolver:
    """Resolves an identifier with identity's GetProfile: a read, unlike ResolveIdentities, which would
    create a profile for an identifier nobody holds — a decision must not invent persons."""

    def __init__(self, identity: grpc.Channel | None) -> None:
        self._identity = identity_grpc.IdentityServiceStub(identity) if identity else None

    def resolve(self, identifier_type: str, value: str, budget_s: float) -> ResolvedPerson | None:
        if self._identity is None:
            raise IdentityUnavailable("no identity address is configured (WAYLINE_DECISION_IDENTITY_ADDRESS)")
        request = identity_pb.GetProfileRequest(
            person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type=identifier_type, value=value))
        )
        try:
            profile = self._identity.GetProfile(request, timeout=budget_s).profile
        except grpc.RpcError as error:
            code = error.code()
            if code is grpc.StatusCode.NOT_FOUND:
                return None
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                raise DecideRequestInvalid(
                    [FieldViolation("person.identifier", str(error.details()))]
                ) from None
            raise IdentityUnavailable(_why(error, "identity", budget_s)) from None
        return ResolvedPerson(profile.person_id, frozenset(i.identifier.type for i in profile.identifiers))
