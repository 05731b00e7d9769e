"""EvaluatePersonConditions, GetPersonProperties and their batches' requests → person_conditions.py, with
every bad field reported (paths from the request's root, the conditions through the validators segments use),
and the answers back."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import json_format

from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import condition_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.conditions import Condition
from wayline_journeys.conditions_converters import person_condition, raise_for
from wayline_journeys.person_conditions import (
    MAX_CONDITIONS_PER_CALL,
    MAX_PERSONS_PER_BATCH,
    MAX_PROPERTY_KEYS,
    PersonConditionsAnswer,
    Trait,
)
from wayline_journeys.person_refs import PersonRef
from wayline_journeys.person_refs_converters import person_ref

__all__ = [
    "batch_evaluate_request",
    "batch_evaluate_response",
    "batch_properties_request",
    "batch_properties_response",
    "evaluate_request",
    "evaluate_response",
    "properties_request",
    "properties_response",
]


def evaluate_request(request: pb.EvaluatePersonConditionsRequest) -> tuple[PersonRef, list[Condition]]:
    violations: list[FieldViolation] = []
    ref = person_ref(request.person, "person", violations)
    conditions = _conditions(request.conditions, violations)
    raise_for(violations, "the request")
    return ref, conditions


def batch_evaluate_request(
    request: pb.BatchEvaluatePersonConditionsRequest,
) -> tuple[list[PersonRef], list[Condition]]:
    violations: list[FieldViolation] = []
    refs = _persons(request.persons, violations)
    conditions = _conditions(request.conditions, violations)
    raise_for(violations, "the request")
    return refs, conditions


def _conditions(
    conditions: Sequence[condition_pb2.PersonCondition], violations: list[FieldViolation]
) -> list[Condition]:
    """The conditions asked (1 to 50), recording every malformed one through the segments' validators."""
    if not conditions:
        violations.append(FieldViolation("conditions", "at least one condition", "REQUIRED"))
    if len(conditions) > MAX_CONDITIONS_PER_CALL:
        violations.append(
            FieldViolation("conditions", f"at most {MAX_CONDITIONS_PER_CALL} conditions", "OUT_OF_RANGE")
        )
    found = [
        person_condition(c, f"conditions[{i}]", violations, segments=True, customer_values=True)
        for i, c in enumerate(conditions)
    ]
    return [c for c in found if c is not None]


def _persons(persons: Sequence[event_pb2.PersonRef], violations: list[FieldViolation]) -> list[PersonRef]:
    """A batch's persons (1 to 1000), recording every malformed ref with its index."""
    if not persons:
        violations.append(FieldViolation("persons", "at least one person", "REQUIRED"))
    if len(persons) > MAX_PERSONS_PER_BATCH:
        violations.append(
            FieldViolation("persons", f"at most {MAX_PERSONS_PER_BATCH} persons", "OUT_OF_RANGE")
        )
    return [person_ref(ref, f"persons[{i}]", violations) for i, ref in enumerate(persons)]


def evaluate_response(answer: PersonConditionsAnswer) -> pb.EvaluatePersonConditionsResponse:
    return pb.EvaluatePersonConditionsResponse(person_id=answer.person_id, results=answer.results)


def batch_evaluate_response(
    answers: Sequence[PersonConditionsAnswer],
) -> pb.BatchEvaluatePersonConditionsResponse:
    return pb.BatchEvaluatePersonConditionsResponse(persons=[evaluate_response(a) for a in answers])


def properties_request(request: pb.GetPersonPropertiesRequest) -> tuple[PersonRef, list[str]]:
    violations: list[FieldViolation] = []
    ref = person_ref(request.person, "person", violations)
    keys = _property_keys(request.keys, violations)
    raise_for(violations, "the request")
    return ref, keys


def batch_properties_request(
    request: pb.BatchGetPersonPropertiesRequest,
) -> tuple[list[PersonRef], list[str]]:
    violations: list[FieldViolation] = []
    refs = _persons(request.persons, violations)
    keys = _property_keys(request.keys, violations)
    raise_for(violations, "the request")
    return refs, keys


def _property_keys(keys: Sequence[str], violations: list[FieldViolation]) -> list[str]:
    """The keys asked (none: every property), recording why they are unusable: too many, or one empty."""
    if len(keys) > MAX_PROPERTY_KEYS:
        violations.append(FieldViolation("keys", f"at most {MAX_PROPERTY_KEYS} keys", "OUT_OF_RANGE"))
    for i, key in enumerate(keys):
        if not key:
            violations.append(FieldViolation(f"keys[{i}]", "must not be empty", "REQUIRED"))
    return list(keys)


def properties_response(person_id: str, traits: dict[str, Trait]) -> pb.GetPersonPropertiesResponse:
    found = pb.GetPersonPropertiesResponse(person_id=person_id)
    json_format.ParseDict({key: trait.value for key, trait in traits.items()}, found.properties)
    for key, trait in traits.items():
        source = found.sources[key]
        source.timestamp.FromDatetime(trait.at)
        source.event_id = trait.event_id
    return found


def batch_properties_response(
    answers: Sequence[tuple[str, dict[str, Trait]]],
) -> pb.BatchGetPersonPropertiesResponse:
    return pb.BatchGetPersonPropertiesResponse(persons=[properties_response(*a) for a in answers])
