"""The PersonCondition compiler (store/conditions.py) against the plain-Python reference, on generated event
logs: many random trees (lifecycle-stage conditions included) compiled into one query, evaluated at several
times at once."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

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
from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_micros
from wayline.journeys.v1 import analytics_pb2, condition_pb2
from wayline_journeys.analytics_converters import property_filter
from wayline_journeys.conditions import Condition
from wayline_journeys.conditions_converters import person_condition
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.lifecycle_converters import lifecycle_model
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.conditions import ConditionCompiler
from wayline_journeys.store.matching import person_filters_sql
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

TENANT = "conditions"
TIMES = [T0 + timedelta(days=d) for d in (0, 1, 30.25, 95, 150, 260)]


def converted(message: condition_pb2.PersonCondition) -> Condition:
    violations: list[FieldViolation] = []
    found = person_condition(message, "condition", violations)
    assert found is not None, violations
    return found


def evaluate(
    store: JourneyStore, conditions: list[Condition], model: LifecycleModel, times: list[datetime]
) -> dict[tuple[datetime, str], tuple[bool, ...]]:
    """What the compiled query says of every (time, person with an event before it)."""
    params = SqlParams(tenant=TENANT)
    compiler = ConditionCompiler(params, lifecycle=model)
    columns = [f"{compiler.condition(c)} AS c{i}" for i, c in enumerate(conditions)]
    sql = compiler.query(columns, times=params.bind([to_micros(t) for t in times], "Array(Int64)"))
    by_micros = {to_micros(t): t for t in times}
    rows = store.client.query(sql, parameters=params.values).result_rows
    return {(by_micros[row[0]], row[1]): tuple(bool(v) for v in row[2:]) for row in rows}


def expected(
    log: list[Event], conditions: list[Condition], model: LifecycleModel, times: list[datetime]
) -> dict[tuple[datetime, str], tuple[bool, ...]]:
    found = {}
    for person, events in persons_of(log).items():
        for at in times:
            subject = Person(events, at)
            if subject.events:
                found[(at, person)] = tuple(subject.holds(c, model) for c in conditions)
    return found


@pytest.mark.parametrize("seed", seeds(*range(6)))
def test_compiled_conditions_match_the_reference(store: JourneyStore, seed: int) -> None:
    rng = random.Random(seed)
    log = generated_log(rng, persons=14)
    store.write(TENANT, [e.record() for e in log])
    violations: list[FieldViolation] = []
    lifecycle = lifecycle_model(model(rng), "model", violations)
    assert violations == []
    messages = [condition(rng, lifecycle=True) for _ in range(30)]
    conditions = [converted(m) for m in messages]

    actual = evaluate(store, conditions, lifecycle, TIMES)
    wanted = expected(log, conditions, lifecycle, TIMES)

    assert actual.keys() == wanted.keys()
    wrong = [
        (i, at, person)
        for (at, person), values in wanted.items()
        for i, value in enumerate(values)
        if actual[(at, person)][i] != value
    ]
    assert not wrong, f"{len(wrong)} differ, first: condition {messages[wrong[0][0]]} at {wrong[0][1:]}"
    holding = sum(v for values in wanted.values() for v in values)
    assert 0 < holding < len(wanted) * len(conditions)  # the trees are neither all true nor all false


def test_sequence_steps_in_one_timestamp_are_not_in_order(store: JourneyStore) -> None:
    """A-B-C with B and C at one time: the chain A@0, B@1, C@2 still holds though B@2 ties with C@2; one
    event is never two steps; `within` counts from the first step to the last, bounds included."""
    person, other, tied = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    log = [
        Event(person, T0, name="A"),
        Event(person, T0 + timedelta(hours=1), name="B"),
        Event(person, T0 + timedelta(hours=2), name="B"),
        Event(person, T0 + timedelta(hours=2), name="C"),
        Event(other, T0, name="A", channel="email"),  # A and B at once: one event, two steps
        Event(tied, T0, name="A"),
        Event(tied, T0, name="B"),
    ]
    store.write(TENANT, [e.record() for e in log])
    steps = [
        condition_pb2.PersonCondition(
            sequence=condition_pb2.SequenceCondition(
                steps=[analytics_pb2.EventMatcher(event_name=n) for n in s]
            )
        )
        for s in (("A", "B", "C"), ("A", "B"))
    ]
    email_then_a = condition_pb2.PersonCondition()
    email_then_a.sequence.steps.add(event_name="A")
    email_then_a.sequence.steps.add(channels=[3])  # email: the same event as the first step
    within = condition_pb2.PersonCondition()
    within.CopyFrom(steps[0])
    within.sequence.within.FromTimedelta(timedelta(hours=2))
    too_short = condition_pb2.PersonCondition()
    too_short.CopyFrom(steps[0])
    too_short.sequence.within.FromTimedelta(timedelta(hours=2) - timedelta(microseconds=1))
    conditions = [converted(c) for c in (*steps, email_then_a, within, too_short)]
    at = T0 + timedelta(days=1)

    found = evaluate(store, conditions, LifecycleModel(), [at])

    assert found[(at, person)] == (True, True, False, True, False)
    assert found[(at, other)] == (False, False, False, False, False)
    assert found[(at, tied)] == (False, False, False, False, False)
    assert found == expected(log, conditions, LifecycleModel(), [at])


@pytest.mark.parametrize("seed", seeds(*range(4)))
def test_several_person_filters_at_once_match_the_reference(store: JourneyStore, seed: int) -> None:
    """A population's person filters are read in one pass over the identify events (ADR 80's lead): each
    set of 1-5 random filters (negated ones, one trait twice, persons without the trait or without any
    identify event) selects exactly the persons the reference says pass them all."""
    rng = random.Random(100 + seed)
    log = generated_log(rng, persons=16)
    store.write(TENANT, [e.record() for e in log])
    persons = persons_of(log)
    everyone = {person: Person(events, T0 + timedelta(days=400)) for person, events in persons.items()}
    for _ in range(12):
        violations: list[FieldViolation] = []
        filters = tuple(
            found
            for found in (
                property_filter(person_filter(rng), "filter", violations) for _ in range(rng.randint(1, 5))
            )
            if found is not None
        )
        assert violations == []
        params = SqlParams(tenant=TENANT)
        predicate = person_filters_sql(filters, params)
        sql = f"SELECT DISTINCT person_id FROM {current_events(params)} WHERE {predicate}"
        actual = {row[0] for row in store.client.query(sql, parameters=params.values).result_rows}
        wanted = {person for person, subject in everyone.items() if all(subject.passes(f) for f in filters)}
        assert actual == wanted, [f"{f.path} {f.operator} {f.values}" for f in filters]
