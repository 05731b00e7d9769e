"""The one ClickHouse statement behind a path analysis (see paths.py for the semantics).

Levels, innermost first:
1. steps: the tenant's track/page/screen events in the range, read as their current person, with their
   label (default or `node_property`, then the cleaning rules), anchor flags and breakdown raw value;
2. per person, groupArray of (time, event id, label, channel, start?, end?, breakdown) sorted by time then
   event id, arraySplit where two consecutive steps are more than the session gap apart, arrayJoin: one row
   per session;
3. per session, the path: arraySlice from the start anchor, to the end anchor, repeats collapsed, depth;
4. facts: each path fans out (arrayJoin) into one `series` fact, one `path` fact (its steps), one `node`
   fact per position (flagged when the path ends there) and one `edge` fact per consecutive pair (with the
   gap between the two steps, flagged when the target's label is one the path has already been to: a loop);
5. facts grouped by series value, kind, position and key; with a breakdown, values beyond the limit are
   renamed `other` and regrouped (persons merged from uniqExact states, so they are exact);
6. window functions give every edge its source and target node's counts, number the top paths and the
   edges (after `min_edge_count` and the page cursor), and count each series' edges;
7. one row per series: totals, top paths, the edges of the page.

ListPathPersons reuses levels 1 to 3 (the paths, each with its person) and ranks the breakdown values as
level 5 does (by path count, ties by value), so a node's persons are those of the node QueryPaths counted.
"""

from __future__ import annotations

from wayline_journeys.analytics import BreakdownDimension, EventMatcher
from wayline_journeys.paths import STEP_TYPES, EdgeCursor, PathsQuery, PathStep, PersonsPage, SeriesKey
from wayline_journeys.store.breakdown import (
    event_breakdown_raw,
    json_text,
    person_breakdown,
    ranked_series,
    series_of_raw,
)
from wayline_journeys.store.matching import event_property_raw, matcher_sql, population_sql
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import EVENT_ID_ORDER, SqlParams

__all__ = ["KIND_EDGE", "KIND_NODE", "KIND_PATH", "KIND_SERIES", "path_persons_sql", "paths_sql"]

KIND_PATH, KIND_NODE, KIND_EDGE, KIND_SERIES = 0, 1, 2, 3

# A page's path when it has one (the relation's `page_path`, `context.page.path` kept at write time), else
# the event's name.
_DEFAULT_LABEL = "if(type = 'page' AND page_path != '', page_path, name)"
_KEY = "Array(Tuple(String, String))"
_DATETIME = "DateTime64(6, 'UTC')"


def _label(query: PathsQuery, params: SqlParams) -> str:
    label = _DEFAULT_LABEL
    if query.node_property:
        raw = event_property_raw(query.node_property, params)
        label = f"if(JSONType({raw}) = 'Null', {label}, {json_text(raw)})"
    label = f"if(({label}) = '', type, {label})"
    for rule in query.cleaning_rules:
        label = (
            f"replaceRegexpAll({label}, {params.bind(rule.regex, 'String')}, "
            f"{params.bind(rule.replacement, 'String')})"
        )
    return label


def _steps(query: PathsQuery, params: SqlParams) -> str:
    kinds = [f"type IN {params.bind(list(STEP_TYPES), 'Array(String)')}"]
    if query.channels:
        kinds.append(f"channel IN {params.bind(list(query.channels), 'Array(String)')}")
    if query.exclude_event_names:
        kinds.append(f"name NOT IN {params.bind(list(query.exclude_event_names), 'Array(String)')}")
    stored = []
    if query.time_range.start is not None:
        stored.append(f"timestamp >= {params.bind(query.time_range.start, _DATETIME)}")
    if query.time_range.end is not None:
        stored.append(f"timestamp < {params.bind(query.time_range.end, _DATETIME)}")
    relation = current_events(
        params,
        where=" AND ".join(f"({c})" for c in stored) or "true",
        kinds=" AND ".join(f"({c})" for c in kinds),
    )

    def flag(matcher: EventMatcher | None) -> str:
        return f"toUInt8({matcher_sql(matcher, params)})" if matcher is not None else "toUInt8(0)"

    bd = series_of_raw(event_breakdown_raw(query.breakdown, params))
    return (
        f"SELECT person_id, tuple(toUnixTimestamp64Micro(timestamp), {EVENT_ID_ORDER}, "
        f"{_label(query, params)}, "
        f"toString(channel), {flag(query.start_event)}, {flag(query.end_event)}, {bd}) AS step "
        f"FROM {relation} WHERE {population_sql(query.population, params)}"
    )


def _sessions(query: PathsQuery, params: SqlParams) -> str:
    gap = params.bind(int(query.session_gap.total_seconds() * 1_000_000), "Int64")
    return (
        "SELECT person_id, arrayJoin(arraySplit((e, previous) -> e.1 - previous > "
        f"{gap}, steps, arrayPushFront(arrayPopBack(arrayMap(e -> e.1, steps)), toInt64(0)))) AS session "
        "FROM (SELECT person_id, arraySort(e -> (e.1, e.2), groupArray(step)) AS steps "
        f"FROM ({_steps(query, params)}) GROUP BY person_id)"
    )


