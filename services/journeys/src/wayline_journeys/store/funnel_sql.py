"""The funnel in ClickHouse: each person's best attempt, found with vectorised array functions.

docs/funnels.md states the semantics; this is how they are computed, in four stages of one statement:

1. `_units`: per person, the events that count (the request's channels and event filters), sorted by
   (timestamp, event id), as arrays: time µs, step bits, exclusion bits, breakdown value. With EACH_STEP
   attribution, one row per (person, value) whose step bits keep only the events carrying the value.
2. the walk, per unit: the start with the largest K (the furthest step reached), the earliest on ties, and
   its reported attempt's step times; units whose every start is ruled out by exclusions drop out here.
   ORDERED without gaps and exclusions, STRICT and ANY take the linear walks of `funnel_walks.py`.
   ORDERED with gaps or exclusions takes the general walk here: one row per first-step event in the time
   range (ARRAY JOIN) with the events as tuples `(position, time µs, step bits, exclusion bits, c_0, ...)`,
   where c_l counts the events up to this one that match an exclusion an attempt sitting at step l is
   exposed to (so "no such event strictly between positions i and j" is a comparison of two counts). A_k is
   the set of events that a clean attempt from this start can use as step k: A_0 = [start]; an event with
   step bit k within the window is in A_k when some event b in A_{k-1} precedes it with the step's gaps and
   no exposing exclusion between them. An attempt that ends at step k is valid when no exposing exclusion
   follows its step-k event within the window (V_k). The start's progress K is the largest k with V_k not
   empty; its reported attempt takes the first event of V_K and walks back, each time to the earliest event
   of A_{k-1} that fits. Then argMax over the starts. It visits every event of every start's window, so it
   costs the square of a person's events.
3. `units_sql`: the unit's series value (the start's, the last step's, the unit's own, or the person's
   trait).
4. aggregation per (series, step) with -State combinators, the ranking that keeps the breakdown's largest
   values (`store.breakdown.ranked_series`), and -Merge per series.

A trend (`trend_sql`) walks per unit and period instead: for the linear walks, each event is grouped into
every period whose attempts it can take part in (from the period holding t - window to the one holding t),
and a (person, period) unit takes only the starts in its period; the general walk keeps the best start per
period. Then units are counted per (value, period, furthest step).

Every lambda captures scalars or the small A_k arrays only, never a person's whole event array, because
ClickHouse copies a captured array for every element a lambda visits.
"""

from __future__ import annotations

from wayline_journeys.analytics import BreakdownDimension, EventMatcher
from wayline_journeys.funnels import Attribution, FunnelOrder, FunnelQuery, Outcome, PersonsPage
from wayline_journeys.store.breakdown import (
    event_breakdown_raw,
    person_breakdown,
    ranked_series,
    series_of_raw,
)
from wayline_journeys.store.funnel_walks import linear_walk, walks_linearly
from wayline_journeys.store.matching import matcher_sql, population_sql
from wayline_journeys.store.periods import period_number, period_start, periods_back
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import EVENT_ID_ORDER, SqlParams

__all__ = ["aggregate_sql", "persons_sql", "top_values_sql", "trend_sql", "units_sql"]

_DT64 = "DateTime64(6, 'UTC')"
_VALUE_TYPE = "Tuple(String, Bool)"
_NO_VALUE = f"CAST(tuple('', false), '{_VALUE_TYPE}')"


class _Layout:
    """Where each count lives in an event tuple: 1 position, 2 time, 3 step bits, 4 exclusion bits, then one
    count per step level that some exclusion exposes."""

    def __init__(self, query: FunnelQuery) -> None:
        self.open = [query.open_exclusions(level) for level in range(len(query.steps))]
        self.slot: dict[int, int] = {}
        for level, mask in enumerate(self.open):
            if mask:
                self.slot[level] = 5 + len(self.slot)

    def clean(self, level: int, earlier: str, later: str) -> str:
        """No event exposing an attempt at `level` strictly between the events `earlier` and `later`."""
        if level not in self.slot:
            return "1"
        s = self.slot[level]
        return f"{earlier}.{s} = {later}.{s} - toUInt64(bitAnd({later}.4, {self.open[level]}) != 0)"

    def unexposed(self, level: int, event: str, last: str) -> str:
        """No event exposing an attempt at `level` after `event`, up to the window's last event `last`."""
        if level not in self.slot:
            return "1"
        return f"{event}.{self.slot[level]} = {last}.{self.slot[level]}"


