"""A `wayline.journeys.v1.FeatureSpec` compiled into the domain definitions the online state evaluates,
refusing what the contract refuses, every bad field at once (INVALID_ARGUMENT with BadRequest violations,
under the field path the caller gives, e.g. `manifest.feature_spec.`).

The refusals are the contract's: a feature name that is not lower_snake_case or repeats, no aggregation,
`person.` filters in `events` (read as of now, they would leak the future into a point-in-time value), a
window that is not positive, a property missing where the aggregation reads one (a `person.<trait>` path for
PERSON_PROPERTY, an event path for the others) or present where it reads none, a default that is a list or
an object, more than MAX_FEATURES features, malformed filters (a MATCHES_REGEX pattern RE2 refuses among
them, as journeys' store would: common.patterns), and the typing rules of
`wayline.common.feature_encoding.spec_violations` (value types, category labels, the conditions a
lifecycle-stage feature's model may use). A lifecycle-stage model is checked as journeys checks a lifecycle
model (condition.proto): a known stage at most once, a condition per stage, groups of at least one condition,
at most MAX_DEPTH deep and MAX_CONDITIONS conditions, counts not negative, windows positive and at most
MAX_WINDOW_US, person properties on `person.<trait>` paths.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from google.protobuf import duration_pb2, struct_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.feature_encoding import encoder_for, spec_violations
from wayline.common.filter_times import rfc3339_time
from wayline.common.patterns import pattern_problem
from wayline.common.property_paths import EVENT_FIELDS, is_event_path, is_person_path
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, feature_pb2, lifecycle_pb2
from wayline_decision.features.model import (
    Aggregation,
    Comparison,
    CompiledSpec,
    CountTest,
    EventMatcher,
    FeatureDefinition,
    FeatureValue,
    FilterOperator,
    JsonValue,
    LifecycleModel,
    Negation,
    PropertyFilter,
    StageCondition,
    StageGroup,
    TraitTest,
)

__all__ = ["MAX_FEATURES", "compile_spec"]

MAX_FEATURES = 500
MAX_DEPTH = 8
"""A condition tree's deepest level (the root is at depth 1), as condition.proto says."""
MAX_CONDITIONS = 100
"""The most conditions a tree may hold, groups included."""
MAX_WINDOW_US = 36_500 * 86_400_000_000
_AWARENESS = 1
_STAGES = range(1, 7)
_COMPARISONS = {
    condition_pb2.COMPARISON_OPERATOR_UNSPECIFIED: Comparison.GREATER_THAN_OR_EQUAL,
    **{condition_pb2.ComparisonOperator.Value(f"COMPARISON_OPERATOR_{c.name}"): c for c in Comparison},
}

# compile_spec's `stored`, read by _check_regex and _check_values (deep in the walk of the spec).
_STORED: ContextVar[bool] = ContextVar("stored_spec", default=False)

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_AGGREGATIONS = {
    feature_pb2.FeatureAggregation.Value(f"FEATURE_AGGREGATION_{a.name}"): a for a in Aggregation
}
_OPERATORS = {analytics_pb2.FilterOperator.Value(f"FILTER_OPERATOR_{o.name}"): o for o in FilterOperator}
_NO_VALUES = (FilterOperator.IS_SET, FilterOperator.IS_NOT_SET)
_ONE_VALUE = (
    FilterOperator.MATCHES_REGEX,
    FilterOperator.GREATER_THAN,
    FilterOperator.GREATER_THAN_OR_EQUAL,
    FilterOperator.LESS_THAN,
    FilterOperator.LESS_THAN_OR_EQUAL,
)


def _short(full_name: str, prefix: str) -> str:
    return full_name.removeprefix(prefix).lower()