def _paths(query: PathsQuery, params: SqlParams) -> str:
    """One row per path: person_id, path (the steps' tuples), bd (its breakdown value and missing flag)."""
    start = "arrayFirstIndex(e -> e.5 = 1, session)" if query.start_event is not None else "1"
    if query.end_event is None:
        end, anchored = "1", "arraySlice(session, s)"
    elif query.start_event is not None:
        end = "arrayFirstIndex(e -> e.6 = 1, arrayPopFront(arraySlice(session, s)))"
        anchored = "arraySlice(session, s, k + 1)"
    else:
        end, anchored = "arrayFirstIndex(e -> e.6 = 1, session)", "arraySlice(session, 1, k)"
    collapsed = (
        "arrayFilter((e, i) -> i = 1 OR (e.3, e.4) != (anchored[i - 1].3, anchored[i - 1].4), anchored, "
        "arrayEnumerate(anchored))"
        if query.collapse_repeats
        else "anchored"
    )
    depth = params.bind(query.depth, "Int64")
    cut = (
        f"arraySlice(collapsed, greatest(1, toInt64(length(collapsed)) - {depth} + 1))"
        if query.end_event is not None and query.start_event is None
        else f"arraySlice(collapsed, 1, {depth})"
    )
    rows = (
        f"SELECT person_id, {start} AS s, {end} AS k, {anchored} AS anchored, {collapsed} AS collapsed, "
        f"{cut} AS path, path[1].7 AS bd FROM ({_sessions(query, params)}) WHERE s > 0 AND k > 0"
    )
    joined = person_breakdown(query.breakdown, params, current_events(params))
    if joined is None:
        return f"SELECT person_id, path, bd FROM ({rows})"
    return (
        f"SELECT p.person_id AS person_id, p.path AS path, {series_of_raw('t.raw')} AS bd "
        f"FROM ({rows}) AS p LEFT JOIN {joined} AS t ON t.person_id = p.person_id"
    )


def _facts(query: PathsQuery, with_paths: bool) -> str:
    parts = [f"[tuple(toUInt8({KIND_SERIES}), toInt32(-1), CAST([], '{_KEY}'), toUInt8(0), toInt64(0))]"]
    if with_paths:
        parts.append(
            f"[tuple(toUInt8({KIND_PATH}), toInt32(-1), "
            f"CAST(arrayMap(e -> tuple(e.3, e.4), path), '{_KEY}'), "
            "toUInt8(0), toInt64(0))]"
        )
    parts.append(
        f"arrayMap((e, i) -> tuple(toUInt8({KIND_NODE}), toInt32(i - 1), [tuple(e.3, e.4)], "
        "toUInt8(i = length(path)), toInt64(0)), path, arrayEnumerate(path))"
    )
    parts.append(
        f"arrayMap((a, b, i) -> tuple(toUInt8({KIND_EDGE}), toInt32(i - 1), "
        "[tuple(a.3, a.4), tuple(b.3, b.4)], "
        "toUInt8(has(arrayMap(e -> e.3, arraySlice(path, 1, i)), b.3)), b.1 - a.1), "
        "arrayPopBack(path), arrayPopFront(path), arrayEnumerate(arrayPopBack(path)))"
    )
    return f"arrayJoin(arrayConcat({', '.join(parts)}))"


def _grouped(query: PathsQuery, params: SqlParams, with_paths: bool) -> str:
    """Facts grouped per (series, kind, pos, key) with cnt, persons, flags (a node's drop-offs, an edge's
    loops), gap_sum."""
    facts = (
        f"SELECT person_id, bd, f.1 AS kind, f.2 AS pos, f.3 AS key, f.4 AS flag, f.5 AS gap "
        f"FROM (SELECT person_id, bd, {_facts(query, with_paths)} AS f FROM ({_paths(query, params)}))"
    )
    persons = f"kind IN ({KIND_PATH}, {KIND_SERIES})"
    if query.breakdown.dimension is BreakdownDimension.NONE:
        return (
            "SELECT tuple('', false, false) AS series, kind, pos, key, count() AS cnt, "
            f"uniqExactIf(person_id, {persons}) AS persons, sum(flag) AS flags, sum(gap) AS gap_sum "
            f"FROM ({facts}) GROUP BY kind, pos, key"
        )
    by_value = (
        "(SELECT bd, kind, pos, key, count() AS cnt, "
        f"uniqExactStateIf(person_id, {persons}) AS persons_state, sum(flag) AS flags, sum(gap) AS gap_sum "
        f"FROM ({facts}) GROUP BY bd, kind, pos, key)"
    )
    ranked = ranked_series(
        by_value, f"if(kind = {KIND_SERIES}, cnt, 0)", query.breakdown.kept_series(), params
    )
    return (
        "SELECT series, kind, pos, key, sum(cnt) AS cnt, uniqExactMerge(persons_state) AS persons, "
        f"sum(flags) AS flags, sum(gap_sum) AS gap_sum FROM {ranked} GROUP BY series, kind, pos, key"
    )


