"""Segments on customer value (historic value, purchase count, RFM segment in a window) and on lifecycle
stages, against the plain-Python references (customer_value_reference.py, conditions_reference.py) on
random logs; a new lifecycle model moves the memberships that depend on it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from google.protobuf import field_mask_pb2

from tests.journeys.conditions_reference import Person, persons_of
from tests.journeys.conftest import Journeys
from tests.journeys.customer_value_reference import Expected, Purchase, reference
from tests.journeys.segments_support import built_members, delete_all_segments, event, members_fresh_after
from tests.journeys.test_segment_members import shifted_log
from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import (
    analytics_pb2,
    condition_pb2,
    customer_value_pb2,
    lifecycle_pb2,
    lifecycle_stage_pb2,
)
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.conditions import InLifecycleStage, LifecycleStage
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL, lifecycle_model

RFM = customer_value_pb2.RfmSegment


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    """The session's evaluator stops evaluating this test's segments once it is over."""
    yield
    delete_all_segments(journeys)


def value_condition(
    metric: condition_pb2.CustomerValueMetric.ValueType,
    days: int | None = None,
    negate: bool = False,
    **fields: object,
) -> condition_pb2.PersonCondition:
    found = condition_pb2.CustomerValueCondition(metric=metric, currency_code="EUR", **fields)  # type: ignore[arg-type]
    if days is not None:
        found.window.FromTimedelta(timedelta(days=days))
    return condition_pb2.PersonCondition(customer_value=found, negate=negate)


def test_customer_value_segments_match_the_reference(journeys: Journeys) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    base = now.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=(now.minute + 30) % 60)
    purchases: list[Purchase] = []
    messages: list[event_pb2.Event] = []
    persons = [f"buyer-{i}" for i in range(16)]
    for person in persons:
        messages.append(event(person, "Viewed", base - timedelta(days=3)))  # every person has an event
        for _ in range(rng.randint(0, 6)):
            at = base - timedelta(days=rng.randint(1, 120), hours=rng.randint(0, 23))
            name = rng.choice(("Order Completed", "Order Completed", "Refund"))
            amount = Decimal(rng.choice(("19.90", "45", "120.5"))) * (-1 if name == "Refund" else 1)
            purchases.append(Purchase(person, at, amount, name=name))
            messages.append(event(person, name, at, revenue=str(amount)))
    dollars = event(persons[0], "Order Completed", base - timedelta(days=2), revenue="1000")
    dollars.revenue.currency_code = "USD"  # another currency: not counted
    journeys.write(*messages, dollars)
    conditions = {
        "value-60d": value_condition(
            condition_pb2.CUSTOMER_VALUE_METRIC_HISTORIC_VALUE, 60, value=event_pb2.Money(units=100)
        ),
        "orders": value_condition(
            condition_pb2.CUSTOMER_VALUE_METRIC_PURCHASE_COUNT,
            count=3,
            purchase_event_names=["Order Completed"],
        ),
        "best": value_condition(
            condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT,
            90,
            rfm_segments=[RFM.RFM_SEGMENT_CHAMPIONS, RFM.RFM_SEGMENT_LOYAL_CUSTOMERS],
        ),
        "no-purchase-30d": value_condition(
            condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT, 30, rfm_segments=[RFM.RFM_SEGMENT_NO_PURCHASE]
        ),
        "under-50": value_condition(
            condition_pb2.CUSTOMER_VALUE_METRIC_HISTORIC_VALUE,
            negate=True,
            value=event_pb2.Money(units=50, nanos=1),
        ),
    }
    for segment_id, condition in conditions.items():
        journeys.create_segment(condition, segment_id)

    found = {s: built_members(journeys, s) for s in conditions}

    def valued(days: int | None, names: tuple[str, ...] = ()) -> dict[str, Expected]:
        start = now - timedelta(days=days) if days else None
        return reference(purchases, "EUR", now, start, names)

    in_60, all_orders, in_90, in_30, ever = (
        valued(60),
        valued(None, ("Order Completed",)),
        valued(90),
        valued(30),
        valued(None),
    )
    wanted = {
        "value-60d": {p for p, v in in_60.items() if v.historic_value >= 100},
        "orders": {p for p, v in all_orders.items() if v.purchase_count >= 3},
        "best": {p for p, v in in_90.items() if v.segment in ("CHAMPIONS", "LOYAL_CUSTOMERS")},
        "no-purchase-30d": {p for p in persons if p not in in_30 or in_30[p].segment == "NO_PURCHASE"},
        "under-50": {p for p in persons if p not in ever or ever[p].historic_value < Decimal("50.000000001")},
    }
    assert found == wanted
    assert all(0 < len(w) < len(persons) for w in wanted.values()), wanted
    # One person at a time (EvaluatePersonConditions, a flow's branch) agrees: its purchase counts and values
    # are computed over the person's own events, its RFM segments among every purchaser.
    for person in persons:
        request = pb.EvaluatePersonConditionsRequest(
            person=event_pb2.PersonRef(person_id=person), conditions=list(conditions.values())
        )
        answer = journeys.stub.EvaluatePersonConditions(request, metadata=journeys.metadata, timeout=30)
        assert list(answer.results) == [person in wanted[s] for s in conditions], person


def test_lifecycle_stage_segments_follow_the_tenants_model(journeys: Journeys) -> None:
    rng = random.Random(3)
    log = shifted_log(rng)
    journeys.write(*(e.message() for e in log))
    groups = {
        "engaged": [LifecycleStage.ENGAGEMENT, LifecycleStage.RETENTION],
        "aware": [LifecycleStage.AWARENESS],
        "advocates": [LifecycleStage.ADVOCACY],
    }
    for segment_id, stages in groups.items():
        condition = condition_pb2.PersonCondition()
        condition.lifecycle_stage.stages.extend(int(s) for s in stages)  # type: ignore[misc]
        journeys.create_segment(condition, segment_id)

    def wanted(model: lifecycle_pb2.LifecycleModel) -> dict[str, set[str]]:
        violations: list[FieldViolation] = []
        converted = lifecycle_model(model, "", violations)
        assert violations == []
        now = datetime.now(UTC)
        return {
            segment_id: {
                p
                for p, events in persons_of(log).items()
                if Person(events, now).holds(InLifecycleStage(frozenset(stages)), converted)
            }
            for segment_id, stages in groups.items()
        }

    built = {s: built_members(journeys, s) for s in groups}
    assert built == wanted(BUILT_IN_MODEL)

    # Everyone who viewed something becomes an advocate under the tenant's new model.
    model = lifecycle_pb2.LifecycleModel()
    model.CopyFrom(BUILT_IN_MODEL)
    advocacy = next(d for d in model.stages if d.stage == lifecycle_stage_pb2.LIFECYCLE_STAGE_ADVOCACY)
    advocacy.condition.event_count.event.CopyFrom(analytics_pb2.EventMatcher(event_name="Viewed"))
    advocacy.condition.event_count.ClearField("window")
    journeys.stub.UpdateLifecycleModel(
        pb.UpdateLifecycleModelRequest(
            lifecycle_model=model, update_mask=field_mask_pb2.FieldMask(paths=["stages"])
        ),
        metadata=journeys.metadata,
        timeout=10,
    )
    updated = datetime.now(UTC)
    moved = {s: set(members_fresh_after(journeys, f"segments/{s}", updated)[0]) for s in groups}
    assert moved == wanted(model)
    assert moved["advocates"] != built["advocates"]