def _any_of(matchers: tuple[EventMatcher, ...], params: SqlParams) -> str:
    return " OR ".join(f"({matcher_sql(m, params)})" for m in matchers) or "false"


def _bits(conditions: list[str]) -> str:
    return " + ".join(f"toUInt32({c}) * {1 << i}" for i, c in enumerate(conditions)) or "toUInt32(0)"


def _stored_span(query: FunnelQuery, params: SqlParams) -> str:
    """The time span on stored columns, applied before the overrides join."""
    conditions = []
    if query.time_range.start is not None:
        conditions.append(f"timestamp >= {params.bind(query.time_range.start, _DT64)}")
    if query.time_range.end is not None:
        last = params.bind(query.time_range.end, _DT64)
        conditions.append(f"timestamp <= {last} + toIntervalMicrosecond({query.window_us})")
    return " AND ".join(conditions) or "true"


def _stored_kinds(query: FunnelQuery, params: SqlParams) -> str:
    """The channels and event names that can count, applied before FINAL (relation.py)."""
    conditions = []
    if query.event_filter.channels:
        conditions.append(f"channel IN {params.bind(list(query.event_filter.channels), 'Array(String)')}")
    matchers = [m for s in query.steps for m in s.matchers]
    matchers += [m for x in query.exclusions for m in x.matchers]
    if query.order is not FunnelOrder.STRICT and all(m.name for m in matchers):
        # Only events with these names can be steps or exclusions (STRICT needs every event in between).
        conditions.append(f"name IN {params.bind(sorted({m.name for m in matchers}), 'Array(String)')}")
    return " AND ".join(conditions) or "true"


def _in_range(query: FunnelQuery, params: SqlParams, time: str) -> str:
    conditions = []
    if query.time_range.start is not None:
        conditions.append(f"{time} >= toUnixTimestamp64Micro({params.bind(query.time_range.start, _DT64)})")
    if query.time_range.end is not None:
        conditions.append(f"{time} < toUnixTimestamp64Micro({params.bind(query.time_range.end, _DT64)})")
    return " AND ".join(conditions) or "1"


def _period(query: FunnelQuery, params: SqlParams, time: str, number: bool = False) -> str:
    """The local date (Date32) the trend's period holding `time` (µs) begins on; its number when `number`."""
    assert query.trend is not None
    zone = params.bind(query.trend.time_zone, "String")
    of = period_number if number else period_start
    return of(query.trend.period, f"fromUnixTimestamp64Micro({time})", zone)


def _by_event(query: FunnelQuery) -> bool:
    """Whether the breakdown value comes from the attempt's events (channel or event property)."""
    dimension, path = query.breakdown.dimension, query.breakdown.property
    return dimension is BreakdownDimension.CHANNEL or (
        dimension is BreakdownDimension.PROPERTY and not path.startswith("person.")
    )


def _event_value(query: FunnelQuery, params: SqlParams) -> str:
    if not _by_event(query):
        return _NO_VALUE
    if query.breakdown.dimension is BreakdownDimension.CHANNEL:
        return f"CAST(tuple(toString(channel), false), '{_VALUE_TYPE}')"  # the text json_text would give
    return f"CAST({series_of_raw(event_breakdown_raw(query.breakdown, params))}, '{_VALUE_TYPE}')"


