"""A feature spec (and a label) compiled to ONE ClickHouse statement with one row per observation and one
column per feature: the single computation behind GetProfileFeatures and ExportTrainingSet.

Shape: the person's events (from `current_events`, read as their current person) RIGHT JOIN the observations
(a bound array of (row, person id, time) tuples: the small side, so it is the hash table while events stream
past it) on the person, GROUP BY the observation, one conditional aggregate per feature. Every event column a
feature needs (its matcher's truth, its property as a number or as raw JSON) is computed once per event in
the inner SELECT, not once per (event, observation) pair. Observations without events survive the RIGHT JOIN
with `present = 0`, which every condition requires, so they get "nothing to aggregate" (NULL).

Point in time: an event counts for a feature at observation time t under cut-off D when
`ts < t AND rs < D AND (rs < t OR backfill)` (timestamp and received_at as epoch microseconds; imported
history counts from its timestamp), and `ts >= t - window` for a
windowed feature; for the label when `t <= ts < t + horizon AND rs < D` (and, for an attributed label, when
the event's value at the attribution path equals the anchor's, carried with the observation). Stored-column
bounds (received_at, the timestamp range, the union of the matchers) go into `current_events(where=...)` so
ClickHouse prunes before the override join.

A LIFECYCLE_STAGE feature is the model's multiIf over per-observation aggregates, one per leaf: `countIf`
for an event count (its matcher and window, over the visible events) and, for a person property, the trait's
latest raw value among visible identify events tested with the filter SQL segments use (store/matching.py),
so the stage is the one GetLifecycleStages gives at t over the same events.

Sums and means add values in ascending order (arraySum of arraySort), so two computations over the same
events give the same double whatever the grouping, and a plain-Python `sum(sorted(...))` (left to right)
agrees exactly. Result columns: `row`, then per feature a Nullable(Float64) (numeric aggregations), a
Nullable(String) of raw JSON (FIRST_VALUE, LAST_VALUE, PERSON_PROPERTY) or, for COUNT_DISTINCT, a tuple of
the number of distinct scalars and the distinct texts of objects and lists (`distinct_count` finishes it:
JSON objects are equal whatever their key order, and the stored order is the map order of the Struct that
was written, which varies), then the label when defined.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from wayline_journeys.analytics import EventMatcher
from wayline_journeys.conditions import (
    Condition,
    EventCount,
    Group,
    LifecycleStage,
    Logical,
    Not,
    PersonProperty,
)
from wayline_journeys.features import Aggregation, FeatureDefinition, FeatureQuery, LabelKind, Observation
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.store.matching import (
    UnsupportedFilter,
    event_property_raw,
    json_is_null,
    json_is_number,
    matcher_kinds_sql,
    matcher_sql,
    value_condition,
)
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

__all__ = ["DAY_US", "RAW_JSON", "distinct_count", "feature_rows_sql"]

DAY_US = 86_400_000_000
RAW_JSON = frozenset({Aggregation.FIRST_VALUE, Aggregation.LAST_VALUE, Aggregation.PERSON_PROPERTY})
"""Aggregations whose column is raw JSON text (the others are numbers)."""

_MICROS = "fromUnixTimestamp64Micro({value}, 'UTC')"


class _EventColumns:
    """The per-event columns of the inner SELECT, each computed once however many features use it."""

    def __init__(self, params: SqlParams) -> None:
        self.params = params
        self._aliases: dict[tuple[str, object], str] = {}
        self.selected: list[str] = []

    def _column(self, key: tuple[str, object], expression: str) -> str:
        if key not in self._aliases:
            alias = f"c{len(self._aliases)}"
            self._aliases[key] = alias
            self.selected.append(f"{expression} AS {alias}")
        return f"e.{self._aliases[key]}"

    def matches(self, matcher: EventMatcher) -> str:
        if matcher.matches_everything:
            return "1"
        return self._column(("match", matcher), f"toUInt8({matcher_sql(matcher, self.params)})")

    def number(self, path: str) -> str:
        raw = event_property_raw(path, self.params)
        return self._column(("number", path), f"if({json_is_number(raw)}, JSONExtractFloat({raw}), NULL)")

    def json(self, path: str) -> str:
        raw = event_property_raw(path, self.params)
        return self._column(("json", path), f"if(NOT {json_is_null(raw)}, {raw}, NULL)")

    def distinct(self, path: str) -> str:
        """The value as COUNT_DISTINCT compares it (NULL when absent or null): a number as `n` and its
        shortest text (1 and 1.0, 0 and -0 are one value), a string or a boolean as its JSON text, an object
        or a list as `j` and its JSON text, whose key order is the stored one: those are told apart in
        Python (`distinct_count`), as JSON values."""
        raw = event_property_raw(path, self.params)
        return self._column(
            ("distinct", path),
            f"multiIf({json_is_null(raw)}, NULL, {json_is_number(raw)}, "
            f"concat('n', toString(JSONExtractFloat({raw}) + 0)), "
            f"JSONType({raw}) IN ('Object', 'Array'), concat('j', {raw}), {raw})",
        )

    def trait(self, path: str) -> str:
        key = self.params.bind(path.removeprefix("person."), "String")
        return self._column(
            ("trait", path),
            f"if(type = 'identify' AND JSONHas(properties, {key}), JSONExtractRaw(properties, {key}), NULL)",
        )


def _stage(model: LifecycleModel, columns: _EventColumns, visible: str) -> str:
    """The stage number under `model` of a person with a visible event."""
    branches = [f"{_holds(c, columns, visible)}, {int(s)}" for s, c in model.ranked()]
    awareness = int(LifecycleStage.AWARENESS)
    return f"multiIf({', '.join(branches)}, {awareness})" if branches else str(awareness)


def _holds(condition: Condition, columns: _EventColumns, visible: str) -> str:
    """The condition at the observation's time, over its visible events (conditions.py's meanings)."""
    if isinstance(condition, Not):
        return f"NOT ({_holds(condition.condition, columns, visible)})"
    if isinstance(condition, Group):
        joiner = " AND " if condition.operator is Logical.AND else " OR "
        return "(" + joiner.join(f"({_holds(c, columns, visible)})" for c in condition.conditions) + ")"
    params = columns.params
    if isinstance(condition, EventCount):
        counted = f"{visible} AND {columns.matches(condition.event)}"
        if condition.window is not None:
            window_us = condition.window // timedelta(microseconds=1)
            counted += f" AND e.ts >= l.t - {params.bind(window_us, 'Int64')}"
        threshold = params.bind(condition.count, "Int64")
        return f"(countIf({counted}) {condition.comparison.value} {threshold})"
    if isinstance(condition, PersonProperty):
        trait = columns.trait(condition.filter.path)
        # The latest raw value ('' when no visible identify event carries the trait), as segments read it.
        latest = f"argMaxIf(assumeNotNull({trait}), (e.ts, e.eid), {visible} AND {trait} IS NOT NULL)"
        return value_condition(latest, condition.filter.operator, condition.filter.values, params)
    raise UnsupportedFilter(f"a lifecycle-stage feature cannot use {type(condition).__name__} conditions")


def _feature(feature: FeatureDefinition, columns: _EventColumns, visible: str) -> str:
    kind = feature.aggregation
    if kind is Aggregation.LIFECYCLE_STAGE:
        assert feature.lifecycle is not None  # the converter requires it
        return _when(visible, f"toFloat64({_stage(feature.lifecycle, columns, visible)})")
    if kind is Aggregation.PERSON_PROPERTY:  # `events` and `window` are ignored, as the contract says
        value = columns.trait(feature.property)
        return _when(
            f"{visible} AND {value} IS NOT NULL", f"argMaxIf(assumeNotNull({value}), (e.ts, e.eid), {{c}})"
        )
    condition = f"{visible} AND {columns.matches(feature.events)}"
    if feature.window_us is not None:
        condition += f" AND e.ts >= l.t - {columns.params.bind(feature.window_us, 'Int64')}"
    if kind.numeric_property:
        value = columns.number(feature.property)
        condition += f" AND {value} IS NOT NULL"
        ordered = f"arraySum(arraySort(groupArrayIf(assumeNotNull({value}), {{c}})))"
        return _when(
            condition,
            {
                Aggregation.SUM: ordered,
                Aggregation.AVERAGE: f"{ordered} / countIf({{c}})",
                Aggregation.MIN: f"minIf(assumeNotNull({value}), {{c}})",
                Aggregation.MAX: f"maxIf(assumeNotNull({value}), {{c}})",
            }[kind],
        )
    if kind is Aggregation.COUNT_DISTINCT:
        value = columns.distinct(feature.property)
        condition += f" AND {value} IS NOT NULL"
        key = f"assumeNotNull({value})"
        return (
            f"tuple(toFloat64(uniqExactIf({key}, {condition} AND NOT startsWith({key}, 'j'))), "
            f"groupUniqArrayIf({key}, {condition} AND startsWith({key}, 'j')))"
        )
    if kind.reads_property:
        value = columns.json(feature.property)
        condition += f" AND {value} IS NOT NULL"
        return _when(
            condition,
            {
                Aggregation.FIRST_VALUE: f"argMinIf(assumeNotNull({value}), (e.ts, e.eid), {{c}})",
                Aggregation.LAST_VALUE: f"argMaxIf(assumeNotNull({value}), (e.ts, e.eid), {{c}})",
            }[kind],
        )
    return _when(
        condition,
        {
            Aggregation.COUNT: "toFloat64(countIf({c}))",
            Aggregation.DAYS_SINCE_FIRST: f"(l.t - minIf(e.ts, {{c}})) / {DAY_US}",
            Aggregation.DAYS_SINCE_LAST: f"(l.t - maxIf(e.ts, {{c}})) / {DAY_US}",
            Aggregation.ACTIVE_DAYS: "toFloat64(uniqExactIf(e.day, {c}))",
        }[kind],
    )


def distinct_count(column: tuple[float, list[str]]) -> float | None:
    """A COUNT_DISTINCT column's value: the distinct scalars plus the objects and lists that differ as JSON
    values; None when no event had a value."""
    scalars, containers = column
    found = scalars + len({json.dumps(json.loads(c[1:]), sort_keys=True) for c in containers})
    return found or None


def _when(condition: str, aggregate: str) -> str:
    """`aggregate` (with `{c}` standing for the condition) when some event meets the condition, else NULL."""
    return f"if(countIf({condition}) > 0, {aggregate.replace('{c}', condition)}, NULL)"


def _label(query: FeatureQuery, columns: _EventColumns, cut_off: str) -> str:
    label = query.label
    assert label is not None
    horizon = columns.params.bind(label.horizon_us, "Int64")
    condition = (
        f"e.present = 1 AND {columns.matches(label.event)} AND e.ts >= l.t AND e.ts < l.t + {horizon} "
        f"AND e.rs < {cut_off}"
    )
    if label.attribution:
        value = columns.json(label.attribution)
        # Compared as JSON values: the same text, or the same number written differently (1 and 1.0).
        condition += (
            f" AND l.attr != '' AND {value} IS NOT NULL AND ({value} = l.attr OR "
            f"(isNotNull(toFloat64OrNull({value})) AND toFloat64OrNull({value}) = toFloat64OrNull(l.attr)))"
        )
    if label.kind is LabelKind.BINARY:
        return f"toUInt8(countIf({condition}) > 0)"
    if label.kind is LabelKind.COUNT:
        return f"toFloat64(countIf({condition}))"
    value = columns.number(label.property)
    return f"arraySum(arraySort(groupArrayIf(assumeNotNull({value}), {condition} AND {value} IS NOT NULL)))"


def _stored_bounds(query: FeatureQuery, observations: Sequence[Observation], params: SqlParams) -> str:
    """Predicates on stored columns that every counted event meets, for pruning before the override join."""
    times = [o.time_us for o in observations]
    cut_off = params.bind(query.data_as_of_us, "Int64")
    latest = max(times) + (query.label.horizon_us if query.label else 0)
    bounds = [
        f"received_at < {_MICROS.format(value=cut_off)}",
        f"timestamp < {_MICROS.format(value=params.bind(latest, 'Int64'))}",
    ]
    features = query.features
    windows = [f.window_us for f in features if f.aggregation is not Aggregation.PERSON_PROPERTY]
    if features and len(windows) == len(features) and all(w is not None for w in windows):
        earliest = min(times) - max(w for w in windows if w is not None)
        bounds.append(f"timestamp >= {_MICROS.format(value=params.bind(earliest, 'Int64'))}")
    matchers = [f.events for f in features if f.aggregation is not Aggregation.PERSON_PROPERTY]
    matchers += [query.label.event] if query.label else []
    if not any(m.matches_everything for m in matchers):
        kinds = [matcher_sql(m, params) for m in matchers]
        if len(matchers) < len(features) + (query.label is not None):  # person properties read identifies
            kinds.append("type = 'identify'")
        bounds.append("(" + " OR ".join(f"({k})" for k in kinds) + ")")
    return " AND ".join(bounds)


def _stored_kinds(query: FeatureQuery, params: SqlParams) -> str:
    """The names, types and channels of the events the features and the label count, for the read before
    FINAL (relation.py): a superset of `_stored_bounds`' matchers, 'true' when any event may count."""
    matchers = [f.events for f in query.features if f.aggregation is not Aggregation.PERSON_PROPERTY]
    matchers += [query.label.event] if query.label else []
    kinds = [matcher_kinds_sql(m, params) for m in matchers]
    if len(matchers) < len(query.features) + (query.label is not None):  # person properties read identifies
        kinds.append("type = 'identify'")
    if not kinds or "true" in kinds:
        return "true"
    return "(" + " OR ".join(f"({k})" for k in kinds) + ")"


