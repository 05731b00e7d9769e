"""The flows' PersonLookup over the journeys service (BatchEvaluatePersonConditions,
BatchGetPersonProperties): what a branch, an entry audience or a personalised action asks of a person, or of
the persons of a batch at once (docs/adr/0036, 0092); one person is a batch of one.

Each call carries the tenant in metadata and the `journeys_timeout_seconds` deadline (capped by the deadline
of the RPC being served, when there is one); the runtime asks with no transaction open (answers.py). A
journeys service that is down or too slow raises PersonLookupUnavailable: the event or the timer is retried,
instead of a branch being taken on a guess. A condition journeys refuses (a segment deleted since the flow
was published, or a condition it no longer accepts) does not hold, and is logged: retrying would refuse it
again forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import structlog
from google.protobuf import json_format

from wayline.common.context import TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import condition_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_orchestrator.errors import PersonLookupUnavailable
from wayline_orchestrator.flows.runtime.lookups import Trait

__all__ = ["MAX_CONDITIONS_PER_CALL", "MAX_PERSONS_PER_CALL", "JourneysPersons"]

log = structlog.get_logger("wayline.orchestrator")

MAX_CONDITIONS_PER_CALL = 50  # BatchEvaluatePersonConditions' limits
MAX_PERSONS_PER_CALL = 1000  # and BatchGetPersonProperties'
_REFUSED = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})


class JourneysPersons:
    """Implements flows.runtime.lookups.PersonLookup; thread-safe (one gRPC channel, shared)."""

    def __init__(self, channel: grpc.Channel, timeout_s: float) -> None:
        self._stub = journeys_grpc.JourneyServiceStub(channel)
        self._timeout_s = timeout_s

    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        return self.holds_of(tenant, [person_id], conditions)[person_id]

    def holds_of(
        self, tenant: str, person_ids: Sequence[str], conditions: Sequence[dict[str, Any]]
    ) -> dict[str, list[bool]]:
        """BatchEvaluatePersonConditions, MAX_PERSONS_PER_CALL persons and MAX_CONDITIONS_PER_CALL
        conditions a call."""
        messages = [json_format.ParseDict(c, condition_pb2.PersonCondition()) for c in conditions]
        unique = list(dict.fromkeys(person_ids))
        found: dict[str, list[bool]] = {p: [] for p in unique}
        for first in range(0, len(unique), MAX_PERSONS_PER_CALL):
            chunk = unique[first : first + MAX_PERSONS_PER_CALL]
            for start in range(0, len(messages), MAX_CONDITIONS_PER_CALL):
                answers = self._evaluate(tenant, chunk, messages[start : start + MAX_CONDITIONS_PER_CALL])
                for person_id, results in zip(chunk, answers, strict=True):
                    found[person_id].extend(results)
        return found

    def _evaluate(
        self, tenant: str, person_ids: list[str], conditions: list[condition_pb2.PersonCondition]
    ) -> list[list[bool]]:
        """Each person's answers, in order."""
        request = journeys_pb.BatchEvaluatePersonConditionsRequest(
            persons=[event_pb2.PersonRef(person_id=p) for p in person_ids], conditions=conditions
        )
        try:
            response = self._stub.BatchEvaluatePersonConditions(
                request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout_s
            )
        except grpc.RpcError as error:
            code = error.code()
            if code not in _REFUSED:
                raise PersonLookupUnavailable(f"BatchEvaluatePersonConditions: {code.name}") from error
            if len(conditions) > 1:  # find the refused one(s): the others still count
                alone = [self._evaluate(tenant, person_ids, [c]) for c in conditions]
                return [[answers[i][0] for answers in alone] for i in range(len(person_ids))]
            log.warning(
                "flows.person_condition_refused", tenant=tenant, code=code.name, detail=error.details()
            )
            return [[False] for _ in person_ids]
        return [list(answer.results) for answer in response.persons]

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        return {key: trait.value for key, trait in self.traits(tenant, person_id, keys).items()}

    def traits(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        return self.traits_of(tenant, [person_id], keys).get(person_id, {})

    def traits_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        """BatchGetPersonProperties, MAX_PERSONS_PER_CALL persons a call. A journeys that predates it
        answers UNIMPLEMENTED, which is PersonLookupUnavailable like any failure: the entries wait and are
        retried until journeys is upgraded (upgrade journeys first, docs/flows.md)."""
        found: dict[str, dict[str, Trait]] = {}
        unique = list(dict.fromkeys(person_ids))
        for start in range(0, len(unique), MAX_PERSONS_PER_CALL):
            chunk = unique[start : start + MAX_PERSONS_PER_CALL]
            request = journeys_pb.BatchGetPersonPropertiesRequest(
                persons=[event_pb2.PersonRef(person_id=p) for p in chunk], keys=list(keys)
            )
            try:
                response = self._stub.BatchGetPersonProperties(
                    request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout_s
                )
            except grpc.RpcError as error:
                code = error.code()
                if code not in _REFUSED:
                    raise PersonLookupUnavailable(f"BatchGetPersonProperties: {code.name}") from error
                log.warning(
                    "flows.person_properties_refused", tenant=tenant, code=code.name, detail=error.details()
                )
                continue
            # In the request's order: the person asked about, whatever id the overrides give them now.
            found.update(zip(chunk, map(_traits, response.persons), strict=True))
        return found


def _traits(response: journeys_pb.GetPersonPropertiesResponse) -> dict[str, Trait]:
    values = json_format.MessageToDict(response.properties)
    sources = response.sources
    return {
        key: Trait(value, sources[key].timestamp.ToMicroseconds(), sources[key].event_id)
        if key in sources
        else Trait(value, 0, "")  # a journeys without sources: the value is taken as the oldest
        for key, value in values.items()
    }
