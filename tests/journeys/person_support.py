"""Helpers of the person tests (EvaluatePersonConditions, GetPersonProperties and their batches): fresh person
ids, identify events carrying traits, refs by id or identifier, one person's properties and conditions, and
the conditions of each kind."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from google.protobuf import json_format

from tests.journeys.conftest import Journeys
from tests.journeys.segments_support import event
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.store.person_conditions import ClickHousePersonConditions
from wayline_journeys.store.sql import SqlParams

__all__ = [
    "Condition",
    "Person",
    "aggregate",
    "evaluate",
    "group",
    "holds",
    "identify",
    "negated",
    "person",
    "person_ref",
    "properties",
    "purchases",
    "rfm",
    "sequence",
    "stage",
    "trait",
]

Person: TypeAlias = str | tuple[str, str]
"""A person by id, or by an identifier (type, value)."""

Condition = condition_pb2.PersonCondition


def person() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def identify(person: str, at: datetime, **traits: Any) -> event_pb2.Event:
    """An identify event of `person` at `at` setting `traits` (carrying the user id `u-<person>`)."""
    found = event(person, "Identify", at)
    found.type = event_pb2.EVENT_TYPE_IDENTIFY
    json_format.ParseDict(traits, found.properties)
    return found


def person_ref(person: Person) -> event_pb2.PersonRef:
    if isinstance(person, str):
        return event_pb2.PersonRef(person_id=person)
    return event_pb2.PersonRef(identifier=event_pb2.Identifier(type=person[0], value=person[1]))


def properties(journeys: Journeys, person: Person, *keys: str) -> pb.GetPersonPropertiesResponse:
    """GetPersonProperties' answer for the person and keys (none: every property)."""
    request = pb.GetPersonPropertiesRequest(person=person_ref(person), keys=keys)
    response: pb.GetPersonPropertiesResponse = journeys.stub.GetPersonProperties(
        request, metadata=journeys.metadata, timeout=10
    )
    return response


def evaluate(
    journeys: Journeys, person: Person, *conditions: Condition
) -> pb.EvaluatePersonConditionsResponse:
    """EvaluatePersonConditions' answer for the person and conditions."""
    request = pb.EvaluatePersonConditionsRequest(person=person_ref(person), conditions=conditions)
    response: pb.EvaluatePersonConditionsResponse = journeys.stub.EvaluatePersonConditions(
        request, metadata=journeys.metadata, timeout=30
    )
    return response


def holds(journeys: Journeys, person: Person, *conditions: Condition) -> list[bool]:
    return list(evaluate(journeys, person, *conditions).results)


def trait(key: str, *values: Any, operator: int = analytics_pb2.FILTER_OPERATOR_EQUALS) -> Condition:
    found = analytics_pb2.PropertyFilter(property=f"person.{key}", operator=operator)  # type: ignore[arg-type]
    for value in values:
        json_format.ParseDict(value, found.values.add())
    return Condition(person_property=found)


def purchases(at_least: int, currency: str = "EUR") -> Condition:
    return Condition(
        customer_value=condition_pb2.CustomerValueCondition(
            metric=condition_pb2.CUSTOMER_VALUE_METRIC_PURCHASE_COUNT, currency_code=currency, count=at_least
        )
    )


def rfm(*segments: int) -> Condition:
    """The person's RFM segment (in EUR) is one of `segments`."""
    return Condition(
        customer_value=condition_pb2.CustomerValueCondition(
            metric=condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT,
            currency_code="EUR",
            rfm_segments=segments,  # type: ignore[arg-type]
        )
    )


def stage(*stages: int) -> Condition:
    return Condition(lifecycle_stage=condition_pb2.LifecycleStageCondition(stages=stages))  # type: ignore[arg-type]


def sequence(*names: str) -> Condition:
    steps = [analytics_pb2.EventMatcher(event_name=n) for n in names]
    return Condition(sequence=condition_pb2.SequenceCondition(steps=steps))


def negated(condition: Condition) -> Condition:
    found = Condition()
    found.CopyFrom(condition)
    found.negate = True
    return found


def group(operator: int, *conditions: Condition) -> Condition:
    return Condition(
        group=condition_pb2.ConditionGroup(operator=operator, conditions=conditions)  # type: ignore[arg-type]
    )


def aggregate(
    aggregation: int,
    prop: str,
    comparison: int,
    threshold: float,
    name: str = "",
    currency: str = "",
    window: timedelta | None = None,
) -> Condition:
    found = Condition(
        event_aggregate=condition_pb2.EventAggregateCondition(
            event=analytics_pb2.EventMatcher(event_name=name),
            aggregation=aggregation,  # type: ignore[arg-type]
            property=prop,
            currency_code=currency,
            comparison=comparison,  # type: ignore[arg-type]
            threshold=threshold,
        )
    )
    if window is not None:
        found.event_aggregate.window.FromTimedelta(window)
    return found


class CountedStatements(ClickHousePersonConditions):
    """The store's person conditions and traits, counting the statements they run."""

    statements = 0

    def _rows(
        self, sql: str, params: SqlParams, action: str, settings: dict[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        self.statements += 1
        return super()._rows(sql, params, action, settings)