def _after(cursor: EdgeCursor | None, params: SqlParams) -> str:
    if cursor is None:
        return "true"
    mine = "(-toInt64(cnt), pos, key[1].1, key[1].2, key[2].1, key[2].2)"
    theirs = (
        f"(toInt64({params.bind(-cursor.count, 'Int64')}), toInt32({params.bind(cursor.position, 'Int32')}), "
        + ", ".join(
            params.bind(v, "String")
            for v in (cursor.source_label, cursor.source_channel, cursor.target_label, cursor.target_channel)
        )
        + ")"
    )
    return f"{mine} > {theirs}"


def paths_sql(
    query: PathsQuery,
    params: SqlParams,
    *,
    edge_limit: int,
    with_paths: bool = True,
    after: EdgeCursor | None = None,
    series: SeriesKey | None = None,
) -> str:
    """One row per series: series (value, other, missing), path_count, person_count, top_paths [(steps, count,
    persons)], edges [(pos, [source, target], count, gap_sum, source count, source drops, target count,
    target drops, loops)] (the first `edge_limit` after `after`), edge_count. With `series`, only that
    series."""
    grouped = _grouped(query, params, with_paths)
    minimum = params.bind(query.min_edge_count, "UInt64")
    windowed = (
        "SELECT *, "
        f"countIf(kind = {KIND_EDGE} AND cnt >= {minimum}) OVER (PARTITION BY series) AS edge_total, "
        f"maxIf(cnt, kind = {KIND_NODE}) OVER source_node AS source_count, "
        f"maxIf(flags, kind = {KIND_NODE}) OVER source_node AS source_drops, "
        f"maxIf(cnt, kind = {KIND_NODE}) OVER target_node AS target_count, "
        f"maxIf(flags, kind = {KIND_NODE}) OVER target_node AS target_drops "
        f"FROM ({grouped}) WINDOW source_node AS (PARTITION BY series, pos, key[1]), "
        f"target_node AS (PARTITION BY series, if(kind = {KIND_EDGE}, pos + 1, pos), "
        f"if(kind = {KIND_EDGE}, key[2], key[1]))"
    )
    kept = (
        "SELECT *, row_number() OVER (PARTITION BY series, kind ORDER BY cnt DESC, pos, key) AS rn "
        f"FROM ({windowed}) WHERE kind IN ({KIND_PATH}, {KIND_SERIES}) "
        f"OR (kind = {KIND_EDGE} AND cnt >= {minimum} AND {_after(after, params)})"
    )
    only = ""
    if series is not None:
        only = (
            f"WHERE series = tuple({params.bind(series.value, 'String')}, "
            f"{params.bind(series.other, 'Bool')}, "
            f"{params.bind(series.missing, 'Bool')}) "
        )
    return (
        f"SELECT series, sumIf(cnt, kind = {KIND_SERIES}) AS path_count, "
        f"maxIf(persons, kind = {KIND_SERIES}) AS person_count, "
        f"groupArrayIf(tuple(key, cnt, persons), kind = {KIND_PATH} AND rn <= "
        f"{params.bind(query.top_paths_limit, 'UInt64')}) AS top_paths, "
        "groupArrayIf(tuple(pos, key, cnt, gap_sum, source_count, source_drops, target_count, "
        "target_drops, flags), "
        f"kind = {KIND_EDGE} AND rn <= {params.bind(edge_limit, 'UInt64')}) AS edges, "
        f"max(edge_total) AS edge_count FROM ({kept}) {only}GROUP BY series"
    )


def _step_at(index: int, step: PathStep, params: SqlParams) -> str:
    """The path's step at the one-based `index` is `step`."""
    return (
        f"length(path) >= {params.bind(index, 'UInt32')} "
        f"AND path[{params.bind(index, 'UInt32')}].3 = {params.bind(step.label, 'String')} "
        f"AND path[{params.bind(index, 'UInt32')}].4 = {params.bind(step.channel, 'String')}"
    )


def path_persons_sql(query: PathsQuery, page: PersonsPage, params: SqlParams) -> str:
    """The person ids of `page`, ascending and distinct: persons with a path through the node (and edge)."""
    conditions = [_step_at(page.position + 1, page.step, params)]
    if page.target is not None:
        conditions.append(_step_at(page.position + 2, page.target, params))
    source = f"({_paths(query, params)})"
    if page.series is not None and query.breakdown.dimension is not BreakdownDimension.NONE:
        source = ranked_series(source, "1", query.breakdown.kept_series(), params)
        wanted = page.series
        conditions.append(
            f"series = tuple({params.bind(wanted.value, 'String')}, {params.bind(wanted.other, 'Bool')}, "
            f"{params.bind(wanted.missing, 'Bool')})"
        )
    if page.after:
        conditions.append(f"person_id > {params.bind(page.after, 'String')}")
    return (
        f"SELECT DISTINCT person_id FROM {source} WHERE {' AND '.join(f'({c})' for c in conditions)} "
        f"ORDER BY person_id LIMIT {params.bind(page.limit, 'UInt32')}"
    )
