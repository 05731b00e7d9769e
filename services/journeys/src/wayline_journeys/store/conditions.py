"""PersonCondition trees (conditions.py) compiled to one per-person ClickHouse query.

The query has two levels. The inner one reads the events relation (`current_events`, so every event counts
for its current person) once, pairs each event with every evaluation time (`ARRAY JOIN` of the times, so a
series of dates costs one query), keeps the events before that time, and aggregates per (time, person):
one aggregate per leaf (`countIf` over a window, the latest trait value with `argMaxIf`, the timestamps and
step masks of a sequence). The outer level combines those aggregates with the trees' NOT/AND/OR into one
boolean column per condition. A person with no event before a time has no row for it.

Sequences run a small exact automaton over the person's sorted (timestamp, step mask) pairs with arrayFold:
for each step it keeps the latest start of a chain reaching that step, and events of one timestamp only
extend chains that ended strictly earlier. (`windowFunnel` with 'strict_increase' misses some chains when
two steps share a timestamp.)

Segment-membership leaves are a predicate on the outer row's person (`segment_members_sql`: the current
membership, whatever the evaluation time). Customer-value leaves join the reusable per-person value rows of
store/customer_value.py (one LEFT JOIN per distinct currency, names and window) to the outer level; those
rows are computed for one time, so a compiler with customer-value leaves takes that time (`as_of`) and its
query must be evaluated at that time only.

Compile every condition first, then call `query` (or `persons_query` and `no_events_query`, for
EvaluatePersonConditions and its batch: the asked persons at one time, with events and without): leaves
register their aggregates as they compile.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import replace
from datetime import datetime, timedelta

from wayline_journeys.analytics import EventMatcher, PropertyFilter
from wayline_journeys.conditions import (
    Aggregation,
    Condition,
    CustomerValue,
    EventAggregate,
    EventCount,
    Group,
    HasIdentifierType,
    InLifecycleStage,
    InSegment,
    LifecycleStage,
    Logical,
    Not,
    PersonProperty,
    Sequence,
    ValueMetric,
)
from wayline_journeys.customer_value import RfmSegment, ValueSpec
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.store.customer_value import counted_sql, person_value_rows
from wayline_journeys.store.matching import (
    UnsupportedFilter,
    event_number_sql,
    matcher_sql,
    revenue_in_sql,
    value_condition,
)
from wayline_journeys.store.relation import Relation, current_events, stored_events
from wayline_journeys.store.segments import segment_members_sql
from wayline_journeys.store.sql import EVENT_ORDER, SqlParams

__all__ = ["AS_OF", "ConditionCompiler"]

AS_OF = "as_of_us"
"""The column of the evaluation time (epoch microseconds) in the inner and outer query."""
_TIMESTAMP = "toUnixTimestamp64Micro(timestamp)"
_NONE = -(2**63)  # no chain reaches the step yet
_NO_LIMIT = 2**62  # `within` unset


class ConditionCompiler:
    """Compiles conditions over one statement's `SqlParams`. `lifecycle` is the model that
    lifecycle-stage conditions are evaluated with (None refuses them, as inside a lifecycle model); `as_of`
    is the one evaluation time of a query with customer-value conditions (None refuses them). With
    `one_person` (for `persons_query`), customer values other than RFM segments are aggregated over each
    asked person's own events: an RFM segment ranks the person among every purchaser of the tenant, a purchase
    count or a value does not, and computing them for the whole tenant made one person's branch in a flow
    read every purchase (ADR 67)."""

    def __init__(
        self,
        params: SqlParams,
        lifecycle: LifecycleModel | None = None,
        *,
        as_of: datetime | None = None,
        one_person: bool = False,
    ) -> None:
        self._params = params
        self._lifecycle = lifecycle
        self._as_of = as_of
        self._one_person = one_person
        self._values: dict[ValueSpec, str] = {}
        self._joins: list[str] = []
        self._aggregates: list[str] = []
        self._traits: dict[str, str] = {}
        self._stages: dict[LifecycleModel, str] = {}

    def _aggregate(self, expression: str) -> str:
        alias = f"agg{len(self._aggregates) + 1}"
        self._aggregates.append(f"{expression} AS {alias}")
        return alias

    def condition(self, condition: Condition) -> str:
        """A boolean expression of the outer query: `condition` holds for the row's person at its time."""
        if isinstance(condition, Not):
            return f"NOT ({self.condition(condition.condition)})"
        if isinstance(condition, Group):
            joiner = " AND " if condition.operator is Logical.AND else " OR "
            return "(" + joiner.join(f"({self.condition(c)})" for c in condition.conditions) + ")"
        if isinstance(condition, PersonProperty):
            return self.person_filters((condition.filter,))
        if isinstance(condition, EventCount):
            return self._event_count(condition)
        if isinstance(condition, EventAggregate):
            return self._event_aggregate(condition)
        if isinstance(condition, Sequence):
            return self._sequence(condition)
        if isinstance(condition, HasIdentifierType):
            found = self._aggregate(
                f"countIf(has(identifier_types, {self._params.bind(condition.identifier_type, 'String')}))"
            )
            return f"({found} > 0)"
        if isinstance(condition, InLifecycleStage):
            if self._lifecycle is None:
                raise UnsupportedFilter("a lifecycle-stage condition needs a lifecycle model")
            stages = sorted(int(s) for s in condition.stages)
            return f"({self.stage(self._lifecycle)} IN {self._params.bind(stages, 'Array(UInt8)')})"
        if isinstance(condition, InSegment):
            return f"({segment_members_sql(condition.segment_id, self._params)})"
        if isinstance(condition, CustomerValue):
            return self._customer_value(condition)
        raise UnsupportedFilter(f"unknown condition {condition!r}")

    def stage(self, model: LifecycleModel) -> str:
        """The person's stage number under `model`: the highest whose condition holds, else awareness (the
        row's person has an event before the time)."""
        if model not in self._stages:
            lifecycle, self._lifecycle = self._lifecycle, None  # no lifecycle conditions inside a model
            try:
                branches = [f"{self.condition(c)}, {int(s)}" for s, c in model.ranked()]
            finally:
                self._lifecycle = lifecycle
            awareness = int(LifecycleStage.AWARENESS)
            self._stages[model] = (
                f"multiIf({', '.join(branches)}, {awareness})" if branches else str(awareness)
            )
        return self._stages[model]

    def person_filters(self, filters: Seq[PropertyFilter]) -> str:
        """The person passes every `person.` filter at the row's time ('true' for none)."""
        found = []
        for f in filters:
            key = f.path.removeprefix("person.")
            if key == f.path or not key or "." in key:
                raise UnsupportedFilter(f"person property paths are person.<trait>, got {f.path!r}")
            if key not in self._traits:
                bound = self._params.bind(key, "String")
                self._traits[key] = self._aggregate(
                    f"argMaxIf(JSONExtractRaw(properties, {bound}), {EVENT_ORDER}, "
                    f"type = 'identify' AND JSONHas(properties, {bound}))"
                )
            found.append(value_condition(self._traits[key], f.operator, f.values, self._params))
        return " AND ".join(f"({c})" for c in found) if found else "true"

    def _events(self, matcher: EventMatcher, window: timedelta | None = None) -> str:
        """A predicate on the inner rows: the event matches `matcher`'s event fields (and falls in the
        trailing `window`)."""
        event_only = replace(matcher, filters=tuple(f for f in matcher.filters if not f.on_person))
        predicate = matcher_sql(event_only, self._params)
        if window is not None:
            predicate = f"({predicate}) AND {_TIMESTAMP} >= {AS_OF} - {self._micros(window)}"
        return predicate

    def _matcher_person(self, matcher: EventMatcher) -> str:
        return self.person_filters([f for f in matcher.filters if f.on_person])

    def _micros(self, span: timedelta) -> str:
        return self._params.bind(span // timedelta(microseconds=1), "Int64")

    def _event_count(self, condition: EventCount) -> str:
        count = self._aggregate(f"countIf({self._events(condition.event, condition.window)})")
        person = self._matcher_person(condition.event)
        counted = count if person == "true" else f"if({person}, {count}, 0)"
        threshold = self._params.bind(condition.count, "Int64")
        return f"({counted} {condition.comparison.value} {threshold})"

    def _event_aggregate(self, condition: EventAggregate) -> str:
        events = self._events(condition.event, condition.window)
        if condition.currency:
            events = f"({events}) AND {revenue_in_sql(condition.currency, self._params)}"
        number = event_number_sql(condition.property, self._params)
        found = self._aggregate(f"{condition.aggregation.value}If({number}, {events})")
        nothing = "0" if condition.aggregation is Aggregation.SUM else "NULL"  # what no number sums up to
        value = f"ifNull({found}, {nothing})"
        person = self._matcher_person(condition.event)
        if person != "true":  # the person fails the matcher's person filters: no event matches
            value = f"if({person}, {value}, {nothing})"
        threshold = self._params.bind(condition.threshold, "Float64")
        # No value is no match (and its negation one): NULL compares as NULL, read as false.
        return f"ifNull({value} {condition.comparison.value} {threshold}, false)"

    def _sequence(self, condition: Sequence) -> str:
        steps = condition.steps
        masks = [
            self._events(step, condition.window if i == len(steps) - 1 else None)
            for i, step in enumerate(steps)
        ]
        mask = " + ".join(f"if({m}, {1 << i}, 0)" for i, m in enumerate(masks))
        pairs = self._aggregate(f"arraySort(groupArrayIf(({_TIMESTAMP}, toUInt32({mask})), ({mask}) != 0))")
        n = self._params.bind(len(steps), "UInt32")
        none = self._params.bind(_NONE, "Int64")
        within = self._params.bind(
            _NO_LIMIT if condition.within is None else condition.within // timedelta(microseconds=1), "Int64"
        )
        # acc = (chains ending strictly before the current timestamp, chains so far, current timestamp);
        # each holds, per step, the latest start of a chain reaching it.
        done = "if(e.1 > acc.3, acc.2, acc.1)"
        start = f"if(k = 1, e.1, {done}[greatest(k - 1, 1)])"
        fold = (
            f"arrayFold((acc, e) -> ({done}, arrayMap(k -> if(bitTest(e.2, k - 1) AND {start} != {none} AND "
            f"e.1 - {start} <= {within}, greatest(acc.2[k], {start}), acc.2[k]), range(1, {n} + 1)), e.1), "
            f"{pairs}, CAST((arrayWithConstant({n}, {none}), arrayWithConstant({n}, {none}), {none}), "
            "'Tuple(Array(Int64), Array(Int64), Int64)'))"
        )
        person = [p for p in (self._matcher_person(step) for step in steps) if p != "true"]
        return f"(({fold}).2[{n}] != {none}{''.join(f' AND {p}' for p in person)})"

    def _customer_value(self, condition: CustomerValue) -> str:
        if self._as_of is None:
            raise UnsupportedFilter("a customer-value condition needs the compiler's one evaluation time")
        start = None if condition.window is None else self._as_of - condition.window
        spec = ValueSpec(condition.currency, self._as_of, start, condition.event_names)
        if self._one_person and condition.metric is not ValueMetric.RFM_SEGMENT:
            # One person's purchase count or value needs no other person: two aggregates over the events
            # the query reads anyway (its window ends at the query's one time, as the rows' read does).
            counted, _ = counted_sql(spec, self._params)
            if condition.metric is ValueMetric.HISTORIC_VALUE:
                own = self._aggregate(f"sumIf(assumeNotNull(revenue), {counted})")
                threshold = self._params.bind(str(condition.threshold), "Decimal(38, 9)")
            else:
                own = self._aggregate(f"countIf({counted} AND revenue > 0)")
                threshold = self._params.bind(int(condition.threshold), "Int64")
            return f"({own} {condition.comparison.value} {threshold})"
        if spec not in self._values:
            alias = self._values[spec] = f"value{len(self._values) + 1}"
            rows = person_value_rows(spec, self._params)
            self._joins.append(f"LEFT JOIN {rows} AS {alias} ON {alias}.person_id = persons.person_id")
        alias = self._values[spec]
        # A person without counted events has no value row: ifNull/'' read the join's defaults (0, '') as
        # value 0, no purchase, whether or not the session joins with NULLs.
        if condition.metric is ValueMetric.RFM_SEGMENT:
            segment = f"ifNull({alias}.rfm_segment, '')"
            accepted = sorted(s.value for s in condition.rfm_segments)
            no_purchase = self._params.bind(RfmSegment.NO_PURCHASE.value, "String")
            segments = self._params.bind(accepted, "Array(String)")
            return f"(if({segment} = '', {no_purchase}, {segment}) IN {segments})"
        if condition.metric is ValueMetric.HISTORIC_VALUE:
            value = f"ifNull({alias}.historic_value, 0)"
            threshold = self._params.bind(str(condition.threshold), "Decimal(38, 9)")
        else:
            value = f"ifNull({alias}.purchase_count, 0)"
            threshold = self._params.bind(int(condition.threshold), "Int64")
        return f"({value} {condition.comparison.value} {threshold})"

    def query(self, columns: Seq[str], times: str, where: str = "true", persons: str = "true") -> str:
        """SELECT as_of_us, person_id, `columns` for every person with an event before each time of
        `times` (a bound Array(Int64) of epoch microseconds). `where` filters stored columns before the
        overrides are joined; `persons` filters the current `person_id`."""
        aggregates = "".join(f", {a}" for a in self._aggregates)
        relation = current_events(self._params, where=where)
        inner = (
            f"SELECT {AS_OF}, person_id{aggregates} FROM {relation} "
            f"ARRAY JOIN arrayFilter(t -> t > {_TIMESTAMP}, {times}) AS {AS_OF} "
            f"WHERE {persons} GROUP BY {AS_OF}, person_id"
        )
        return self._outer(columns, inner)

    def persons_query(
        self,
        columns: Seq[str],
        at: str,
        persons: str,
        where: str = "true",
        relation: Relation = current_events,
    ) -> str:
        """SELECT as_of_us, person_id, `columns` for each person of `persons` (a bound Array(String)) with
        events before ONE time (`at`, a bound Int64 of epoch microseconds); the others have no row (see
        `no_events_query`). `where` filters stored columns before the overrides are joined (it must keep only
        events of the asked persons' anchors); `relation` reads the events (`stored_events` for persons no
        override names). Compile the conditions with `one_person`."""
        aggregates = "".join(f", {a}" for a in self._aggregates)
        events = relation(self._params, "{tenant:String}", where)
        before = f"person_id IN {persons} AND {_TIMESTAMP} < {at}"
        timed = f"SELECT *, {at} AS {AS_OF} FROM {events} WHERE {before}"
        inner = f"SELECT {at} AS {AS_OF}, person_id{aggregates} FROM ({timed}) GROUP BY person_id"
        return self._outer(columns, inner)

    def no_events_query(self, columns: Seq[str], at: str, persons: str) -> str:
        """`persons_query`'s row for each person of `persons` evaluated on no events (no count, no trait, no
        sequence; segment memberships and RFM ranks still their own). The aggregates are computed over an
        empty read, not left to the defaults a join fills in for a missing row: those match today's
        aggregates only by luck of their types (an average of no non-Nullable number is nan, a join's
        default 0). A separate statement, as few persons have no events: the empty aggregation costs a
        statement's analysis about 10 ms on chDB (docs/journeys.md)."""
        aggregates = "".join(f", {a}" for a in self._aggregates)
        aliases = "".join(f", agg{i}" for i in range(1, len(self._aggregates) + 1))
        empty = stored_events(self._params, "{tenant:String}", "false")
        # The count makes it a row even when no condition aggregates anything.
        nothing = f"SELECT count() AS event_rows{aggregates} FROM (SELECT *, {at} AS {AS_OF} FROM {empty})"
        inner = (
            f"SELECT {at} AS {AS_OF}, person_id{aliases} FROM ({nothing}) ARRAY JOIN {persons} AS person_id"
        )
        return self._outer(columns, inner)

    def _outer(self, columns: Seq[str], inner: str) -> str:
        selected = "".join(f", {c}" for c in columns)
        joins = "".join(f" {j}" for j in self._joins)
        # Qualified: with two customer-value joins or more, a bare person_id is ambiguous to ClickHouse.
        return f"SELECT {AS_OF}, persons.person_id AS person_id{selected} FROM ({inner}) AS persons{joins}"