def feature_rows_sql(query: FeatureQuery, observations: Sequence[Observation], params: SqlParams) -> str:
    """The statement: columns `row` (the observation's index), one per feature, `label` when defined; one
    row per observation, ordered by index. `observations` must not be empty."""
    rows = params.bind(
        [(i, o.person_id, o.time_us, o.attribution) for i, o in enumerate(observations)],
        "Array(Tuple(UInt32, String, Int64, String))",
    )
    cut_off = params.bind(query.data_as_of_us, "Int64")
    columns = _EventColumns(params)
    # Received before t, or imported history (known from its timestamp); and before the cut-off either way.
    visible = f"e.present = 1 AND e.ts < l.t AND e.rs < {cut_off} AND (e.rs < l.t OR e.bf)"
    selected = [f"{_feature(f, columns, visible)} AS f{i}" for i, f in enumerate(query.features)]
    if query.label is not None:
        selected.append(f"{_label(query, columns, cut_off)} AS label")
    relation = current_events(
        params, where=_stored_bounds(query, observations, params), kinds=_stored_kinds(query, params)
    )
    events = (
        "SELECT person_id AS pid, toUnixTimestamp64Micro(timestamp) AS ts, "
        "toUnixTimestamp64Micro(received_at) AS rs, toString(event_id) AS eid, backfill AS bf, "
        "toDate32(timestamp, 'UTC') AS day, "
        f"toUInt8(1) AS present{''.join(', ' + c for c in columns.selected)} FROM {relation} "
        f"WHERE person_id IN (SELECT o.2 FROM (SELECT arrayJoin({rows}) AS o))"
    )
    labels = f"SELECT o.1 AS row, o.2 AS pid, o.3 AS t, o.4 AS attr FROM (SELECT arrayJoin({rows}) AS o)"
    return (
        f"SELECT l.row, {', '.join(selected) or '0'} "
        f"FROM ({events}) AS e RIGHT JOIN ({labels}) AS l ON e.pid = l.pid "
        "GROUP BY l.row, l.t, l.attr ORDER BY l.row"
    )
