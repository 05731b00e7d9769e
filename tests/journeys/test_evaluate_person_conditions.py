"""EvaluatePersonConditions and GetPersonProperties over gRPC on the suite's journeys server (chDB): each kind
of condition true and false for one person now, negation and groups, strangers evaluated on no events,
merges followed, tenants apart, every malformed request refused with its field path; traits' latest values,
filtered by key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from tests.journeys.conftest import Journeys, error_reason, field_violations, override
from tests.journeys.person_support import (
    Condition,
    aggregate,
    evaluate,
    group,
    holds,
    identify,
    negated,
    person,
    properties,
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

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    yield
    delete_all_segments(journeys)


def test_evaluate_person_conditions_answers_each_kind_true_and_false(journeys: Journeys) -> None:
    buyer = person()
    journeys.write(
        identify(buyer, NOW - timedelta(days=3), plan="pro", age=41),
        event(buyer, "Viewed", NOW - timedelta(days=2)),
        event(buyer, "Order Completed", NOW - timedelta(days=2), revenue="30"),
        event(buyer, "Order Completed", NOW - timedelta(days=1), revenue="45.5"),
    )
    found = evaluate(
        journeys,
        buyer,
        trait("plan", "pro"),
        trait("plan", "free"),
        count("Order Completed", 2),
        count("Order Completed", 3),
        count("Order Completed", 1, window=timedelta(hours=1)),
        sequence("Viewed", "Order Completed"),
        sequence("Order Completed", "Viewed"),
        Condition(has_identifier_type="user_id"),
        Condition(has_identifier_type="email"),
        purchases(2),
        purchases(3),
        purchases(1, currency="USD"),
        stage(
            lifecycle_stage_pb2.LIFECYCLE_STAGE_RETENTION
        ),  # two purchases in 180 days (the built-in model)
        stage(lifecycle_stage_pb2.LIFECYCLE_STAGE_AWARENESS, lifecycle_stage_pb2.LIFECYCLE_STAGE_ONBOARDING),
    )
    assert found.person_id == buyer
    assert list(found.results) == [
        True, False, True, False, False, True, False, True, False, True, False, False, True, False,
    ]  # fmt: skip


def test_evaluate_person_conditions_negates_and_groups(journeys: Journeys) -> None:
    buyer = person()
    journeys.write(event(buyer, "Order Completed", NOW - timedelta(days=1), revenue="10"))
    bought, churned = count("Order Completed"), count("Cancelled")
    assert holds(
        journeys,
        buyer,
        negated(bought),
        negated(churned),
        group(condition_pb2.LOGICAL_OPERATOR_AND, bought, churned),
        group(condition_pb2.LOGICAL_OPERATOR_OR, bought, churned),
        negated(group(condition_pb2.LOGICAL_OPERATOR_AND, bought, churned)),
        group(condition_pb2.LOGICAL_OPERATOR_UNSPECIFIED, bought, negated(churned)),  # AND by default
    ) == [False, True, False, True, True, True]


def test_evaluate_person_conditions_evaluates_a_stranger_on_no_events(journeys: Journeys) -> None:
    conditions = (
        count("Order Completed", 0, comparison=condition_pb2.COMPARISON_OPERATOR_EQUAL),
        count("Order Completed"),
        trait("plan", "pro", operator=analytics_pb2.FILTER_OPERATOR_NOT_EQUALS),
        trait("plan", "pro"),
        purchases(0),
        purchases(1),
        negated(Condition(has_identifier_type="email")),
    )
    expected = [True, False, True, False, True, False, True]
    assert holds(journeys, person(), *conditions) == expected
    # Known by an identifier no event carries: the same answers, and no person id.
    found = evaluate(journeys, ("email", f"{uuid.uuid4().hex}@example.com"), *conditions)
    assert (found.person_id, list(found.results)) == ("", expected)


def test_evaluate_person_conditions_resolves_an_identifier(journeys: Journeys) -> None:
    buyer = person()
    journeys.write(
        event(buyer, "Order Completed", NOW - timedelta(hours=2), identifier=("email", f"{buyer}@x.io"))
    )
    found = evaluate(journeys, ("email", f"{buyer}@x.io"), count("Order Completed"))
    assert (found.person_id, list(found.results)) == (buyer, [True])


def test_evaluate_person_conditions_reads_segment_membership(journeys: Journeys) -> None:
    buyer, visitor = person(), person()
    journeys.write(
        event(buyer, "Order Completed", NOW - timedelta(hours=3)),
        event(visitor, "Viewed", NOW - timedelta(hours=3)),
    )
    journeys.create_segment(count("Order Completed"), segment_id="buyers")
    assert built_members(journeys, "buyers") == {buyer}
    assert holds(journeys, buyer, member_of("segments/buyers"), negated(member_of("segments/buyers"))) == [
        True,
        False,
    ]
    assert holds(journeys, visitor, member_of("segments/buyers")) == [False]


def test_evaluate_person_conditions_refuses_an_unknown_segment(journeys: Journeys) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        holds(journeys, person(), count("Viewed"), member_of("segments/no-such-segment"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(raised.value) == "SEGMENT_NOT_FOUND"


def test_evaluate_person_conditions_follows_merges(journeys: Journeys) -> None:
    survivor, absorbed = person(), person()
    journeys.write(
        event(absorbed, "Order Completed", NOW - timedelta(days=2), revenue="20"),
        event(survivor, "Order Completed", NOW - timedelta(days=1), revenue="20"),
        identify(absorbed, NOW - timedelta(days=2), first_name="Ada"),
    )
    assert holds(journeys, survivor, count("Order Completed", 2), purchases(2)) == [False, False]
    journeys.apply(override(absorbed, survivor, 1))
    assert holds(journeys, survivor, count("Order Completed", 2), purchases(2)) == [True, True]
    assert properties(journeys, survivor).person_id == survivor
    assert json_format.MessageToDict(properties(journeys, survivor).properties) == {"first_name": "Ada"}


def test_evaluate_person_conditions_of_an_absorbed_person_see_none_of_their_moved_events(
    journeys: Journeys,
) -> None:
    """Read by the absorbed person's id, the events the merge moved count for no one under that id (nor
    their traits); the survivor's count has them. (Persons that no override names are read as stored, the
    others through the overrides: both sides of a merge take the second read.)"""
    survivor, absorbed, untouched = person(), person(), person()
    journeys.write(
        *(event(p, "Order Completed", NOW - timedelta(days=1), revenue="20") for p in (survivor, absorbed)),
        event(untouched, "Order Completed", NOW - timedelta(days=1), revenue="20"),
        identify(absorbed, NOW - timedelta(days=2), plan="pro"),
        identify(untouched, NOW - timedelta(days=2), plan="free"),
    )
    journeys.apply(override(absorbed, survivor, 1))
    assert holds(journeys, absorbed, count("Order Completed"), purchases(1)) == [False, False]
    assert holds(journeys, survivor, count("Order Completed", 2), purchases(2)) == [True, True]
    assert holds(journeys, untouched, count("Order Completed", 1), purchases(1)) == [True, True]
    traits = {p: json_format.MessageToDict(properties(journeys, p).properties) for p in (absorbed, survivor)}
    assert traits == {absorbed: {}, survivor: {"plan": "pro"}}
    assert json_format.MessageToDict(properties(journeys, untouched).properties) == {"plan": "free"}


def test_evaluate_person_conditions_follow_an_identifier_scoped_override(journeys: Journeys) -> None:
    """An unmerge moves the events carrying one identifier: they leave the person's counts and values."""
    shared, moved_to = person(), person()
    tablet = ("device_id", f"tablet-{uuid.uuid4().hex[:6]}")
    journeys.write(
        event(shared, "Order Completed", NOW - timedelta(days=2), revenue="20"),
        event(shared, "Order Completed", NOW - timedelta(days=1), revenue="20", identifier=tablet),
    )
    assert holds(journeys, shared, count("Order Completed", 2), purchases(2)) == [True, True]
    journeys.apply(override(shared, moved_to, 1, identifier=tablet))
    assert holds(journeys, shared, count("Order Completed", 2), purchases(1), purchases(2)) == [
        False,
        True,
        False,
    ]
    assert holds(journeys, moved_to, count("Order Completed", 1), purchases(1)) == [True, True]


