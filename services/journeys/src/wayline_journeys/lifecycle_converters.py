"""Protobuf ⇄ lifecycle.py: models (the built-in default among them), GetLifecycleStages requests and
responses."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf import struct_pb2

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, lifecycle_pb2, lifecycle_stage_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics import Population
from wayline_journeys.analytics_converters import population
from wayline_journeys.conditions import LifecycleStage
from wayline_journeys.conditions_converters import lifecycle_stage, person_condition, raise_for
from wayline_journeys.converters import checked_time
from wayline_journeys.lifecycle import (
    MAX_DISTRIBUTION_TIMES,
    MAX_PERSONS,
    STAGES,
    LifecycleModel,
    LifecycleQuery,
    LifecycleResult,
    StageDistribution,
)
from wayline_journeys.person_refs_converters import person_ref

__all__ = ["BUILT_IN_MODEL", "lifecycle_model", "lifecycle_query", "lifecycle_response"]


def _at_least(
    count: int, matcher: analytics_pb2.EventMatcher, days: int | None = None
) -> condition_pb2.PersonCondition:
    condition = condition_pb2.PersonCondition(
        event_count=condition_pb2.EventCountCondition(
            event=matcher, comparison=condition_pb2.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL, count=count
        )
    )
    if days is not None:
        condition.event_count.window.FromTimedelta(timedelta(days=days))
    return condition


def _matching(*filters: analytics_pb2.PropertyFilter) -> analytics_pb2.EventMatcher:
    return analytics_pb2.EventMatcher(property_filters=filters)


def _built_in() -> lifecycle_pb2.LifecycleModel:
    """The default model as the LifecycleModel comment states it."""
    named = analytics_pb2.PropertyFilter(
        property="name",
        operator=analytics_pb2.FILTER_OPERATOR_EQUALS,
        values=[
            struct_pb2.Value(string_value=n) for n in ("Review Submitted", "Referral Sent", "Product Shared")
        ],
    )
    revenue = analytics_pb2.PropertyFilter(property="revenue", operator=analytics_pb2.FILTER_OPERATOR_IS_SET)
    identify = analytics_pb2.EventMatcher(event_type=event_pb2.EVENT_TYPE_IDENTIFY)
    engaged = analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_MOBILE_APP])
    definitions = [
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_ADVOCACY, _at_least(1, _matching(named), 90)),
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_RETENTION, _at_least(2, _matching(revenue), 180)),
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_ENGAGEMENT, _at_least(5, engaged, 30)),
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_ONBOARDING, _at_least(1, identify, 30)),
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_ACQUISITION, _at_least(1, identify)),
        (lifecycle_stage_pb2.LIFECYCLE_STAGE_AWARENESS, _at_least(1, analytics_pb2.EventMatcher())),
    ]
    return lifecycle_pb2.LifecycleModel(
        stages=[lifecycle_pb2.LifecycleStageDefinition(stage=s, condition=c) for s, c in definitions]
    )


BUILT_IN_MODEL = _built_in()
"""The built-in default model (revision 0). Callers copy it before changing anything."""


def lifecycle_model(
    message: lifecycle_pb2.LifecycleModel, path: str, violations: list[FieldViolation]
) -> LifecycleModel:
    """The model's definitions; at most one per stage, and no lifecycle-stage condition in them."""
    definitions = []
    seen: dict[LifecycleStage, int] = {}
    for i, definition in enumerate(message.stages):
        where = f"{path}.stages[{i}]" if path else f"stages[{i}]"
        stage = lifecycle_stage(definition.stage, f"{where}.stage", violations)
        if stage is not None and stage in seen:
            violations.append(
                FieldViolation(
                    f"{where}.stage", f"{stage.name} is also defined by stages[{seen[stage]}]", "DUPLICATE"
                )
            )
        elif stage is not None:
            seen[stage] = i
        if not definition.HasField("condition"):
            violations.append(
                FieldViolation(f"{where}.condition", "every stage needs a condition", "REQUIRED")
            )
            continue
        condition = person_condition(
            definition.condition, f"{where}.condition", violations, lifecycle_stages=False
        )
        if stage is not None and condition is not None:
            definitions.append((stage, condition))
    return LifecycleModel(tuple(definitions))


def lifecycle_query(
    tenant: str, request: pb.GetLifecycleStagesRequest, model: lifecycle_pb2.LifecycleModel, now: datetime
) -> LifecycleQuery:
    """Validate `request` with the model that applies (the request's or the tenant's): INVALID_ARGUMENT names
    every bad field; FAILED_PRECONDITION when only segments are in the way."""
    violations: list[FieldViolation] = []
    if len(request.persons) > MAX_PERSONS:
        violations.append(FieldViolation("persons", f"at most {MAX_PERSONS} persons", "TOO_MANY"))
    persons = [
        person_ref(ref, f"persons[{i}]", violations) for i, ref in enumerate(request.persons[:MAX_PERSONS])
    ]
    if len(request.distribution_times) > MAX_DISTRIBUTION_TIMES:
        violations.append(
            FieldViolation("distribution_times", f"at most {MAX_DISTRIBUTION_TIMES} times", "TOO_MANY")
        )
    found = (
        population(request.population, "population", violations)
        if request.HasField("population")
        else Population()
    )
    converted = lifecycle_model(model, "model" if request.HasField("model") else "", violations)
    as_of = now
    if request.HasField("as_of"):
        as_of = checked_time(request.as_of, "as_of", violations) or now  # an invalid one is raised below
    times = [
        checked_time(t, f"distribution_times[{i}]", violations)
        for i, t in enumerate(request.distribution_times[:MAX_DISTRIBUTION_TIMES])
    ]
    raise_for(violations, "the lifecycle request")
    return LifecycleQuery(
        tenant=tenant,
        model=converted,
        as_of=as_of,
        persons=tuple(persons),
        include_distribution=request.include_distribution,
        population=found,
        distribution_times=tuple(t for t in times if t is not None),
    )


def _distribution(found: StageDistribution) -> lifecycle_pb2.LifecycleDistribution:
    return lifecycle_pb2.LifecycleDistribution(
        time=to_timestamp(found.time), stage_counts=_counts(found), population_size=found.population_size
    )


def _counts(found: StageDistribution) -> list[lifecycle_pb2.LifecycleStageCount]:
    return [
        lifecycle_pb2.LifecycleStageCount(stage=int(s), count=found.counts[s], share=found.share(s))  # type: ignore[arg-type]
        for s in STAGES
    ]


def lifecycle_response(
    query: LifecycleQuery, result: LifecycleResult, model: lifecycle_pb2.LifecycleModel
) -> pb.GetLifecycleStagesResponse:
    response = pb.GetLifecycleStagesResponse(
        persons=[
            lifecycle_pb2.PersonLifecycle(person_id=p.person_id, stage=int(p.stage))  # type: ignore[arg-type]
            for p in result.persons
        ],
        as_of=to_timestamp(query.as_of),
        distributions=[_distribution(d) for d in result.distributions],
        model=model,
    )
    if result.distribution is not None:
        response.distribution.extend(_counts(result.distribution))
        response.population_size = result.distribution.population_size
    return response
