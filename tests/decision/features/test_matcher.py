"""EventMatcher and PropertyFilter on one event (matcher.py): paths, every operator, JSON comparisons."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.text_operators import CASES, TextCase, case_event, filter_message
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.json_values import MISSING
from wayline_decision.features.matcher import compile_matcher, compile_path, moment_us
from wayline_decision.features.model import (
    EventMatcher,
    FilterOperator,
    JsonValue,
    ObservedEvent,
    PropertyFilter,
)
from wayline_decision.features.spec_compiler import compile_spec

Op = FilterOperator

EVENT = ObservedEvent(
    event_id="00000000-0000-4000-8000-000000000001",
    person_id="p",
    timestamp_us=1,
    received_at_us=2,
    type="track",
    name="Order Completed",
    channel="mobile_app",
    properties={
        "amount": 125.0,
        "plan": "Pro",
        "flag": False,
        "nothing": None,
        "cart": {"items": 2.0, "sku": "a-1", "deep": {"x": "y"}},
        "tags": ["a", "b"],
        "due": "2026-10-10T12:00:00Z",
        "day": "2026-10-10",
        "compact": "20261010",  # ISO 8601's basic format: fromisoformat reads it, journeys' store does not
        "local": "2026-10-10 08:30:00",
    },
    context={
        "campaign": {"source": "newsletter"},
        "device": {"displayWidth": 390, "type": "DEVICE_TYPE_MOBILE"},
        # Struct keys: as the sender wrote them
        "extra": {"plan_type": "gold", "ab_test": {"variant_id": "B"}},
        "traits": {"loyalty_tier": 3.0},
    },
    text="please REFUND my order",
    group_id="",
    sentiment_score=-0.5,
    revenue=None,
)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("properties.amount", 125.0),
        ("properties.cart.items", 2.0),
        ("properties.cart.deep.x", "y"),
        ("properties.cart.nope", MISSING),
        ("properties.amount.inner", MISSING),  # a key of something that is not an object
        ("properties.tags.0", MISSING),  # lists have no keys
        ("properties.nothing", None),
        ("context.campaign.source", "newsletter"),
        ("context.device.display_width", 390),  # proto field names, looked up in lowerCamelCase
        ("context.extra.plan_type", "gold"),  # below a Struct, the sender's keys as they are
        ("context.extra.ab_test.variant_id", "B"),
        ("context.traits.loyalty_tier", 3.0),
        ("context.extra.planType", MISSING),
        # Not proto field names, though their lowerCamelCase is the stored key: they name no field (ADR 79).
        ("context.device.displayWidth", MISSING),
        ("context.device.display__width", MISSING),
        ("context.device_", MISSING),
        ("name", "Order Completed"),
        ("type", "track"),
        ("channel", "mobile_app"),
        ("group_id", ""),  # string fields are always set
        ("sentiment_score", -0.5),
        ("revenue", MISSING),
    ],
)
def test_paths_read_the_stored_value(path: str, value: Any) -> None:
    found = compile_path(path)(EVENT)
    assert found is MISSING if value is MISSING else (found == value and type(found) is type(value))


def _holds(path: str, operator: Op, *values: JsonValue) -> bool:
    return compile_matcher(EventMatcher(filters=(PropertyFilter(path, operator, values),)))(EVENT)


@pytest.mark.parametrize(
    ("path", "operator", "values", "expected"),
    [
        ("properties.amount", Op.EQUALS, (125.0,), True),
        ("properties.amount", Op.EQUALS, ("125",), False),  # a string never equals a number
        ("properties.plan", Op.EQUALS, ("pro",), False),  # case-sensitive
        ("properties.plan", Op.EQUALS, ("x", "Pro"), True),  # any of the values
        ("properties.flag", Op.EQUALS, (0.0,), False),  # a boolean is not a number
        ("properties.flag", Op.EQUALS, (False,), True),
        ("properties.nothing", Op.EQUALS, (None,), True),  # null equals null
        ("properties.absent", Op.EQUALS, (None,), False),  # a missing property is not null
        ("properties.absent", Op.NOT_EQUALS, ("x",), True),  # negations hold for a missing property
        ("properties.plan", Op.NOT_EQUALS, ("Pro",), False),
        ("properties.amount", Op.CONTAINS, (12.0,), True),  # as text: 125
        ("properties.cart", Op.CONTAINS, ('"items":2',), False),  # an object has no text
        ("text", Op.CONTAINS, ("refund",), False),
        ("text", Op.NOT_CONTAINS, ("refund",), True),
        ("properties.nothing", Op.CONTAINS, ("null",), False),  # null is not set
        ("properties.absent", Op.NOT_CONTAINS, ("x",), True),
        ("name", Op.MATCHES_REGEX, ("^Order",), True),
        ("text", Op.MATCHES_REGEX, ("(?i)refund",), True),
        ("properties.flag", Op.MATCHES_REGEX, ("^fal",), True),
        ("properties.amount", Op.GREATER_THAN, (125.0,), False),
        ("properties.amount", Op.GREATER_THAN_OR_EQUAL, (125.0,), True),
        ("properties.amount", Op.LESS_THAN, (1e21,), True),
        ("properties.plan", Op.LESS_THAN, (1e21,), False),  # only numbers compare with a number
        ("sentiment_score", Op.LESS_THAN_OR_EQUAL, (-0.5,), True),
        ("properties.due", Op.GREATER_THAN, ("2026-10-10T11:59:59Z",), True),  # times compare as times
        ("properties.due", Op.LESS_THAN, ("2026-10-10T13:00:00+02:00",), False),
        ("properties.day", Op.LESS_THAN, ("2026-10-10T00:00:01Z",), True),  # a date is its midnight, UTC
        ("properties.local", Op.GREATER_THAN, ("2026-10-10T08:29:59Z",), True),  # no offset: UTC
        ("properties.local", Op.LESS_THAN, ("2026-10-10T08:30:00Z",), False),
        ("properties.compact", Op.LESS_THAN, ("2027-01-01T00:00:00Z",), False),  # not a time's shape
        ("properties.plan", Op.GREATER_THAN, ("2000-01-01T00:00:00Z",), False),  # not a time
        ("properties.nothing", Op.IS_SET, (), False),
        ("properties.plan", Op.IS_SET, (), True),
        ("group_id", Op.IS_SET, (), True),
        ("revenue", Op.IS_NOT_SET, (), True),
        ("properties.absent", Op.IS_NOT_SET, (), True),
    ],
)
def test_filters_compare_json_values(
    path: str, operator: Op, values: tuple[JsonValue, ...], expected: bool
) -> None:
    assert _holds(path, operator, *values) is expected


def test_a_matcher_needs_every_set_field() -> None:
    assert compile_matcher(EventMatcher())(EVENT)
    assert compile_matcher(
        EventMatcher(name="Order Completed", type="track", channels=("web", "mobile_app"))
    )(EVENT)
    assert not compile_matcher(EventMatcher(name="order completed"))(EVENT)
    assert not compile_matcher(EventMatcher(type="identify"))(EVENT)
    assert not compile_matcher(EventMatcher(channels=("web",)))(EVENT)
    both = (PropertyFilter("properties.plan", Op.EQUALS, ("Pro",)), PropertyFilter("revenue", Op.IS_SET))
    assert not compile_matcher(EventMatcher(filters=both))(EVENT)


def test_times_read_as_utc_microseconds() -> None:
    assert moment_us("1970-01-01T00:00:01Z") == 1_000_000
    assert moment_us("1970-01-01T01:00:00+01:00") == 0
    assert moment_us("1970-01-01 00:00:00.000002") == 2
    assert moment_us("soon") is None


def _compiled(property_filter: analytics_pb2.PropertyFilter) -> EventMatcher:
    """The matcher of a COUNT feature with this filter, as the spec compiler reads it from a manifest."""
    spec = feature_pb2.FeatureSpec(name="s", version="1")
    feature = spec.features.add(name="f", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    feature.events.property_filters.append(property_filter)
    (definition,) = compile_spec(spec).features
    return definition.events


@pytest.mark.parametrize("case", CASES, ids=str)
def test_text_operators_read_the_contracts_text_of_every_value(case: TextCase) -> None:
    """CONTAINS, NOT_CONTAINS and MATCHES_REGEX on numbers (as ClickHouse prints them), booleans, null,
    objects and lists (no text), as journeys and the orchestrator read them (tests/text_operators.py), on
    the event as ObserveEvents converts it. Before: a number value was looked for in Python's layout (1e-7
    as `1e-07`, 1e21 as 22 digits, -0 as `0`), and an object or a list was searched as its JSON text."""
    event = observed_event(case_event(case.value))
    assert compile_matcher(_compiled(filter_message(case.operator, case.values)))(event) is case.holds


def test_equals_finds_the_value_among_many_of_every_kind() -> None:
    """EQUALS looks the value up by kind (a set per kind): still any of the values, numbers numerically (-0
    equals 0), never a string for a number, a boolean for a number or null for a missing property."""
    skus = tuple(f"sku-{i}" for i in range(2_000))
    assert _holds("properties.cart.sku", Op.EQUALS, *skus, "a-1")
    assert not _holds("properties.cart.sku", Op.EQUALS, *skus, 1.0, True, None)
    amounts = tuple(float(i) for i in range(100))
    assert _holds("properties.amount", Op.EQUALS, "x", *amounts, 125.0)
    assert not _holds("properties.amount", Op.EQUALS, "125", True, None, *amounts)
    assert _holds("properties.flag", Op.EQUALS, 0.0, "false", None, False)
    assert not _holds("properties.flag", Op.EQUALS, 0.0, 1.0, "false", None, True)
    assert _holds("properties.nothing", Op.EQUALS, "null", 0.0, False, None)
    assert not _holds("properties.nothing", Op.EQUALS, "null", 0.0, False)
    assert not _holds("properties.absent", Op.EQUALS, None, "", 0.0)
    assert _holds("properties.absent", Op.NOT_EQUALS, None, "", 0.0)
    zero = replace(EVENT, properties={"zero": -0.0, "one": 1})
    matcher = compile_matcher(
        EventMatcher(filters=(PropertyFilter("properties.zero", Op.EQUALS, (5.0, 0.0)),))
    )
    assert matcher(zero)
    matcher = compile_matcher(
        EventMatcher(filters=(PropertyFilter("properties.one", Op.EQUALS, (1.0, 2.0)),))
    )
    assert matcher(zero)  # an integer the converter left as one equals its float
