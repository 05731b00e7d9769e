"""BatchEvaluatePersonConditions over gRPC on the suite's journeys server (chDB): each answer is
EvaluatePersonConditions' answer for the same ref (buyers, a sequence, traits, a merge's survivor and absorbed
person, a stranger, a person without events, a person named twice) for conditions of every kind, in the
request's order; tenants apart; conditions without any aggregate on persons without events; a missing
segment refused; every malformed field refused at once; 400 persons in one call. And on a store of its own:
two statements at most, whatever the number of persons."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tests.journeys.conftest import (
    T0,
    Journeys,
    error_reason,
    field_violations,
    override,
    stored_record,
)
from tests.journeys.person_support import (
    Condition,
    CountedStatements,
    Person,
    aggregate,
    evaluate,
    group,
    identify,
    negated,
    person,
    person_ref,
    purchases,
    rfm,
    sequence,
    stage,
    trait,
)
from tests.journeys.segments_support import built_members, count, delete_all_segments, event, member_of
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, customer_value_pb2, lifecycle_stage_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics import EventMatcher
from wayline_journeys.conditions import Comparison, EventCount, HasIdentifierType, Not
from wayline_journeys.conditions import Condition as DomainCondition
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore

NOW = datetime.now(UTC)
Answer = tuple[str, list[bool]]


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    yield
    delete_all_segments(journeys)


def batch(journeys: Journeys, persons: Sequence[Person], *conditions: Condition) -> list[Answer]:
    request = pb.BatchEvaluatePersonConditionsRequest(
        persons=[person_ref(p) for p in persons], conditions=conditions
    )
    response: pb.BatchEvaluatePersonConditionsResponse = journeys.stub.BatchEvaluatePersonConditions(
        request, metadata=journeys.metadata, timeout=30
    )
    return [(a.person_id, list(a.results)) for a in response.persons]


def single(journeys: Journeys, person: Person, *conditions: Condition) -> Answer:
    found = evaluate(journeys, person, *conditions)
    return found.person_id, list(found.results)


def spent(at_least: str) -> Condition:
    """A historic value in EUR of at least `at_least`."""
    units, _, cents = at_least.partition(".")
    return Condition(
        customer_value=condition_pb2.CustomerValueCondition(
            metric=condition_pb2.CUSTOMER_VALUE_METRIC_HISTORIC_VALUE,
            currency_code="EUR",
            value=event_pb2.Money(currency_code="EUR", units=int(units), nanos=int(cents.ljust(9, "0"))),
        )
    )


def every_kind() -> list[Condition]:
    """Conditions of every kind the single RPC's tests use (segment `buyers` must exist)."""
    avg, total = condition_pb2.EVENT_AGGREGATION_AVERAGE, condition_pb2.EVENT_AGGREGATION_SUM
    lowest = condition_pb2.EVENT_AGGREGATION_MINIMUM
    le, eq = condition_pb2.COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL, condition_pb2.COMPARISON_OPERATOR_EQUAL
    ge = condition_pb2.COMPARISON_OPERATOR_UNSPECIFIED
    bought, churned = count("Order Completed"), count("Cancelled")
    return [
        trait("plan", "pro"),  # 0
        trait("plan", "pro", operator=analytics_pb2.FILTER_OPERATOR_NOT_EQUALS),
        trait("first_name", "Ada"),
        count("Order Completed", 2),
        count("Order Completed", 1, window=timedelta(hours=1)),
        count("Order Completed", 0, comparison=eq),  # 5
        sequence("Viewed", "Order Completed"),
        sequence("Order Completed", "Viewed"),
        Condition(has_identifier_type="user_id"),
        negated(Condition(has_identifier_type="email")),
        purchases(0),  # 10
        purchases(2),
        purchases(1, currency="USD"),
        spent("95.5"),
        rfm(customer_value_pb2.RFM_SEGMENT_CHAMPIONS),
        rfm(customer_value_pb2.RFM_SEGMENT_NO_PURCHASE),  # 15
        stage(lifecycle_stage_pb2.LIFECYCLE_STAGE_RETENTION),
        stage(lifecycle_stage_pb2.LIFECYCLE_STAGE_AWARENESS),
        member_of("segments/buyers"),
        negated(member_of("segments/buyers")),
        aggregate(avg, "sentiment_score", le, -0.29, "Call Ended"),  # 20
        aggregate(lowest, "sentiment_score", le, -0.8, "Call Ended", window=timedelta(days=30)),
        aggregate(total, "properties.minutes", eq, 30.5, window=timedelta(days=7)),
        aggregate(total, "revenue", eq, 95.5, currency="EUR"),
        aggregate(total, "properties.minutes", eq, 0, "Never Done"),
        negated(aggregate(avg, "properties.minutes", ge, -1e9, "Never Done")),  # 25
        group(condition_pb2.LOGICAL_OPERATOR_AND, bought, churned),
        group(condition_pb2.LOGICAL_OPERATOR_OR, bought, churned),
        negated(group(condition_pb2.LOGICAL_OPERATOR_AND, bought, negated(churned))),
    ]


