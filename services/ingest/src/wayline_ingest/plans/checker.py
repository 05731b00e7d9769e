"""The hot path: a plan compiled for lookups, and the check of one event against it.

Compiling turns a stored plan into what every event needs and nothing more: schema validators keyed by the
wire numbers of (event type, event name), so that checking an event is a dict lookup and, only when a
non-empty schema applies, one `Struct` to dict conversion and one validation. It is done once per plan
revision (the cache keeps the result), never per event.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from google.protobuf.json_format import MessageToDict
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline_ingest.plans.jsonschemas import compile_validator
from wayline_ingest.plans.model import NAMED_EVENT_TYPES, PlanMode, TrackingPlan

__all__ = ["MAX_VIOLATIONS_PER_EVENT", "UNPLANNED_LABEL", "CompiledPlan", "compile_plan", "evaluate"]

# Enough to fix an event; a property bag that is wrong everywhere must not make a megabyte of violations.
MAX_VIOLATIONS_PER_EVENT: Final = 20
# The metric label of unplanned events: their names are unbounded (anyone can send any name), so they are
# counted under one label instead of making a time series each.
UNPLANNED_LABEL: Final = "(unplanned)"

_PAGE: Final = int(event_pb2.EVENT_TYPE_PAGE)
_NAMED_TYPES: Final = frozenset(
    int(event_pb2.EventType.Value(f"EVENT_TYPE_{t.upper()}")) for t in NAMED_EVENT_TYPES
)
_TYPE_NAMES: Final = {
    v.number: v.name.removeprefix("EVENT_TYPE_").lower() for v in event_pb2.EventType.DESCRIPTOR.values
}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING: Final = object()


@dataclass(frozen=True)
class _Schema:
    validator: Draft202012Validator | None  # None: any properties
    label: str  # the metric label: the planned event name, or "(type)" for unnamed schemas


@dataclass(frozen=True)
class CompiledPlan:
    """One enabled plan revision, ready for the hot path."""

    tenant: str
    plan_id: str
    revision: int
    name: str
    mode: PlanMode
    channels: tuple[int, ...]  # wire numbers; empty: every channel
    allow_unplanned_events: bool
    schemas: Mapping[tuple[int, str], _Schema]


def compile_plan(plan: TrackingPlan) -> CompiledPlan:
    """Compile every schema of `plan` (a plan the rules accepted) once."""
    schemas: dict[tuple[int, str], _Schema] = {}
    for schema in plan.spec.event_schemas:
        number = int(event_pb2.EventType.Value(f"EVENT_TYPE_{schema.event_type.upper()}"))
        text = schema.properties_json_schema
        schemas[(number, schema.event_name)] = _Schema(
            validator=compile_validator(text) if text else None,
            label=schema.event_name or f"({schema.event_type})",
        )
    return CompiledPlan(
        tenant=plan.tenant,
        plan_id=plan.plan_id,
        revision=plan.revision,
        name=plan.name,
        mode=plan.spec.mode,
        channels=tuple(int(event_pb2.Channel.Value(f"CHANNEL_{c.upper()}")) for c in plan.spec.channels),
        allow_unplanned_events=plan.spec.allow_unplanned_events,
        schemas=schemas,
    )


def evaluate(plan: CompiledPlan, event: event_pb2.Event) -> tuple[list[FieldViolation], str]:
    """The violations of `event` (paths from the event) and the metric label of its planned event."""
    name = event.name if event.type in _NAMED_TYPES else ""
    schema = plan.schemas.get((event.type, name), _MISSING)
    if schema is _MISSING and event.type == _PAGE:
        schema = plan.schemas.get((_PAGE, ""), _MISSING)  # a page schema without a name covers every page
    if not isinstance(schema, _Schema):
        if plan.allow_unplanned_events:
            return [], UNPLANNED_LABEL
        kind = _TYPE_NAMES.get(event.type, str(event.type))
        described = f"{kind} event {event.name!r}" if name else f"{kind} event"
        violation = FieldViolation(
            "name" if name else "type",
            f"the {described} is not in tracking plan {plan.name}",
            "UNPLANNED_EVENT",
        )
        return [violation], UNPLANNED_LABEL
    if schema.validator is None:
        return [], schema.label
    properties = MessageToDict(event.properties)
    violations: list[FieldViolation] = []
    try:
        for error in schema.validator.iter_errors(properties):
            violations.append(_violation(error))
            if len(violations) >= MAX_VIOLATIONS_PER_EVENT:
                break
    except Unresolvable as exc:  # ruled out on write; a schema must never fail the call
        violations.append(
            FieldViolation("properties", f"the plan's schema cannot be applied: {exc}", "SCHEMA_VIOLATION")
        )
    return violations, schema.label


def _violation(error: ValidationError) -> FieldViolation:
    segments = deque(error.absolute_path)
    required_names = error.validator_value
    if (
        error.validator == "required"
        and isinstance(error.instance, dict)
        and isinstance(required_names, list)
    ):
        # jsonschema reports a missing property at its parent object; point at the property itself.
        for required in required_names:
            if required not in error.instance and error.message.startswith(repr(required)):
                segments.append(required)
                break
    return FieldViolation(_path(segments), error.message, "SCHEMA_VIOLATION")


def _path(segments: deque[str | int]) -> str:
    path = "properties"
    for segment in segments:
        if isinstance(segment, int):
            path += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            path += f".{segment}"
        else:
            path += '["' + segment.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return path