def _units(query: FunnelQuery, params: SqlParams, by_period: bool = False) -> str:
    """Per person with a first-step event in the time range (per person and value with EACH_STEP), the
    counted events in sequence order as arrays: `ts` (µs), `ms` (the unit's step bits), `xs` (exclusion
    bits), `vs` (breakdown values), and `bv` (the unit's value). When `by_period`, per person and period of
    the trend with such an event in it (`pd`), holding the events that attempts started in the period can
    use: those from the period's start to its end plus the window."""
    steps = _bits([_any_of(s.matchers, params) for s in query.steps])
    exclusions = _bits([_any_of(x.matchers, params) for x in query.exclusions])
    relation = current_events(params, where=_stored_span(query, params), kinds=_stored_kinds(query, params))
    filters = [matcher_sql(query.event_filter, params), population_sql(query.population, params)]
    relevant = "1" if query.order is FunnelOrder.STRICT else "sm != 0 OR xm != 0"
    first = "sm != 0" if query.order is FunnelOrder.ANY else "bitTest(sm, 0)"
    counted = f"({first}) AND {_in_range(query, params, 't')}"
    keys, period = "person_id", ""
    if by_period:
        # An event at t can take part in the attempts started in the periods from the one holding
        # t - window to the one holding t: it is copied into each of them, counted back from t's own.
        assert query.trend is not None
        earliest = _period(query, params, f"t - {query.window_us}", number=True)
        count = f"toUInt64({_period(query, params, 't', number=True)} - {earliest} + 1)"
        back = periods_back(query.trend.period, _period(query, params, "t"), "i")
        keys, period = "person_id, pd", f", arrayJoin(arrayMap(i -> {back}, range({count}))) AS pd"
        counted += f" AND {_period(query, params, 't')} = pd"
    grouped = (
        f"SELECT {keys}, arraySort(groupArray((t, {EVENT_ID_ORDER}, sm, xm, bd))) AS sorted, "
        f"arrayMap(q -> q.1, sorted) AS ts, arrayMap(q -> q.3, sorted) AS all_ms, "
        f"arrayMap(q -> q.4, sorted) AS xs, arrayMap(q -> q.5, sorted) AS vs "
        f"FROM (SELECT person_id, event_id, toUnixTimestamp64Micro(timestamp) AS t, {steps} AS sm, "
        f"{exclusions} AS xm, {_event_value(query, params)} AS bd{period} FROM {relation} "
        f"WHERE ({') AND ('.join(filters)}) AND ({relevant})) "
        f"GROUP BY {keys} HAVING countIf({counted}) > 0"
    )
    pd = ", pd" if by_period else ""
    if query.attribution is Attribution.EACH_STEP and _by_event(query):
        return (
            f"SELECT person_id, bv, vs, arrayMap((m, v) -> if(v = bv, m, 0), all_ms, vs) AS ms, ts, xs{pd} "
            f"FROM ({grouped}) ARRAY JOIN arrayDistinct(arrayFilter((v, m) -> m != 0, vs, all_ms)) AS bv"
        )
    return f"SELECT person_id, {_NO_VALUE} AS bv, vs, all_ms AS ms, ts, xs{pd} FROM ({grouped})"


def _persons(query: FunnelQuery, params: SqlParams, layout: _Layout) -> str:
    """The units with their events as one array of tuples `ev` for the general walk."""
    counts = "".join(
        f", arrayCumSum(arrayMap(q -> toUInt64(bitAnd(q, {layout.open[level]}) != 0), xs)) AS c{level}"
        for level in layout.slot
    )
    zipped = ", ".join(["arrayEnumerate(ts)", "ts", "ms", "xs", *(f"c{level}" for level in layout.slot)])
    return f"SELECT person_id, bv, vs{counts}, arrayZip({zipped}) AS ev FROM ({_units(query, params)})"


def _gap(query: FunnelQuery, k: int, later: str, earlier: str) -> str:
    step = query.steps[k]
    conditions = [f"{later}.2 - {earlier}.2 >= {step.min_gap_us}"] if step.min_gap_us else []
    if step.max_gap_us is not None:
        conditions.append(f"{later}.2 - {earlier}.2 <= {step.max_gap_us}")
    return " AND ".join(conditions) or "1"


def _ordered_stages(query: FunnelQuery, layout: _Layout) -> list[list[str]]:
    """The columns of each stage; a stage refers only to the columns of the stages before it, so that
    ClickHouse never expands one alias inside another (which grows the expression exponentially)."""
    n = len(query.steps)
    stages: list[list[str]] = []
    for k in range(1, n):
        fits = f"b.1 < a.1 AND {_gap(query, k, 'a', 'b')} AND {layout.clean(k - 1, 'b', 'a')}"
        stages.append(
            [
                f"arrayFilter(a -> arrayExists(b -> {fits}, A{k - 1}), "
                f"arrayFilter(q -> q.1 > s.1 AND q.1 <= e AND bitTest(q.3, {k}), ev)) AS A{k}"
            ]
        )
    valid = []
    for k in range(n):
        check = layout.unexposed(k, "a", "ev[e]")
        valid.append(f"arrayFilter(a -> {check}, A{k}) AS V{k}" if check != "1" else f"A{k} AS V{k}")
    stages.append(valid)
    levels = ", ".join(f"notEmpty(V{k}), {k}" for k in reversed(range(n)))
    stages.append([f"multiIf({levels}, -1) AS K"])
    # The reported attempt: the first valid event of step K, then back to the earliest fitting predecessor.
    stages.append([f"V{n - 1}[1] AS r{n - 1}"])
    for k in reversed(range(n - 1)):
        later = f"r{k + 1}"
        fits = f"b.1 < {later}.1 AND {_gap(query, k + 1, later, 'b')} AND {layout.clean(k, 'b', later)}"
        back = f"arrayFirst(b -> {fits}, A{k})"
        stages.append([f"multiIf(K = {k}, V{k}[1], K > {k}, {back}, V{k}[1]) AS r{k}"])
    chain = ", ".join(f"r{k}" for k in range(n))
    stages.append(
        [f"arraySlice(arrayMap(r -> r.2, [{chain}]), 1, K + 1) AS h", f"[{chain}][K + 1].1 AS last_position"]
    )
    return stages