def test_batch_evaluate_person_conditions_answers_each_person_as_evaluate_person_conditions(
    journeys: Journeys,
) -> None:
    buyer, caller, traited, survivor, absorbed, quiet = (person() for _ in range(6))
    rankers = [person() for _ in range(4)]  # purchasers the RFM segments rank the buyer among
    calls = [event(caller, "Call Ended", NOW - timedelta(days=d)) for d in (20, 1, 2)]
    minutes: list[float | str] = [12, 30.5, "long"]  # a string: no number
    for call, score, spoken in zip(calls, (-0.8, -0.4, 0.3), minutes, strict=True):
        call.sentiment_score = score
        call.properties.update({"minutes": spoken})
    journeys.write(
        identify(buyer, NOW - timedelta(days=3), plan="pro"),
        event(buyer, "Viewed", NOW - timedelta(days=2, hours=1)),
        event(buyer, "Order Completed", NOW - timedelta(days=2), revenue="30"),
        event(buyer, "Order Completed", NOW - timedelta(days=1), revenue="45.5"),
        event(buyer, "Order Completed", NOW - timedelta(hours=5), revenue="20"),
        *(
            event(r, "Order Completed", NOW - timedelta(days=30 - i), revenue="5")
            for i, r in enumerate(rankers)
        ),
        *calls,
        identify(traited, NOW - timedelta(days=1), plan="free", first_name="Ada"),
        event(absorbed, "Order Completed", NOW - timedelta(days=4), revenue="20"),
        identify(absorbed, NOW - timedelta(days=4), first_name="Ada"),
        event(survivor, "Order Completed", NOW - timedelta(days=3), revenue="20"),
    )
    journeys.apply(override(absorbed, survivor, 1))
    journeys.create_segment(count("Order Completed"), segment_id="buyers")
    assert built_members(journeys, "buyers") == {buyer, survivor, *rankers}
    stranger: Person = ("email", f"{uuid.uuid4().hex}@example.com")
    refs: list[Person] = [
        buyer,
        caller,
        traited,
        survivor,
        absorbed,
        stranger,
        quiet,
        ("user_id", f"u-{buyer}"),
        rankers[0],
        buyer,  # named twice: answered twice
    ]
    conditions = every_kind()
    answers = batch(journeys, refs, *conditions)
    assert [a[0] for a in answers] == [
        buyer, caller, traited, survivor, absorbed, "", quiet, buyer, rankers[0], buyer,
    ]  # fmt: skip
    for ref, answer in zip(refs, answers, strict=True):
        assert answer == single(journeys, ref, *conditions), ref
    # Some answers outright, so that an error both paths share shows too.
    assert answers[0][1] == [
        True, False, False, True, False, False, True, False, True, True,
        True, True, False, True, True, False, True, False, True, False,
        False, False, False, True, True, True, False, True, False,
    ]  # fmt: skip
    assert answers[1][1][20:23] == [True, True, True]  # the caller's mean, least and weekly minutes
    assert [answers[i][1][2] for i in (2, 3, 4)] == [True, True, False]  # Ada's trait moved to the survivor
    nothing = [
        False, True, False, False, False, True, False, False, False, True,
        True, False, False, False, False, True, False, True, False, True,
        False, False, False, False, True, True, False, False, True,
    ]  # fmt: skip
    # A stranger, a person without events and the absorbed person (their events moved) alike.
    assert answers[4][1] == answers[5][1] == answers[6][1] == nothing
    survivor_counts = [answers[3][1][i] for i in (3, 11, 13, 18)]
    assert survivor_counts == [True, True, False, True]  # two orders, two purchases, 40 EUR, a member