def _scalar(value: struct_pb2.Value) -> JsonValue | list[object]:
    """The scalar a Value holds (None for null or unset); a list or a struct comes back as a list."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None if kind in (None, "null_value") else []


def _event_path(path: str) -> bool:
    return path in EVENT_FIELDS or is_event_path(path)


def _filter(
    message: analytics_pb2.PropertyFilter, path: str, out: list[FieldViolation], *, person: bool = False
) -> PropertyFilter | None:
    """An event filter, or with `person` a filter on a `person.<trait>` path."""
    found = len(out)
    if person:
        if not is_person_path(message.property):
            out.append(FieldViolation(f"{path}.property", "must be a person.<trait> path"))
    elif message.property.startswith("person."):
        out.append(
            FieldViolation(
                f"{path}.property",
                "person. filters are read as of now, not as of the observation time; use a "
                "FEATURE_AGGREGATION_PERSON_PROPERTY feature instead",
            )
        )
    elif not _event_path(message.property):
        fields = ", ".join(sorted(EVENT_FIELDS))
        out.append(
            FieldViolation(f"{path}.property", f"use properties.<key>..., context.<field>... or {fields}")
        )
    operator = _OPERATORS.get(message.operator)
    values: list[JsonValue] = []
    for i, raw in enumerate(message.values):
        value = _scalar(raw)
        if isinstance(value, list):
            out.append(FieldViolation(f"{path}.values[{i}]", "lists and objects cannot be compared"))
        else:
            values.append(value)
    if operator is None:
        out.append(FieldViolation(f"{path}.operator", "choose an operator", "REQUIRED"))
    else:
        _check_values(operator, values, len(message.values), path, out)
    if len(out) > found or operator is None:
        return None
    return PropertyFilter(message.property, operator, tuple(values))


def _check_values(
    operator: FilterOperator, values: list[JsonValue], given: int, path: str, out: list[FieldViolation]
) -> None:
    """How many values the operator takes, and of what kind (`given` counts the refused ones too)."""
    if operator in _NO_VALUES and given:
        out.append(FieldViolation(f"{path}.values", f"{operator.name} takes no values"))
    elif operator in _ONE_VALUE and given != 1:
        out.append(FieldViolation(f"{path}.values", f"{operator.name} takes exactly one value"))
    elif operator not in _NO_VALUES and operator not in _ONE_VALUE and not given:
        out.append(FieldViolation(f"{path}.values", f"{operator.name} needs at least one value"))
    elif operator is FilterOperator.MATCHES_REGEX:
        _check_regex(values[0] if values else None, f"{path}.values[0]", out)
    elif operator in _ONE_VALUE:
        only = values[0] if values else None
        if isinstance(only, str) and rfc3339_time(only) is None and _STORED.get():
            return  # compile_spec's `stored`: a bound a looser check let in; it holds for no event now
        if isinstance(only, bool) or not (
            isinstance(only, float) or (isinstance(only, str) and rfc3339_time(only) is not None)
        ):
            out.append(FieldViolation(f"{path}.values[0]", "must be a number or an RFC 3339 time (quoted)"))


def _check_regex(pattern: JsonValue, path: str, out: list[FieldViolation]) -> None:
    """A MATCHES_REGEX value: a pattern RE2 accepts, as journeys' store (ClickHouse) runs it offline and the
    matcher online (common.patterns). A stored spec keeps a pattern only Python's `re` accepts (below)."""
    if not isinstance(pattern, str):
        out.append(FieldViolation(path, "must be a regular expression (a string)"))
        return
    problem = pattern_problem(pattern)
    if problem is None:
        return
    if _STORED.get():
        try:
            re.compile(pattern)
        except re.error:
            pass
        else:
            return  # compile_spec's `stored`: accepted before RE2 checked it; it holds for no event now
    out.append(FieldViolation(path, problem))


_CHANNELS = event_pb2.Channel.DESCRIPTOR.values_by_number
_EVENT_TYPES = event_pb2.EventType.DESCRIPTOR.values_by_number


def _matcher(message: analytics_pb2.EventMatcher, path: str, out: list[FieldViolation]) -> EventMatcher:
    if any(c == event_pb2.CHANNEL_UNSPECIFIED for c in message.channels):
        out.append(FieldViolation(f"{path}.channels", "CHANNEL_UNSPECIFIED is not a channel"))
    # The wire (and a manifest's JSON) carries any enum number; Name() raised ValueError for one the contract
    # does not define, an INTERNAL answer to the upload.
    unknown = [c for c in message.channels if c not in _CHANNELS]
    if unknown:
        out.append(
            FieldViolation(
                f"{path}.channels", f"not channels: {', '.join(map(str, unknown))}", "UNKNOWN_ENUM_VALUE"
            )
        )
    if message.event_type not in _EVENT_TYPES:
        out.append(
            FieldViolation(
                f"{path}.event_type", f"{message.event_type} is not an EventType", "UNKNOWN_ENUM_VALUE"
            )
        )
    filters = [
        _filter(f, f"{path}.property_filters[{i}]", out) for i, f in enumerate(message.property_filters)
    ]
    return EventMatcher(
        name=message.event_name,
        type=_short(_EVENT_TYPES[message.event_type].name, "EVENT_TYPE_")
        if message.event_type in _EVENT_TYPES and message.event_type
        else "",
        channels=tuple(_short(_CHANNELS[c].name, "CHANNEL_") for c in message.channels if c in _CHANNELS),
        filters=tuple(f for f in filters if f is not None),
    )