def _general_walk(query: FunnelQuery, params: SqlParams, by_period: bool) -> str:
    """ORDERED with gaps or exclusions. Per unit with a clean attempt (and per period of its starts when
    `by_period`, as `pd`): person_id, bv and best = (K, step times, the start's value, the value of the
    reported attempt's last event), from one row per start."""
    layout = _Layout(query)
    period = f", {_period(query, params, 's.2')} AS pd" if by_period else ""
    starts = (
        f"SELECT person_id, bv, vs, ev, s, [s] AS A0, s.1 AS start, "
        f"arrayCount(q -> q.2 <= s.2 + {query.window_us}, ev) AS e{period} "
        f"FROM ({_persons(query, params, layout)}) "
        f"ARRAY JOIN arrayFilter(q -> bitTest(q.3, 0) AND {_in_range(query, params, 'q.2')}, ev) AS s"
    )
    for columns in _ordered_stages(query, layout):
        starts = f"SELECT *, {', '.join(columns)} FROM ({starts})"
    keys = "person_id, bv, pd" if by_period else "person_id, bv"
    starts = (
        f"SELECT {keys}, start, K, h, vs[start] AS start_value, vs[last_position] AS last_value "
        f"FROM ({starts})"
    )
    return (
        f"SELECT {keys}, argMax((K, h, start_value, last_value), (K, -toInt64(start))) AS best "
        f"FROM ({starts}) WHERE K >= 0 GROUP BY {keys}"
    )


def _linear_units(query: FunnelQuery, params: SqlParams, by_period: bool) -> tuple[str, str]:
    """The units of the linear walks and the condition on an event (step bits `m`, time `t`) that starts an
    attempt; when `by_period`, a unit per period in which it has a start (`pd`), taking that period's."""
    first = "m != 0" if query.order is FunnelOrder.ANY else "bitTest(m, 0)"
    start = f"{first} AND {_in_range(query, params, 't')}"
    if not by_period:
        return _units(query, params), start
    return _units(query, params, by_period=True), f"{start} AND {_period(query, params, 't')} = pd"


def units_sql(query: FunnelQuery, params: SqlParams, by_period: bool = False) -> str:
    """One row per counted person (per person and value with EACH_STEP; and per period of the trend in
    which they started an attempt, `pd`, when `by_period`): `person_id`, `bd` (the breakdown's (value,
    missing)), `K` (the furthest step reached, zero-based) and `h` (the times of steps 0..K, µs)."""
    if walks_linearly(query):
        units, start = _linear_units(query, params, by_period)
        best = linear_walk(query, units, start, ", pd" if by_period else "")
    else:
        best = _general_walk(query, params, by_period)
    traits = person_breakdown(query.breakdown, params, current_events(params))
    if traits is not None:
        value = f"CAST({series_of_raw('p.raw')}, '{_VALUE_TYPE}')"
    elif _by_event(query):
        value = {
            Attribution.FIRST_STEP: "best.3",
            Attribution.LAST_STEP: "best.4",
            Attribution.EACH_STEP: "bv",
        }[query.attribution]
    else:
        value = _NO_VALUE
    period = ", u.pd AS pd" if by_period else ""
    unit = (
        f"SELECT u.person_id AS person_id, {value} AS bd, best.1 AS K, best.2 AS h{period} FROM ({best}) AS u"
    )
    return unit + (f" LEFT JOIN {traits} AS p ON p.person_id = u.person_id" if traits is not None else "")


