"""The property filters of a flow definition, checked as the contract states them (analytics.proto's
PropertyFilter and FilterOperator) and as journeys (`analytics_converters.property_filter`) and decision
(`features/spec_compiler.py`) check the same message, wherever a definition has one: the trigger, waits,
goals, `event_since_entry` and `trigger_property` conditions, and person conditions (the audience, `person`
conditions), whose filters journeys evaluates.

- `property` is a path the contract defines: `properties.<key>[.<key>...]`, `context.<field>...`,
  `person.<trait>`, or an event field (`name`, `type`, `channel`, `text`, `group_id`, `sentiment_score`,
  `revenue`); a person condition's `person_property` a `person.<trait>` path only;
- the operator's number of values: none for IS_SET and IS_NOT_SET, exactly one for MATCHES_REGEX and the
  ordering operators, at least one for the others; no value a list or an object;
- an ordering operator's bound a number or an RFC 3339 time (a real one: not February 30), quoted;
- a MATCHES_REGEX value a string RE2 compiles (wayline.common.patterns, ADR 72).

A filter with no property, no operator or none of the values its operator needs is incomplete (`REQUIRED`:
a draft may be, publication and simulation refuse it); every other problem is `INVALID`, refused in a draft
too. The walk follows the FlowDefinition's schema (it finds a filter by its message type, not by its keys,
and never looks inside a Struct). Nothing here changes how a stored definition runs (runtime/matching.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from wayline.common.errors import FieldViolation
from wayline.common.filter_times import rfc3339_time
from wayline.common.patterns import pattern_problem
from wayline.common.property_paths import EVENT_FIELDS, is_event_path, is_person_path
from wayline.journeys.v1 import analytics_pb2, condition_pb2
from wayline.orchestrator.v1 import flow_pb2

__all__ = ["filter_violations"]

_FILTER = analytics_pb2.PropertyFilter.DESCRIPTOR
_PERSON_ONLY = {  # the fields whose filters read person traits only
    (condition_pb2.PersonCondition.DESCRIPTOR.full_name, "person_property"),
    (analytics_pb2.Population.DESCRIPTOR.full_name, "person_filters"),
}
_NO_VALUES = frozenset({"FILTER_OPERATOR_IS_SET", "FILTER_OPERATOR_IS_NOT_SET"})
MATCHES_REGEX = "FILTER_OPERATOR_MATCHES_REGEX"
_ORDERING = frozenset(
    {
        "FILTER_OPERATOR_GREATER_THAN",
        "FILTER_OPERATOR_GREATER_THAN_OR_EQUAL",
        "FILTER_OPERATOR_LESS_THAN",
        "FILTER_OPERATOR_LESS_THAN_OR_EQUAL",
    }
)
_ONE_VALUE = _ORDERING | {MATCHES_REGEX}


def _short(operator: str) -> str:
    return operator.removeprefix("FILTER_OPERATOR_")


def _is_time(value: str) -> bool:
    """An RFC 3339 time, and a real one (journeys' store compiles the bound to a DateTime64)."""
    return rfc3339_time(value) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _property(prop: Any, path: str, *, person: bool) -> Iterator[FieldViolation]:
    if not prop:
        yield FieldViolation(path, "name the property to compare", "REQUIRED")
    elif not isinstance(prop, str):
        yield FieldViolation(path, "must be a property path")
    elif person:
        if not is_person_path(prop):
            yield FieldViolation(path, "must be a person.<trait> path")
    elif not (prop in EVENT_FIELDS or is_event_path(prop) or is_person_path(prop)):
        yield FieldViolation(
            path,
            "use properties.<key>[.<key>...], context.<field>..., person.<trait>, or one of "
            f"{', '.join(sorted(EVENT_FIELDS))}",
        )


def _values(operator: str, values: list[Any], path: str) -> Iterator[FieldViolation]:
    """How many values the operator takes, and of what kind."""
    comparable = True
    for i, value in enumerate(values):
        if isinstance(value, list | dict):
            comparable = False
            yield FieldViolation(f"{path}.values[{i}]", "lists and objects cannot be compared")
    if operator in _NO_VALUES:
        if values:
            yield FieldViolation(f"{path}.values", f"{_short(operator)} takes no values")
    elif not values:
        needs = (
            "give the RE2 pattern as the single value"
            if operator == MATCHES_REGEX
            else f"{_short(operator)} needs {'a' if operator in _ONE_VALUE else 'at least one'} value"
        )
        yield FieldViolation(f"{path}.values", needs, "REQUIRED")
    elif operator in _ONE_VALUE and len(values) > 1:
        yield FieldViolation(f"{path}.values", f"{_short(operator)} takes exactly one value")
    elif operator == MATCHES_REGEX:
        pattern = values[0]
        if not isinstance(pattern, str):
            if comparable:
                yield FieldViolation(f"{path}.values[0]", "must be a regular expression (a string)")
            return
        problem = pattern_problem(pattern)
        if problem is not None:
            yield FieldViolation(f"{path}.values[0]", problem)
    elif operator in _ORDERING and comparable:
        bound = values[0]
        if not (_is_number(bound) or (isinstance(bound, str) and _is_time(bound))):
            yield FieldViolation(f"{path}.values[0]", "must be a number or an RFC 3339 time (quoted)")


def _filter(node: Any, path: str, *, person: bool) -> Iterator[FieldViolation]:
    if not isinstance(node, dict):
        return
    yield from _property(node.get("property", ""), f"{path}.property", person=person)
    operator = node.get("operator", "FILTER_OPERATOR_UNSPECIFIED")
    values = node.get("values", [])
    values = values if isinstance(values, list) else [values]
    if operator == "FILTER_OPERATOR_UNSPECIFIED":
        yield FieldViolation(f"{path}.operator", "choose an operator", "REQUIRED")
    elif isinstance(operator, str):  # an enumeration number the contract does not define: field_checks'
        yield from _values(operator, values, path)


def _walk(node: Any, kind: Descriptor, path: str) -> Iterator[FieldViolation]:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        field: FieldDescriptor | None = kind.fields_by_name.get(key)
        if field is None or field.message_type is None:
            continue
        inner = field.message_type
        if inner.full_name.startswith("google.protobuf.") or inner.GetOptions().map_entry:
            continue  # Struct, Value, Duration, Timestamp...: no filter inside
        here = f"{path}.{key}"
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            where = here if i is None else f"{here}[{i}]"
            if inner.full_name == _FILTER.full_name:
                yield from _filter(item, where, person=(kind.full_name, key) in _PERSON_ONLY)
            else:
                yield from _walk(item, inner, where)


def filter_violations(definition: Any, path: str) -> Iterator[FieldViolation]:
    """The problems of every property filter of a definition (its proto3 JSON form, proto field names),
    each with its field path under `path`, e.g. `flow.definition.trigger.event.event.property_filters[0]`."""
    yield from _walk(definition, flow_pb2.FlowDefinition.DESCRIPTOR, path)
