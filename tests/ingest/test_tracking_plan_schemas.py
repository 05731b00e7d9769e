"""How plans' JSON Schemas are accepted and applied: references, formats, violation paths, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from wayline.event.v1 import event_pb2
from wayline_ingest.plans.checker import MAX_VIOLATIONS_PER_EVENT, compile_plan, evaluate
from wayline_ingest.plans.jsonschemas import schema_problem
from wayline_ingest.plans.model import CHANNELS, EVENT_TYPES, EventSchema, PlanSpec, TrackingPlan

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def check(schema: dict[str, Any], **properties: Any) -> list[tuple[str, str]]:
    """The violations (path, reason) of a track event with `properties` against `schema`."""
    assert schema_problem(json.dumps(schema)) is None
    spec = PlanSpec(enabled=True, event_schemas=(EventSchema("track", "Thing", json.dumps(schema)),))
    compiled = compile_plan(TrackingPlan("acme", "plan", spec, 1, NOW, NOW))
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, name="Thing", channel=event_pb2.CHANNEL_WEB)
    event.properties.update(properties)
    violations, _label = evaluate(compiled, event)
    return [(v.field, v.reason) for v in violations]


def test_references_inside_the_schema_resolve_and_remote_ones_are_refused() -> None:
    local = {
        "$defs": {"money": {"type": "number", "minimum": 0}},
        "properties": {"price": {"$ref": "#/$defs/money"}},
    }
    assert check(local, price=-1) == [("properties.price", "SCHEMA_VIOLATION")]
    remote = schema_problem(json.dumps({"properties": {"price": {"$ref": "https://example.com/money.json"}}}))
    assert remote is not None
    assert "https://example.com/money.json" in remote
    dangling = schema_problem(json.dumps({"$ref": "#/$defs/missing"}))
    assert dangling is not None


def test_a_ref_key_inside_data_is_not_a_reference() -> None:
    assert schema_problem(json.dumps({"const": {"$ref": "https://example.com/x"}})) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON"),
        ("[]", "not valid JSON"),
        ('{"type": 3}', "not a valid JSON Schema"),
        # Deeper than the reader and the validator recurse: a RecursionError, answered INTERNAL, before.
        ("[" * 100_000, "nested deeper than 64 levels"),
        ('{"properties":' * 400 + "{}" + "}" * 400, "is nested 401 levels deep; at most 64"),
        ('{"allOf": [' * 300 + "{}" + "]}" * 300, "is nested 601 levels deep; at most 64"),
    ],
)
def test_text_that_is_not_a_json_schema_is_described(text: str, problem: str) -> None:
    described = schema_problem(text)
    assert described is not None
    assert problem in described


def test_a_schema_as_deep_as_allowed_checks_events_as_deep_as_they_go() -> None:
    """64 levels: `items` within `items` 61 deep under `properties.deep`, against a list as deep (deeper than
    protobuf's recursion limit lets an event's properties arrive: about 50)."""
    schema: dict[str, Any] = {"type": "number"}
    for _ in range(61):
        schema = {"items": schema}
    value: Any = "x"
    for _ in range(61):
        value = [value]
    path = "properties.deep" + "[0]" * 61
    assert check({"properties": {"deep": schema}}, deep=value) == [(path, "SCHEMA_VIOLATION")]


def test_a_boolean_schema_is_a_schema() -> None:
    assert schema_problem("true") is None
    assert schema_problem("false") is None


def test_formats_are_asserted() -> None:
    schema = {
        "properties": {
            "at": {"format": "date-time"},
            "email": {"format": "email"},
            "id": {"format": "uuid"},
        }
    }
    assert (
        check(
            schema, at="2026-03-01T10:00:00Z", email="a@b.example", id="3f0e8a2a-6a0b-4c1e-9c9e-0d1c2b3a4f5e"
        )
        == []
    )
    assert check(schema, at="2026-03-01T10:00:00.5+01:00") == []
    assert sorted(check(schema, at="2026-13-01T10:00:00Z", email="nope", id="42")) == [
        ("properties.at", "SCHEMA_VIOLATION"),
        ("properties.email", "SCHEMA_VIOLATION"),
        ("properties.id", "SCHEMA_VIOLATION"),
    ]
    assert check(schema, at="2026-03-01 10:00") == [("properties.at", "SCHEMA_VIOLATION")]  # no offset


def test_violation_paths_follow_objects_arrays_and_unusual_keys() -> None:
    schema = {
        "properties": {
            "items": {"items": {"properties": {"sku": {"type": "string"}}, "required": ["qty"]}},
            "odd key": {"type": "string"},
        }
    }
    assert sorted(check(schema, items=[{"sku": "a", "qty": 1}, {"sku": 2}], **{"odd key": 1})) == [
        ("properties.items[1].qty", "SCHEMA_VIOLATION"),
        ("properties.items[1].sku", "SCHEMA_VIOLATION"),
        ('properties["odd key"]', "SCHEMA_VIOLATION"),
    ]


def test_integral_numbers_satisfy_integer_although_struct_carries_doubles() -> None:
    schema = {"properties": {"qty": {"type": "integer"}}}
    assert check(schema, qty=3) == []
    assert check(schema, qty=2.5) == [("properties.qty", "SCHEMA_VIOLATION")]


def test_violations_of_one_event_are_capped() -> None:
    schema = {"additionalProperties": {"type": "string"}}
    properties = {f"p{i}": i for i in range(MAX_VIOLATIONS_PER_EVENT + 10)}
    assert len(check(schema, **properties)) == MAX_VIOLATIONS_PER_EVENT


def test_domain_names_match_the_contract_enums() -> None:
    channels = [v.name.removeprefix("CHANNEL_").lower() for v in event_pb2.Channel.DESCRIPTOR.values]
    types = [v.name.removeprefix("EVENT_TYPE_").lower() for v in event_pb2.EventType.DESCRIPTOR.values]
    assert list(CHANNELS) == [c for c in channels if c != "unspecified"]
    assert list(EVENT_TYPES) == [t for t in types if t != "unspecified"]