def _window_us(duration: duration_pb2.Duration) -> int:
    return duration.seconds * 1_000_000 + duration.nanos // 1_000  # the store's unit; finer parts dropped


def _definition(
    message: feature_pb2.FeatureDefinition, path: str, out: list[FieldViolation]
) -> FeatureDefinition | None:
    found = len(out)
    # Matched whole, but with compile_spec's `stored` as names were matched until 2026-12 (`match`, whose `$`
    # also matches before a final newline): a registered spec keeps loading (ADR 78).
    if not (_NAME.match if _STORED.get() else _NAME.fullmatch)(message.name):
        out.append(FieldViolation(f"{path}.name", "must be lower_snake_case, e.g. orders_30d"))
    aggregation = _AGGREGATIONS.get(message.aggregation)
    if aggregation is None:
        out.append(FieldViolation(f"{path}.aggregation", "choose an aggregation", "REQUIRED"))
    events, window, model = EventMatcher(), None, None
    if (
        aggregation is Aggregation.LIFECYCLE_STAGE
    ):  # events, property and window: spec_violations refuses them
        if message.HasField("lifecycle_model"):
            model = _lifecycle_model(message.lifecycle_model, f"{path}.lifecycle_model", out)
    elif aggregation is not Aggregation.PERSON_PROPERTY:  # it ignores both, as the contract says
        events = _matcher(message.events, f"{path}.events", out)
        if message.HasField("window"):
            window = _window_us(message.window)
            if window <= 0:
                out.append(FieldViolation(f"{path}.window", "must be positive", "OUT_OF_RANGE"))
    if aggregation is not None:
        _check_property(aggregation, message.property, f"{path}.property", out)
    default = _scalar(message.default_value)
    if isinstance(default, list):
        out.append(FieldViolation(f"{path}.default_value", "must be a number, a string, a boolean or null"))
    if len(out) > found or aggregation is None or isinstance(default, list):
        return None
    value: FeatureValue = default
    return FeatureDefinition(message.name, aggregation, events, message.property, window, value, model)


def _check_property(aggregation: Aggregation, prop: str, path: str, out: list[FieldViolation]) -> None:
    """A `person.<trait>` path for PERSON_PROPERTY, an event path for the other aggregations that read one,
    nothing for those that read none (LIFECYCLE_STAGE's is spec_violations' to refuse)."""
    if aggregation is Aggregation.PERSON_PROPERTY:
        if not is_person_path(prop):
            out.append(FieldViolation(path, "must be a person.<trait> path"))
    elif aggregation.reads_property:
        if not _event_path(prop):
            fields = ", ".join(sorted(EVENT_FIELDS))
            out.append(FieldViolation(path, f"use properties.<key>..., context.<field>... or {fields}"))
    elif aggregation is not Aggregation.LIFECYCLE_STAGE and prop:
        out.append(FieldViolation(path, f"{aggregation.name} reads no property"))


def _lifecycle_model(
    message: lifecycle_pb2.LifecycleModel, path: str, out: list[FieldViolation]
) -> LifecycleModel | None:
    """The model's stages above awareness, highest first (awareness's own condition changes nothing, but it
    is checked like the others)."""
    found, ranked, seen = len(out), [], set()
    for i, definition in enumerate(message.stages):
        where = f"{path}.stages[{i}]"
        if definition.stage not in _STAGES:
            out.append(FieldViolation(f"{where}.stage", "choose a lifecycle stage", "REQUIRED"))
        elif definition.stage in seen:
            out.append(FieldViolation(f"{where}.stage", "the stage is defined twice", "DUPLICATE"))
        seen.add(definition.stage)
        if not definition.HasField("condition"):
            out.append(FieldViolation(f"{where}.condition", "every stage needs a condition", "REQUIRED"))
            continue
        depth, count = _shape(definition.condition)
        if depth > MAX_DEPTH or count > MAX_CONDITIONS:
            out.append(
                FieldViolation(
                    f"{where}.condition",
                    f"{count} conditions {depth} deep; at most {MAX_CONDITIONS}, {MAX_DEPTH} deep",
                    "TOO_MANY",
                )
            )
            continue
        condition = _stage_condition(definition.condition, f"{where}.condition", out)
        if condition is not None and definition.stage > _AWARENESS:
            ranked.append((int(definition.stage), condition))
    if len(out) > found:
        return None
    return LifecycleModel(tuple(sorted(ranked, key=lambda r: -r[0])))


