"""GetLifecycleStages over gRPC against the plain-Python reference (conditions_reference.py) on generated
event logs: persons (by id and by identifier) and distributions over several times in one call, the built-in
default model, a merge that changes a stage, and the refusals."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from tests.breadth import seeds
from tests.journeys.conditions_reference import (
    T0,
    Event,
    Person,
    condition,
    generated_log,
    model,
    person_filter,
    persons_of,
)
from tests.journeys.conftest import Journeys, field_violations, override
from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, lifecycle_pb2, lifecycle_stage_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics_converters import property_filter
from wayline_journeys.conditions import LifecycleStage
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL, lifecycle_model

TIMES = [T0 + timedelta(days=d) for d in (3, 45, 120.5, 210)]


def stages(journeys: Journeys, request: pb.GetLifecycleStagesRequest) -> pb.GetLifecycleStagesResponse:
    response: pb.GetLifecycleStagesResponse = journeys.stub.GetLifecycleStages(
        request, metadata=journeys.metadata, timeout=30
    )
    return response


def domain(message: lifecycle_pb2.LifecycleModel) -> LifecycleModel:
    violations: list[FieldViolation] = []
    found = lifecycle_model(message, "model", violations)
    assert violations == []
    return found


def by_id(person: str) -> event_pb2.PersonRef:
    return event_pb2.PersonRef(person_id=person)


def by_identifier(identifier: tuple[str, str]) -> event_pb2.PersonRef:
    return event_pb2.PersonRef(identifier=event_pb2.Identifier(type=identifier[0], value=identifier[1]))


def counts(distribution: list[lifecycle_pb2.LifecycleStageCount]) -> dict[LifecycleStage, int]:
    return {LifecycleStage(c.stage): c.count for c in distribution}


def expected_counts(
    log: list[Event], lifecycle: LifecycleModel, at: datetime, filters: list[analytics_pb2.PropertyFilter]
) -> dict[LifecycleStage, int]:
    violations: list[FieldViolation] = []
    converted = [property_filter(f, "f", violations) for f in filters]
    found: dict[LifecycleStage, int] = {s: 0 for s in LifecycleStage if s is not LifecycleStage.UNSPECIFIED}
    for events in persons_of(log).values():
        person = Person(events, at)
        if person.events and all(f is not None and person.passes(f) for f in converted):
            found[person.stage(lifecycle)] += 1
    return found


@pytest.mark.parametrize("seed", seeds(*range(5)))
def test_get_lifecycle_stages_persons_match_the_reference(journeys: Journeys, seed: int) -> None:
    rng = random.Random(seed)
    log = generated_log(rng, persons=15)
    journeys.write(*(e.message() for e in log))
    message = model(rng)
    lifecycle = domain(message)
    persons = sorted(persons_of(log))
    # Each person's first identifier (their user id) names them too; an unknown id or identifier has no
    # stage.
    identifiers = {p: persons_of(log)[p][0].identifiers[0] for p in persons}
    refs = [by_id(p) for p in persons] + [by_identifier(identifiers[p]) for p in persons[:5]]
    refs += [by_id("nobody"), by_identifier(("user_id", "nobody"))]

    for at in TIMES:
        response = stages(
            journeys, pb.GetLifecycleStagesRequest(persons=refs, as_of=to_timestamp(at), model=message)
        )

        wanted = [Person(persons_of(log)[p], at).stage(lifecycle) for p in persons]
        assert [(p.person_id, LifecycleStage(p.stage)) for p in response.persons] == [
            *zip(persons, wanted, strict=True),
            *zip(persons[:5], wanted[:5], strict=True),
            ("nobody", LifecycleStage.UNSPECIFIED),
            ("", LifecycleStage.UNSPECIFIED),
        ]
        assert to_datetime(response.as_of) == at
        assert response.model == message
        assert not response.distribution
        assert not response.distributions


@pytest.mark.parametrize("seed", seeds(*range(5)))
def test_get_lifecycle_stages_distributions_over_times_match_the_reference(
    journeys: Journeys, seed: int
) -> None:
    rng = random.Random(100 + seed)
    log = generated_log(rng, persons=25)
    journeys.write(*(e.message() for e in log))
    message = model(rng)
    lifecycle = domain(message)
    filters = [person_filter(rng) for _ in range(rng.randint(0, 2))]
    as_of = TIMES[2]
    request = pb.GetLifecycleStagesRequest(
        include_distribution=True,
        population=analytics_pb2.Population(person_filters=filters),
        as_of=to_timestamp(as_of),
        model=message,
        distribution_times=[to_timestamp(t) for t in (TIMES[3], TIMES[0], TIMES[1], TIMES[0])],
    )

    response = stages(journeys, request)

    assert counts(list(response.distribution)) == expected_counts(log, lifecycle, as_of, filters)
    assert response.population_size == sum(counts(list(response.distribution)).values())
    assert [to_datetime(d.time) for d in response.distributions] == [TIMES[3], TIMES[0], TIMES[1], TIMES[0]]
    for found in response.distributions:
        at = to_datetime(found.time)
        assert counts(list(found.stage_counts)) == expected_counts(log, lifecycle, at, filters)
        assert [c.stage for c in found.stage_counts] == list(range(1, 7))
        assert found.population_size == sum(c.count for c in found.stage_counts)
        if found.population_size:
            assert sum(c.share for c in found.stage_counts) == pytest.approx(1.0)
            assert found.stage_counts[0].share == found.stage_counts[0].count / found.population_size


def test_get_lifecycle_stages_default_model_is_the_contracts(journeys: Journeys) -> None:
    """One person per stage of the built-in default, each just inside (or just outside) its window."""
    at = T0 + timedelta(days=200)
    day = timedelta(days=1)
    people = {
        stage: str(uuid.uuid4())
        for stage in ("advocate", "stale", "buyer", "engaged", "new", "known", "aware")
    }
    log = [
        Event(people["advocate"], at - 89 * day, name="Product Shared", channel="email"),
        Event(people["stale"], at - 91 * day, name="Referral Sent", channel="email"),  # too old: awareness
        Event(people["buyer"], at - 179 * day, name="Purchased", channel="in_store", revenue=Decimal(5)),
        Event(people["buyer"], at - day, name="Purchased", channel="in_store", revenue=Decimal(0)),
        *(
            Event(people["engaged"], at - d * day, channel=c)
            for d, c in ((29, "web"), (2, "mobile_app"), (3, "web"), (4, "web"), (5, "web"))
        ),
        Event(people["engaged"], at - 6 * day, channel="email"),
        Event(people["new"], at - 29 * day, type="identify", channel="email"),
        Event(people["known"], at - 31 * day, type="identify", channel="email"),
        Event(people["aware"], at - 150 * day, channel="web"),
        Event(people["aware"], at + day, type="identify", channel="web"),  # after as_of: does not count
    ]
    for event in log:
        event.message()  # the channel names above must exist
    journeys.write(*(e.message() for e in log))

    response = stages(
        journeys,
        pb.GetLifecycleStagesRequest(persons=[by_id(p) for p in people.values()], as_of=to_timestamp(at)),
    )

    assert [LifecycleStage(p.stage) for p in response.persons] == [
        LifecycleStage.ADVOCACY,
        LifecycleStage.AWARENESS,
        LifecycleStage.RETENTION,
        LifecycleStage.ENGAGEMENT,
        LifecycleStage.ONBOARDING,
        LifecycleStage.ACQUISITION,
        LifecycleStage.AWARENESS,
    ]
    assert response.model == BUILT_IN_MODEL
    assert response.model.revision == 0
    default = domain(BUILT_IN_MODEL)
    assert [LifecycleStage(p.stage) for p in response.persons] == [
        Person([e for e in log if e.person == p], at).stage(default) for p in people.values()
    ]


def test_get_lifecycle_stages_merge_moves_a_person_up(journeys: Journeys) -> None:
    """Four web events on a device and one on the known person: after identity merges them (an override),
    the person has five and is engaged; the distribution counts one person where it counted two."""
    at = T0 + timedelta(days=10)
    device, known = str(uuid.uuid4()), str(uuid.uuid4())
    journeys.write(
        *(
            Event(device, at - timedelta(days=d), identifiers=(("anonymous_id", "dev"),)).message()
            for d in (1, 2, 3, 4)
        ),
        Event(known, at - timedelta(days=5), identifiers=(("user_id", "u"),)).message(),
    )
    request = pb.GetLifecycleStagesRequest(
        persons=[by_id(known), by_identifier(("anonymous_id", "dev"))],
        include_distribution=True,
        as_of=to_timestamp(at),
    )
    before = stages(journeys, request)
    assert [(p.person_id, LifecycleStage(p.stage)) for p in before.persons] == [
        (known, LifecycleStage.AWARENESS),
        (device, LifecycleStage.AWARENESS),
    ]
    assert (before.population_size, counts(list(before.distribution))[LifecycleStage.AWARENESS]) == (2, 2)

    journeys.apply(override(device, known, 1))

    after = stages(journeys, request)
    assert [(p.person_id, LifecycleStage(p.stage)) for p in after.persons] == [
        (known, LifecycleStage.ENGAGEMENT),
        (known, LifecycleStage.ENGAGEMENT),
    ]
    assert after.population_size == 1
    assert counts(list(after.distribution))[LifecycleStage.ENGAGEMENT] == 1


def nested(depth: int) -> condition_pb2.PersonCondition:
    found = condition_pb2.PersonCondition(has_identifier_type="email")
    for _ in range(depth - 1):
        found = condition_pb2.PersonCondition(group=condition_pb2.ConditionGroup(conditions=[found]))
    return found


def with_model(*definitions: tuple[int, condition_pb2.PersonCondition]) -> pb.GetLifecycleStagesRequest:
    return pb.GetLifecycleStagesRequest(
        model=lifecycle_pb2.LifecycleModel(
            stages=[lifecycle_pb2.LifecycleStageDefinition(stage=s, condition=c) for s, c in definitions]  # type: ignore[arg-type]
        )
    )


def refused(journeys: Journeys, request: pb.GetLifecycleStagesRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stages(journeys, request)
    return caught.value


ENGAGED = condition_pb2.PersonCondition(
    event_count=condition_pb2.EventCountCondition(event=analytics_pb2.EventMatcher(event_name="Viewed"))
)


def test_get_lifecycle_stages_refuses_a_tree_nine_deep_but_takes_eight(journeys: Journeys) -> None:
    stages(journeys, with_model((4, nested(8))))

    error = refused(journeys, with_model((4, nested(9))))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"model.stages[0].condition": "TOO_DEEP"}


def test_get_lifecycle_stages_refuses_101_conditions_but_takes_100(journeys: Journeys) -> None:
    def group(leaves: int) -> condition_pb2.PersonCondition:
        return condition_pb2.PersonCondition(
            group=condition_pb2.ConditionGroup(conditions=[ENGAGED] * leaves)
        )

    stages(journeys, with_model((4, group(99))))  # 99 leaves and their group

    error = refused(journeys, with_model((4, group(100))))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"model.stages[0].condition": "TOO_MANY"}


def test_get_lifecycle_stages_refuses_two_definitions_of_one_stage(journeys: Journeys) -> None:
    error = refused(journeys, with_model((4, ENGAGED), (2, ENGAGED), (4, ENGAGED)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"model.stages[2].stage": "DUPLICATE"}


def test_get_lifecycle_stages_refuses_a_stage_condition_inside_a_model(journeys: Journeys) -> None:
    inside = condition_pb2.PersonCondition(
        group=condition_pb2.ConditionGroup(
            conditions=[
                ENGAGED,
                condition_pb2.PersonCondition(
                    lifecycle_stage=condition_pb2.LifecycleStageCondition(
                        stages=[lifecycle_stage_pb2.LIFECYCLE_STAGE_ACQUISITION]
                    )
                ),
            ]
        )
    )

    error = refused(journeys, with_model((5, inside)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {
        "model.stages[0].condition.group.conditions[1].lifecycle_stage": "INVALID"
    }


def test_get_lifecycle_stages_refuses_a_segment_in_the_model(journeys: Journeys) -> None:
    member = condition_pb2.PersonCondition(
        segment_membership=condition_pb2.SegmentMembershipCondition(segment="segments/vip")
    )
    error = refused(journeys, with_model((3, member)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(error).values()) == ["SEGMENT_IN_LIFECYCLE_MODEL"]


def test_get_lifecycle_stages_reports_every_bad_field(journeys: Journeys) -> None:
    bad_window = condition_pb2.PersonCondition()
    bad_window.CopyFrom(ENGAGED)
    bad_window.event_count.window.FromTimedelta(timedelta(seconds=-1))
    one_step = condition_pb2.PersonCondition(
        sequence=condition_pb2.SequenceCondition(steps=[analytics_pb2.EventMatcher(event_name="A")])
    )
    request = with_model(
        (2, bad_window),
        (3, one_step),
        (4, condition_pb2.PersonCondition(group=condition_pb2.ConditionGroup())),
        (
            5,
            condition_pb2.PersonCondition(
                person_property=analytics_pb2.PropertyFilter(
                    property="properties.plan", operator=analytics_pb2.FILTER_OPERATOR_IS_SET
                )
            ),
        ),
        (6, condition_pb2.PersonCondition()),
    )
    request.persons.extend([by_id("p")] * 1001)
    request.distribution_times.extend([to_timestamp(T0)] * 101)

    error = refused(journeys, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {
        "persons": "TOO_MANY",
        "distribution_times": "TOO_MANY",
        "model.stages[0].condition.event_count.window": "INVALID",
        "model.stages[1].condition.sequence.steps": "OUT_OF_RANGE",
        "model.stages[2].condition.group.conditions": "REQUIRED",
        "model.stages[3].condition.person_property.property": "INVALID",
        "model.stages[4].condition": "REQUIRED",
    }


def test_get_lifecycle_stages_random_trees_convert(journeys: Journeys) -> None:
    """Every generated tree is valid (the other tests rely on it), lifecycle-stage leaves aside."""
    rng = random.Random(5)
    for _ in range(50):
        stages(journeys, with_model((4, condition(rng))))