def test_batch_evaluate_person_conditions_keeps_tenants_apart(journeys: Journeys) -> None:
    buyer, absorbed = person(), person()
    journeys.write(
        event(buyer, "Order Completed", NOW - timedelta(hours=1)),
        identify(buyer, NOW, plan="pro"),
        event(absorbed, "Order Completed", NOW - timedelta(hours=2)),
    )
    journeys.apply(override(absorbed, buyer, 1))
    other = journeys.for_tenant(f"tenant-{uuid.uuid4().hex[:10]}")
    other.write(event(absorbed, "Viewed", NOW - timedelta(hours=1)))
    conditions = (count("Order Completed", 2), trait("plan", "pro"), count("Viewed"))
    assert batch(journeys, [buyer, absorbed], *conditions) == [
        (buyer, [True, True, False]),
        (absorbed, [False, False, False]),
    ]
    assert batch(other, [buyer, absorbed], *conditions) == [
        (buyer, [False, False, False]),  # neither the first tenant's events nor its merge
        (absorbed, [False, False, True]),
    ]


def test_batch_evaluate_person_conditions_answers_conditions_without_events_to_aggregate(
    journeys: Journeys,
) -> None:
    """Conditions that aggregate no event (a segment membership, an RFM segment) still answer every person,
    those without events too; one person alone as well (before the batch, that read found no row)."""
    buyer, quiet = person(), person()
    journeys.write(event(buyer, "Order Completed", NOW - timedelta(hours=3), revenue="10"))
    journeys.create_segment(count("Order Completed"), segment_id="buyers")
    assert built_members(journeys, "buyers") == {buyer}
    conditions = (member_of("segments/buyers"), rfm(customer_value_pb2.RFM_SEGMENT_NO_PURCHASE))
    stranger: Person = ("email", f"{uuid.uuid4().hex}@example.com")
    expected = [(buyer, [True, False]), (quiet, [False, True]), ("", [False, True])]
    assert batch(journeys, [buyer, quiet, stranger], *conditions) == expected
    assert [single(journeys, p, *conditions) for p in (buyer, quiet, stranger)] == expected