def _shape(message: condition_pb2.PersonCondition) -> tuple[int, int]:
    """(depth, number of conditions) of a tree, groups included."""
    if message.WhichOneof("condition") != "group":
        return 1, 1
    inner = [_shape(c) for c in message.group.conditions]
    return 1 + max((d for d, _ in inner), default=0), 1 + sum(n for _, n in inner)


def _stage_condition(
    message: condition_pb2.PersonCondition, path: str, out: list[FieldViolation]
) -> StageCondition | None:
    """A condition of a lifecycle-stage feature's model; None once a violation is recorded (the kinds it may
    not use are spec_violations' to report)."""
    kind = message.WhichOneof("condition")
    found: StageCondition | None = None
    if kind is None:
        out.append(FieldViolation(path, "set exactly one condition", "REQUIRED"))
    elif kind == "group":
        group = message.group
        if group.operator not in (
            condition_pb2.LOGICAL_OPERATOR_UNSPECIFIED,
            condition_pb2.LOGICAL_OPERATOR_AND,
            condition_pb2.LOGICAL_OPERATOR_OR,
        ):
            out.append(FieldViolation(f"{path}.group.operator", "unknown operator"))
        if not group.conditions:
            out.append(FieldViolation(f"{path}.group.conditions", "at least one condition", "REQUIRED"))
        inner = [
            _stage_condition(c, f"{path}.group.conditions[{i}]", out) for i, c in enumerate(group.conditions)
        ]
        if inner and all(c is not None for c in inner):
            any_of = group.operator == condition_pb2.LOGICAL_OPERATOR_OR
            found = StageGroup(any_of, tuple(c for c in inner if c is not None))
    elif kind == "person_property":
        trait = _filter(message.person_property, f"{path}.person_property", out, person=True)
        found = None if trait is None else TraitTest(trait)
    elif kind == "event_count":
        found = _count_test(message.event_count, f"{path}.event_count", out)
    if found is not None and message.negate:
        return Negation(found)
    return found


def _count_test(
    message: condition_pb2.EventCountCondition, path: str, out: list[FieldViolation]
) -> CountTest | None:
    found = len(out)
    events = _matcher(message.event, f"{path}.event", out)
    comparison = _COMPARISONS.get(message.comparison)
    if comparison is None:
        out.append(FieldViolation(f"{path}.comparison", "unknown comparison"))
    if message.count < 0:
        out.append(FieldViolation(f"{path}.count", "must not be negative", "OUT_OF_RANGE"))
    window = None
    if message.HasField("window"):
        window = _window_us(message.window)
        if not 0 < window <= MAX_WINDOW_US:
            out.append(FieldViolation(f"{path}.window", "must be positive and at most 36500 days"))
    if len(out) > found or comparison is None:
        return None
    return CountTest(events, comparison, message.count, window)


def compile_spec(message: feature_pb2.FeatureSpec, prefix: str = "", *, stored: bool = False) -> CompiledSpec:
    """The spec's definitions, in order, with their encoder; InvalidArgument listing every violation (field
    paths under `prefix`) when the contract refuses it.

    `stored` is for a spec stored before MATCHES_REGEX patterns were checked with RE2: one the online state
    registered (restored from its snapshot or change log, which must register every spec again, in order) or
    a registered model version's, loading (ADR 78). A pattern Python's `re` compiles but RE2 refuses is kept,
    and its filter holds for no event (common.patterns); so is an ordering filter's text bound that is no time
    as journeys reads one (common.filter_times: February 30, 24:00, other scripts' digits). Anywhere else (an
    upload) either is refused with its field path."""
    token = _STORED.set(stored)
    try:
        return _compile_spec(message, prefix)
    finally:
        _STORED.reset(token)


def _compile_spec(message: feature_pb2.FeatureSpec, prefix: str) -> CompiledSpec:
    out: list[FieldViolation] = []
    if not 0 < len(message.features) <= MAX_FEATURES:
        out.append(FieldViolation(f"{prefix}features", f"1 to {MAX_FEATURES} features", "OUT_OF_RANGE"))
    definitions, seen = [], set()
    for i, feature in enumerate(message.features[:MAX_FEATURES]):
        if feature.name in seen:
            out.append(FieldViolation(f"{prefix}features[{i}].name", "is used twice", "DUPLICATE"))
        seen.add(feature.name)
        definition = _definition(feature, f"{prefix}features[{i}]", out)
        if definition is not None:
            definitions.append(definition)
    out += spec_violations(message, prefix)
    if out:
        raise InvalidArgument("the feature spec is invalid; see the field violations", out[:100])
    return CompiledSpec(message.name, message.version, tuple(definitions), encoder_for(message))