def test_evaluate_person_conditions_ranks_an_rfm_segment_among_every_purchaser(journeys: Journeys) -> None:
    """An RFM segment places the person among the tenant's purchasers (a purchase count needs only their
    own events): the most recent, most frequent and highest-spending of five is a champion."""
    buyers = [person() for _ in range(5)]
    journeys.write(
        *(
            event(
                buyer, "Order Completed", NOW - timedelta(days=10 - rank + day / 10), revenue=str(10 * rank)
            )
            for rank, buyer in enumerate(buyers, start=1)
            for day in range(rank)
        )
    )

    champions = rfm(customer_value_pb2.RFM_SEGMENT_CHAMPIONS)
    assert holds(journeys, buyers[-1], champions, purchases(5), purchases(6)) == [True, True, False]
    assert holds(journeys, buyers[0], champions, purchases(1)) == [False, True]


def test_evaluate_person_conditions_keeps_tenants_apart(journeys: Journeys) -> None:
    buyer = person()
    journeys.write(
        event(buyer, "Order Completed", NOW - timedelta(hours=1)), identify(buyer, NOW, plan="pro")
    )
    other = journeys.for_tenant(f"tenant-{uuid.uuid4().hex[:10]}")
    assert holds(journeys, buyer, count("Order Completed"), trait("plan", "pro")) == [True, True]
    assert holds(other, buyer, count("Order Completed"), trait("plan", "pro")) == [False, False]
    assert json_format.MessageToDict(properties(other, buyer).properties) == {}