def test_batch_evaluate_person_conditions_refuses_an_unknown_segment(journeys: Journeys) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        batch(journeys, [person(), person()], count("Viewed"), member_of("segments/no-such-segment"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(raised.value) == "SEGMENT_NOT_FOUND"


def test_batch_evaluate_person_conditions_answers_400_persons_in_one_call(journeys: Journeys) -> None:
    """A page of a flow's entries: 400 persons with 0 to 2 orders, ten of them survivors of a merge whose
    absorbed person had one more, read in one call in an order of the caller's (reversed)."""
    persons = [person() for _ in range(400)]
    absorbed = {p: person() for p in persons[:10]}
    journeys.write(
        *(
            event(p, "Order Completed", NOW - timedelta(hours=1 + n), revenue="10")
            for i, p in enumerate(persons)
            for n in range(i % 3)
        ),
        *(event(a, "Order Completed", NOW - timedelta(hours=5), revenue="10") for a in absorbed.values()),
    )
    journeys.apply(*(override(a, s, i + 1) for i, (s, a) in enumerate(absorbed.items())))
    conditions = (count("Order Completed", 1), count("Order Completed", 2), purchases(3))
    answers = batch(journeys, persons[::-1], *conditions)
    orders = {p: i % 3 + (p in absorbed) for i, p in enumerate(persons)}
    expected = [(p, [orders[p] >= 1, orders[p] >= 2, orders[p] >= 3]) for p in persons[::-1]]
    assert answers == expected


def test_batch_evaluate_person_conditions_refuses_malformed_requests(journeys: Journeys) -> None:
    ada = event_pb2.PersonRef(person_id="ada")
    half = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email"))
    bad_count = count("Viewed")
    bad_count.event_count.count = -1
    viewed = count("Viewed")
    cases: list[tuple[pb.BatchEvaluatePersonConditionsRequest, dict[str, str]]] = [
        (pb.BatchEvaluatePersonConditionsRequest(conditions=[viewed]), {"persons": "REQUIRED"}),
        (
            pb.BatchEvaluatePersonConditionsRequest(persons=[ada] * 1001, conditions=[viewed]),
            {"persons": "OUT_OF_RANGE"},
        ),
        (pb.BatchEvaluatePersonConditionsRequest(persons=[ada]), {"conditions": "REQUIRED"}),
        (
            pb.BatchEvaluatePersonConditionsRequest(persons=[ada], conditions=[viewed] * 51),
            {"conditions": "OUT_OF_RANGE"},
        ),
        (
            pb.BatchEvaluatePersonConditionsRequest(
                persons=[ada, ada, event_pb2.PersonRef(), half],
                conditions=[viewed, bad_count, member_of("buyers")],
            ),
            {
                "persons[2]": "REQUIRED",
                "persons[3].identifier": "REQUIRED",
                "conditions[1].event_count.count": "OUT_OF_RANGE",
                "conditions[2].segment_membership.segment": "INVALID",
            },
        ),
    ]
    for request, expected in cases:
        with pytest.raises(grpc.RpcError) as raised:
            journeys.stub.BatchEvaluatePersonConditions(request, metadata=journeys.metadata, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == expected


def test_batch_person_conditions_take_at_most_three_statements(store: JourneyStore) -> None:
    """One statement as stored for every person; a second for the persons without events, only when there are
    some; a third, through the overrides, only when an override names one of them; whatever the number of
    persons, every person answered."""
    persons = [f"p-{i}" for i in range(200)]
    viewed = [(p, n) for i, p in enumerate(persons) for n in range(i % 3)] + [("gone", 0), ("gone", 1)]
    store.write("acme", [stored_record(p, T0 + timedelta(minutes=n), ("user_id", p)) for p, n in viewed])
    once = EventCount(EventMatcher(name="Viewed"), Comparison.GREATER_THAN_OR_EQUAL, 1)
    twice = EventCount(EventMatcher(name="Viewed"), Comparison.GREATER_THAN_OR_EQUAL, 2)
    conditions: list[DomainCondition] = [once, twice, Not(HasIdentifierType("user_id"))]
    at = T0 + timedelta(days=1)
    read = CountedStatements(lambda: store.client)
    expected = {p: [i % 3 >= 1, i % 3 >= 2, i % 3 == 0] for i, p in enumerate(persons)}
    with_events = [p for i, p in enumerate(persons) if i % 3]
    assert (read.evaluate_of("acme", with_events, conditions, None, at), read.statements) == (
        {p: expected[p] for p in with_events},
        1,
    )
    read.statements = 0
    asked = [*persons[:150], "", "nobody"]  # p-0, p-3, ... have no events
    found = read.evaluate_of("acme", asked, conditions, None, at)
    assert (found, read.statements) == (
        {p: expected[p] for p in persons[:150]} | {"": [False, False, True], "nobody": [False, False, True]},
        2,
    )
    store.overrides.apply("acme", [PersonOverride("gone", persons[3], 1)])  # p-3 had no event
    read.statements = 0
    found = read.evaluate_of("acme", persons, conditions, None, at)
    assert (found, read.statements) == (expected | {persons[3]: [True, True, False]}, 3)
