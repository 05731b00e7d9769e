"""The runtime's reading of EventMatcher and PropertyFilter on one event: paths (the event fields and person
traits among them), every operator, negated operators on missing properties, the matcher's fields, and the
stored form of an event (old forms included)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from google.protobuf import json_format, timestamp_pb2

from tests.text_operators import CASES, TextCase, case_event, filter_message
from wayline.event.v1 import event_pb2
from wayline_orchestrator.flows.runtime.matching import MISSING, Occurrence, filter_holds, matches, read_path
from wayline_orchestrator.person_events import occurrences

EVENT = Occurrence(
    event_id="e1",
    person_id="p1",
    name="Cart Abandoned",
    time=0,
    type="EVENT_TYPE_TRACK",
    channel="CHANNEL_WEB",
    properties={
        "cart_value": 120,
        "plan": "pro",
        "items": {"count": 3},
        "gift": False,
        "note": None,
        "due": "2026-10-10T12:00:00+02:00",
        "local": "2026-10-10 08:30:00",  # no offset: UTC
        "day": "2026-10-10",  # a date: its midnight, UTC
        "year": "2026",  # not a time
    },
    context={"campaign": {"source": "newsletter"}, "timezone": "Europe/Paris"},
)


def _filter(path: str, operator: str, *values: Any) -> dict[str, Any]:
    return {"property": path, "operator": f"FILTER_OPERATOR_{operator}", "values": list(values)}


def test_read_path_reads_properties_context_and_event_fields() -> None:
    assert read_path(EVENT, "properties.items.count") == 3
    assert read_path(EVENT, "context.campaign.source") == "newsletter"
    assert (read_path(EVENT, "name"), read_path(EVENT, "channel"), read_path(EVENT, "type")) == (
        "Cart Abandoned",
        "web",
        "track",
    )
    assert read_path(EVENT, "properties.plan.tier") is MISSING
    assert read_path(EVENT, "person.country") is MISSING


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (_filter("properties.cart_value", "EQUALS", 120.0), True),
        (_filter("properties.cart_value", "EQUALS", "120"), False),
        (_filter("properties.plan", "EQUALS", "free", "pro"), True),
        (_filter("properties.gift", "EQUALS", False), True),
        (_filter("properties.gift", "EQUALS", 0), False),
        (_filter("properties.plan", "NOT_EQUALS", "pro"), False),
        (_filter("properties.missing", "NOT_EQUALS", "pro"), True),
        (_filter("properties.plan", "CONTAINS", "r"), True),
        (_filter("properties.cart_value", "CONTAINS", 12), True),
        (_filter("properties.missing", "NOT_CONTAINS", "x"), True),
        (_filter("context.campaign.source", "MATCHES_REGEX", "^news"), True),
        (_filter("properties.cart_value", "GREATER_THAN", 100), True),
        (_filter("properties.cart_value", "GREATER_THAN_OR_EQUAL", 120), True),
        (_filter("properties.cart_value", "LESS_THAN", 120), False),
        (_filter("properties.cart_value", "LESS_THAN_OR_EQUAL", 120), True),
        (_filter("properties.plan", "GREATER_THAN", 1), False),
        # Times compare as times, as journeys and decision read them (the bound RFC 3339, the value stored).
        (_filter("properties.due", "GREATER_THAN", "2026-10-10T09:59:59Z"), True),
        (_filter("properties.due", "LESS_THAN", "2026-10-10T10:00:00Z"), False),
        (_filter("properties.local", "GREATER_THAN_OR_EQUAL", "2026-10-10T08:30:00Z"), True),
        (_filter("properties.day", "LESS_THAN", "2026-10-10T00:00:01Z"), True),
        (_filter("properties.year", "LESS_THAN", "2027-01-01T00:00:00Z"), False),
        (_filter("properties.cart_value", "LESS_THAN", "2027-01-01T00:00:00Z"), False),
        (_filter("properties.note", "IS_SET"), False),
        (_filter("properties.note", "IS_NOT_SET"), True),
        (_filter("properties.plan", "IS_SET"), True),
    ],
)
def test_filter_holds_compares_as_json_values(condition: dict[str, Any], expected: bool) -> None:
    assert filter_holds(EVENT, condition) is expected


def test_matches_requires_every_set_field() -> None:
    assert matches(EVENT, None)
    assert matches(EVENT, {"event_name": "Cart Abandoned", "channels": ["CHANNEL_WEB", "CHANNEL_APP"]})
    assert not matches(EVENT, {"event_name": "Cart Abandoned", "channels": ["CHANNEL_EMAIL"]})
    assert not matches(EVENT, {"event_type": "EVENT_TYPE_PAGE"})
    assert matches(EVENT, {"event_type": "EVENT_TYPE_TRACK"})
    cheap = _filter("properties.cart_value", "LESS_THAN", 50)
    assert not matches(EVENT, {"event_name": "Cart Abandoned", "property_filters": [cheap]})


def _message(**properties: Any) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id="e1",
        person_id="p1",
        name="Viewed",
        type=event_pb2.EVENT_TYPE_TRACK,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=timestamp_pb2.Timestamp(seconds=60),
    )
    event.properties.update(properties)
    event.context.timezone = "Europe/Paris"
    return event


def test_an_observed_event_converts_its_properties_only_when_a_flow_reads_them() -> None:
    event = _message(plan="pro")
    event.properties.fields["ratio"].number_value = math.nan  # no JSON form: converting it raises
    (made,) = occurrences([event])  # not converted yet
    assert (made.name, made.type, made.time) == ("Viewed", "EVENT_TYPE_TRACK", 60_000_000)
    assert not matches(made, {"event_name": "Signed Up"})  # decided by the name: nothing converted
    with pytest.raises(ValueError, match="NaN"):
        read_path(made, "properties.plan")


def test_an_observed_event_reads_as_its_json_form() -> None:
    (made,) = occurrences([_message(plan="pro", seats=3, tags=["a"])])
    assert made == Occurrence(
        "e1",
        "p1",
        "Viewed",
        60_000_000,
        "EVENT_TYPE_TRACK",
        "CHANNEL_WEB",
        {"plan": "pro", "seats": 3.0, "tags": ["a"]},
        {"timezone": "Europe/Paris"},
    )
    assert Occurrence.of_json(made.as_json()) == made
    assert matches(made, {"property_filters": [_filter("properties.seats", "GREATER_THAN", 2)]})


# --- the event fields and person traits (the runtime once read them as missing) ---------------------------

ORDER = Occurrence(
    "e2",
    "p1",
    "Order Completed",
    0,
    "EVENT_TYPE_TRACK",
    "CHANNEL_WEB",
    text="Where is my refund?",
    group_id="acme",
    revenue=100.5,
)


def test_read_path_reads_the_event_fields_numbers_absent_when_unset() -> None:
    assert (read_path(ORDER, "text"), read_path(ORDER, "group_id"), read_path(ORDER, "revenue")) == (
        "Where is my refund?",
        "acme",
        100.5,
    )
    assert read_path(ORDER, "sentiment_score") is MISSING
    assert (read_path(EVENT, "text"), read_path(EVENT, "group_id")) == ("", "")  # strings: always set
    assert read_path(EVENT, "revenue") is MISSING


def test_an_observed_event_reads_its_event_fields_without_converting_its_properties() -> None:
    event = _message()
    event.properties.fields["ratio"].number_value = math.nan  # no JSON form: converting it raises
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=-20, nanos=-250_000_000))
    event.sentiment_score = 0.0  # a score of zero is a score
    event.text, event.group_id = "sorry", "acme"
    (made,) = occurrences([event])
    refund = {"property_filters": [_filter("revenue", "LESS_THAN", 0), _filter("sentiment_score", "IS_SET")]}
    assert matches(made, refund)  # decided by the event fields: the properties are not converted
    assert (read_path(made, "text"), read_path(made, "group_id")) == ("sorry", "acme")
    assert read_path(made, "revenue") == -20.25
    with pytest.raises(ValueError, match="NaN"):
        read_path(made, "properties.ratio")


def test_an_observed_event_without_event_fields_reads_them_as_decision_does() -> None:
    (made,) = occurrences([_message()])
    assert (read_path(made, "revenue"), read_path(made, "sentiment_score")) == (MISSING, MISSING)
    assert filter_holds(made, _filter("text", "IS_SET"))
    assert filter_holds(made, _filter("revenue", "IS_NOT_SET"))


def test_the_stored_form_keeps_the_event_fields_and_a_form_stored_before_them_loads() -> None:
    stored = ORDER.as_json()
    assert (stored["text"], stored["group_id"], stored["revenue"]) == ("Where is my refund?", "acme", 100.5)
    assert "sentiment_score" not in stored  # absent, not null
    assert Occurrence.of_json(stored) == ORDER
    zero = Occurrence("e3", "p1", "Refunded", 0, revenue=0.0, sentiment_score=0.0)
    assert read_path(Occurrence.of_json(zero.as_json()), "revenue") == 0.0  # set, not absent
    before = {  # an entry's trigger as runs stored it before the event fields were read
        "event_id": "e1",
        "person_id": "p1",
        "name": "Viewed",
        "time": 60_000_000,
        "type": "EVENT_TYPE_TRACK",
        "channel": "CHANNEL_WEB",
        "properties": {"plan": "pro"},
        "context": {},
    }
    loaded = Occurrence.of_json(before)
    assert (read_path(loaded, "revenue"), read_path(loaded, "text")) == (MISSING, "")
    assert loaded.as_json() == before  # an event without them is stored as before


def test_a_matcher_asks_for_its_person_traits_once_and_only_when_the_event_matches() -> None:
    asked: list[list[str]] = []

    def traits(keys: Sequence[str]) -> dict[str, Any]:
        asked.append(list(keys))
        return {"plan": "pro", "tier": 2}

    matcher = {
        "event_name": "Order Completed",
        "property_filters": [
            _filter("person.plan", "EQUALS", "pro"),
            _filter("revenue", "GREATER_THAN", 100),
            _filter("person.tier", "GREATER_THAN_OR_EQUAL", 2),
            _filter("person.country", "IS_NOT_SET"),
        ],
    }
    assert not matches(EVENT, matcher, traits)  # another name: nothing asked
    cheap = Occurrence("e4", "p1", "Order Completed", 0, revenue=10.0)
    assert not matches(cheap, matcher, traits)  # an event filter fails: nothing asked
    assert asked == []
    assert matches(ORDER, matcher, traits)
    assert asked == [["country", "plan", "tier"]]
    assert not matches(ORDER, matcher, lambda keys: {"plan": "free"})
    assert not matches(ORDER, matcher)  # no one to ask: the person has no traits
    assert filter_holds(ORDER, _filter("person.plan", "NOT_EQUALS", "pro"))
    assert filter_holds(ORDER, _filter("person.plan", "EQUALS", "pro"), traits)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_text_operators_read_the_contracts_text_of_every_value(case: TextCase) -> None:
    """CONTAINS, NOT_CONTAINS and MATCHES_REGEX on numbers (as ClickHouse prints them: `1e21`, `-0`,
    `1e-7`), booleans, null, objects and lists (no text), as journeys and decision read them
    (tests/text_operators.py). Before: a whole number was written out in full (`1e21` as 22 digits, `-0` as
    `0`), a small one in Python's layout (`1e-07`), an object or a list as Python's repr."""
    (event,) = occurrences([case_event(case.value)])
    condition = json_format.MessageToDict(filter_message(case.operator, case.values))
    assert filter_holds(event, condition) is case.holds