def test_evaluate_person_conditions_refuses_malformed_requests(journeys: Journeys) -> None:
    bad_count = count("Viewed")
    bad_count.event_count.count = -1
    bad_nested = group(condition_pb2.LOGICAL_OPERATOR_OR, count("Viewed"), Condition())
    # RFC 3339's shape but no day: refused here, not left to fail in the store as an internal error.
    impossible = trait("since", "2026-02-30T00:00:00Z", operator=analytics_pb2.FILTER_OPERATOR_GREATER_THAN)
    late = count("Viewed")
    late.event_count.event.property_filters.append(
        analytics_pb2.PropertyFilter(
            property="properties.when",
            operator=analytics_pb2.FILTER_OPERATOR_LESS_THAN,
            values=[struct_pb2.Value(string_value="2026-10-01T24:00:00Z")],
        )
    )
    cases: list[tuple[pb.EvaluatePersonConditionsRequest, dict[str, str]]] = [
        (pb.EvaluatePersonConditionsRequest(conditions=[count("Viewed")]), {"person": "REQUIRED"}),
        (
            pb.EvaluatePersonConditionsRequest(person=event_pb2.PersonRef(person_id="p")),
            {"conditions": "REQUIRED"},
        ),
        (
            pb.EvaluatePersonConditionsRequest(
                person=event_pb2.PersonRef(person_id="p"), conditions=[count("Viewed")] * 51
            ),
            {"conditions": "OUT_OF_RANGE"},
        ),
        (
            pb.EvaluatePersonConditionsRequest(
                person=event_pb2.PersonRef(person_id="p"),
                conditions=[count("Viewed"), count("Viewed"), bad_count, bad_nested],
            ),
            {
                "conditions[2].event_count.count": "OUT_OF_RANGE",
                "conditions[3].group.conditions[1]": "REQUIRED",
            },
        ),
        (
            pb.EvaluatePersonConditionsRequest(
                person=event_pb2.PersonRef(person_id="p"), conditions=[member_of("buyers")]
            ),
            {"conditions[0].segment_membership.segment": "INVALID"},
        ),
        (
            pb.EvaluatePersonConditionsRequest(
                person=event_pb2.PersonRef(person_id="p"), conditions=[impossible, late]
            ),
            {
                "conditions[0].person_property.values[0]": "INVALID",
                "conditions[1].event_count.event.property_filters[0].values[0]": "INVALID",
            },
        ),
    ]
    for request, expected in cases:
        with pytest.raises(grpc.RpcError) as raised:
            journeys.stub.EvaluatePersonConditions(request, metadata=journeys.metadata, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == expected


def test_get_person_properties_returns_the_latest_value_of_each_asked_trait(journeys: Journeys) -> None:
    ada = person()
    journeys.write(
        identify(ada, NOW - timedelta(days=3), first_name="Ada", plan="free", tier=1),
        identify(ada, NOW - timedelta(days=1), plan="pro", vip=True),
        identify(ada, NOW - timedelta(days=2), plan="team", tier=2),
        event(ada, "Viewed", NOW, revenue="1"),  # track events carry no traits
    )
    journeys.write(
        identify(person(), NOW, first_name="Someone else")  # another person's traits stay theirs
    )
    every = json_format.MessageToDict(properties(journeys, ada).properties)
    assert every == {"first_name": "Ada", "plan": "pro", "tier": 2, "vip": True}
    asked = properties(journeys, ada, "plan", "first_name", "nickname")
    assert asked.person_id == ada
    assert json_format.MessageToDict(asked.properties) == {"plan": "pro", "first_name": "Ada"}


def test_get_person_properties_says_which_identify_event_set_each_value(journeys: Journeys) -> None:
    ada, at = person(), (NOW - timedelta(days=1)).replace(microsecond=123000)
    older = identify(ada, at - timedelta(days=1), plan="free", tier=1)
    newer = identify(ada, at, plan="pro")
    low, high = identify(ada, at, seats=5), identify(ada, at, seats=9)  # a tie in time: the larger id wins
    low.event_id, high.event_id = (
        "00000000-0000-4000-8000-000000000001",
        "f0000000-0000-4000-8000-000000000001",
    )
    journeys.write(older, newer, high, low)
    found = properties(journeys, ada)
    assert json_format.MessageToDict(found.properties) == {"plan": "pro", "tier": 1, "seats": 9}
    sources = {k: (v.timestamp.ToDatetime(UTC), v.event_id) for k, v in found.sources.items()}
    assert sources == {
        "plan": (at, newer.event_id),
        "tier": (at - timedelta(days=1), older.event_id),
        "seats": (at, high.event_id),
    }
    assert set(properties(journeys, ada, "plan", "nickname").sources) == {"plan"}  # only the keys answered


def test_get_person_properties_of_a_stranger_are_empty(journeys: Journeys) -> None:
    assert json_format.MessageToDict(properties(journeys, person(), "plan").properties) == {}


def test_get_person_properties_refuses_malformed_requests(journeys: Journeys) -> None:
    cases = [
        (pb.GetPersonPropertiesRequest(keys=["plan"]), {"person": "REQUIRED"}),
        (
            pb.GetPersonPropertiesRequest(person=event_pb2.PersonRef(person_id="p"), keys=["k"] * 101),
            {"keys": "OUT_OF_RANGE"},
        ),
        (
            pb.GetPersonPropertiesRequest(person=event_pb2.PersonRef(person_id="p"), keys=["plan", ""]),
            {"keys[1]": "REQUIRED"},
        ),
    ]
    for request, expected in cases:
        with pytest.raises(grpc.RpcError) as raised:
            journeys.stub.GetPersonProperties(request, metadata=journeys.metadata, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == expected


def test_evaluate_person_conditions_sums_up_a_numeric_property(journeys: Journeys) -> None:
    """The mean sentiment of a person's calls, a sum of minutes, revenue in one currency: aggregates of the
    numbers at a property over matching events in a window; with no number, no value (and its negation
    holds), except the sum, which is 0."""
    caller = person()
    calls = [(-0.8, 20), (-0.4, 1), (0.3, 2)]  # sentiment, days ago
    written = [event(caller, "Call Ended", NOW - timedelta(days=d)) for _, d in calls]
    for found, (score, _) in zip(written, calls, strict=True):
        found.sentiment_score = score
    written[0].properties.update({"minutes": 12})
    written[1].properties.update({"minutes": 30.5})
    written[2].properties.update({"minutes": "long"})  # a string: no number
    usd = event(caller, "Order Completed", NOW - timedelta(days=1), revenue="50")
    usd.revenue.currency_code = "USD"
    journeys.write(*written, usd, event(caller, "Order Completed", NOW - timedelta(days=3), revenue="9.5"))
    avg, total = condition_pb2.EVENT_AGGREGATION_AVERAGE, condition_pb2.EVENT_AGGREGATION_SUM
    lowest, highest = condition_pb2.EVENT_AGGREGATION_MINIMUM, condition_pb2.EVENT_AGGREGATION_MAXIMUM
    le, ge = (
        condition_pb2.COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL,
        condition_pb2.COMPARISON_OPERATOR_UNSPECIFIED,
    )
    eq = condition_pb2.COMPARISON_OPERATOR_EQUAL
    week = timedelta(days=7)
    assert holds(
        journeys,
        caller,
        aggregate(avg, "sentiment_score", le, -0.29, "Call Ended"),  # (-0.8 - 0.4 + 0.3) / 3 = -0.3
        aggregate(avg, "sentiment_score", le, -0.29, "Call Ended", window=timedelta(days=3)),  # -0.05
        aggregate(lowest, "sentiment_score", le, -0.8, "Call Ended"),
        aggregate(highest, "sentiment_score", ge, 0.5),
        aggregate(total, "properties.minutes", eq, 30.5, window=week),  # 12 minutes were 20 days ago
        aggregate(total, "revenue", eq, 9.5, currency="EUR"),
        aggregate(total, "revenue", eq, 50, currency="USD"),
        aggregate(total, "properties.minutes", eq, 0, "Never Done"),  # the sum of nothing is 0
        aggregate(avg, "properties.minutes", ge, -1e9, "Never Done"),  # no mean: no match...
        negated(aggregate(avg, "properties.minutes", ge, -1e9, "Never Done")),  # ...and its negation matches
        aggregate(avg, "properties.plan", le, 1e9),  # a path without numbers: no value
    ) == [True, False, True, False, True, True, True, True, False, True, False]


def test_a_segment_of_unhappy_callers_takes_persons_by_their_mean_sentiment(journeys: Journeys) -> None:
    unhappy, happy = person(), person()
    written = [
        event(unhappy, "Call Ended", NOW - timedelta(days=2)),
        event(happy, "Call Ended", NOW - timedelta(days=1)),
    ]
    written[0].sentiment_score, written[1].sentiment_score = -0.7, 0.6
    journeys.write(*written)
    le = condition_pb2.COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL
    condition = aggregate(
        condition_pb2.EVENT_AGGREGATION_AVERAGE,
        "sentiment_score",
        le,
        -0.3,
        "Call Ended",
        window=timedelta(days=30),
    )
    journeys.create_segment(condition, "unhappy-callers")
    assert built_members(journeys, "unhappy-callers") == {unhappy}


def test_evaluate_person_conditions_refuses_a_malformed_aggregate(journeys: Journeys) -> None:
    bad = aggregate(0, "name", 9, float("nan"))
    revenue = aggregate(condition_pb2.EVENT_AGGREGATION_SUM, "revenue", 0, 1)
    request = pb.EvaluatePersonConditionsRequest(
        person=event_pb2.PersonRef(person_id="p"), conditions=[bad, revenue]
    )
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.EvaluatePersonConditions(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "conditions[0].event_aggregate.aggregation",
        "conditions[0].event_aggregate.property",
        "conditions[0].event_aggregate.comparison",
        "conditions[0].event_aggregate.threshold",
        "conditions[1].event_aggregate.currency_code",
    }