def aggregate_sql(query: FunnelQuery, params: SqlParams) -> str:
    """Rows of (series (value, other, missing), step, count, mean µs, median µs, histogram counts, converted
    sample, dropped sample); step len(steps) holds the whole-funnel times of those who completed it."""
    n = len(query.steps)
    bounds = params.bind(list(query.bounds_us), "Array(Int64)")
    buckets = len(query.bounds_us) + 1
    long_rows = (
        f"SELECT person_id, bd, k, K, h FROM ({units_sql(query, params)}) "
        f"ARRAY JOIN arrayConcat(range(toUInt64(least(K + 2, {n}))), if(K = {n - 1}, [{n}], [])) AS k"
    )
    long_rows = (
        f"SELECT person_id, bd, k, k <= K OR k = {n} AS reached, (k <= K OR k = {n}) AND k >= 1 AS timed, "
        f"multiIf(k = {n}, h[{n}] - h[1], k >= 1 AND k <= K, h[k + 1] - h[k], 0) AS dt FROM ({long_rows})"
    )
    long_rows = f"SELECT *, if(timed, arrayCount(b -> dt >= b, {bounds}), -1) AS bucket FROM ({long_rows})"
    long_rows = (
        f"SELECT *, arrayMap(i -> toUInt64(i = bucket), range({buckets})) AS onehot FROM ({long_rows})"
    )
    # The person samples only when asked for: their states took 2.6 % of the bench's funnel at 10M events.
    if query.sample_size:
        size = params.bind(query.sample_size, "UInt32")
        sample_states = (
            f", groupArraySortedIfState({size})(person_id, reached) AS converted, "
            f"groupArraySortedIfState({size})(person_id, NOT reached) AS dropped"
        )
        samples = f"groupArraySortedIfMerge({size})(converted), groupArraySortedIfMerge({size})(dropped)"
    else:
        sample_states, samples = "", "CAST([], 'Array(String)'), CAST([], 'Array(String)')"
    states = (
        f"SELECT bd, k, countIf(k = 0) AS entered, countIfState(reached) AS c, "
        f"avgIfState(toFloat64(dt), timed) AS mean, quantileExactInclusiveIfState(0.5)(dt, timed) AS median, "
        f"sumForEachState(onehot) AS hist{sample_states} "
        f"FROM ({long_rows}) GROUP BY bd, k"
    )
    limit = query.breakdown.kept_series() if query.breakdown.dimension is not BreakdownDimension.NONE else 1
    return (
        f"SELECT series, k, countIfMerge(c), avgIfMerge(mean), quantileExactInclusiveIfMerge(0.5)(median), "
        f"sumForEachMerge(hist), {samples} "
        f"FROM {ranked_series(f'({states})', 'entered', limit, params)} GROUP BY series, k ORDER BY series, k"
    )


def persons_sql(query: FunnelQuery, page: PersonsPage, top: list[tuple[str, bool]], params: SqlParams) -> str:
    """Person ids of `page`, ascending; `top` is the breakdown's kept values when `page` asks for `other`."""
    conditions = [f"K >= {page.step}"] if page.outcome is Outcome.CONVERTED else [f"K = {page.step - 1}"]
    if page.series is not None and page.series.other:
        conditions.append(f"NOT has({params.bind(top, f'Array({_VALUE_TYPE})')}, bd)")
    elif page.series is not None:
        wanted = params.bind((page.series.value, page.series.missing), _VALUE_TYPE)
        conditions.append(f"bd = {wanted}")
    if page.after:
        conditions.append(f"person_id > {params.bind(page.after, 'String')}")
    return (
        f"SELECT DISTINCT person_id FROM ({units_sql(query, params)}) "
        f"WHERE {' AND '.join(conditions)} ORDER BY person_id LIMIT {params.bind(page.limit, 'UInt32')}"
    )


def top_values_sql(query: FunnelQuery, params: SqlParams) -> str:
    """The breakdown's kept values, as the ranking of `aggregate_sql` keeps them."""
    return (
        f"SELECT bd FROM ({units_sql(query, params)}) GROUP BY bd "
        f"ORDER BY count() DESC, bd LIMIT {params.bind(query.breakdown.kept_series(), 'UInt32')}"
    )


def trend_sql(query: FunnelQuery, params: SqlParams) -> str:
    """Rows of (breakdown (value, missing), the local date the period begins on, furthest step, units): the
    units per period of `query.trend` in which they started an attempt."""
    return f"SELECT bd, pd, K, count() FROM ({units_sql(query, params, by_period=True)}) GROUP BY bd, pd, K"
