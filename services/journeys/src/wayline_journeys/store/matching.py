"""EventMatcher, PropertyFilter and Population compiled to parameterised ClickHouse predicates.

Every property is first turned into its raw JSON text ('' when absent), whatever it comes from (a key of the
`properties` or `context` JSON, an event column, or a person trait), so that one comparison routine serves all
of them and "values compare as JSON values" holds everywhere: numbers numerically, strings exactly, booleans
and null as themselves (the type read from the text's first character: `json_is_number` and its siblings).
Negated operators are the negation of their positive form, so a missing property matches them, as the
contract says.

The text operators (CONTAINS, NOT_CONTAINS, MATCHES_REGEX) read the contract's text of a value, which is this
raw text (ADR 77): a string's own characters (JSONExtractString), and for a number or a boolean the raw text
itself, which ClickHouse prints anew from the value it parsed (shortest round-trip digits in ECMAScript's
layout: `2`, `1e21`, `1e-7`, `-0`), whatever the stored JSON wrote (`2.0`, `1e+21`, `1e-07`, `-0.0`). Null,
an object and a list have no text (`json_has_text`), so the positive operators never hold on them. The
values looked for are written the same way in Python (`wayline.common.json_text`, which decision and the
orchestrator read events with, held to this SQL by the tests).

The predicates refer to the columns of the events relation (`store/relation.py`): name, type, channel,
properties, context, text, group_id, sentiment_score, revenue, person_id (the current person), timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from wayline.common.filter_times import STORED_TIME_PATTERN, rfc3339_time
from wayline.common.json_text import text_of
from wayline.common.property_paths import EVENT_FIELDS
from wayline_journeys.analytics import (
    EventMatcher,
    FilterOperator,
    JsonValue,
    Population,
    PropertyFilter,
)
from wayline_journeys.store.segments import segment_members_sql
from wayline_journeys.store.sql import EVENT_ORDER, SqlParams

__all__ = [
    "UnsupportedFilter",
    "event_number_sql",
    "event_property_raw",
    "json_has_text",
    "json_is_bool",
    "json_is_null",
    "json_is_number",
    "json_is_string",
    "latest_trait_sql",
    "matcher_kinds_sql",
    "matcher_sql",
    "person_filters_sql",
    "population_sql",
    "revenue_in_sql",
    "value_condition",
]

_DATETIME = "DateTime64(6, 'UTC')"
_ORDERING = {
    FilterOperator.GREATER_THAN: ">",
    FilterOperator.GREATER_THAN_OR_EQUAL: ">=",
    FilterOperator.LESS_THAN: "<",
    FilterOperator.LESS_THAN_OR_EQUAL: "<=",
}


class UnsupportedFilter(ValueError):
    """A filter the store cannot evaluate (converters validate requests first, so this means a defect)."""


# The context's Struct fields (EventContext): below them a path names the sender's own keys, which the
# stored JSON keeps as sent, where it names the context's fields in lowerCamelCase.
CONTEXT_STRUCTS = frozenset({"extra", "traits"})


def _camel(key: str) -> str:
    # The context is stored as protobuf JSON, which names fields in lowerCamelCase; filters use proto names.
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# A proto field name as buf lint holds ours to (lower_snake_case, each word starting with a letter): the names
# `_camel` maps one to one onto JSON names. Any other key (`displayWidth`, `display__width`, `device_`) names
# no field, though its lowerCamelCase may be a stored key, so it reads nothing (analytics.proto; ADR 79).
PROTO_FIELD_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*")


def _context_keys(keys: list[str]) -> list[str] | None:
    """The stored keys of a path below `context.`: proto field names camel-cased, a Struct's keys verbatim;
    None when a key outside the Structs is no proto field name."""
    first, rest = keys[0], keys[1:]
    named = [first] if first in CONTEXT_STRUCTS else [first, *rest]
    if not all(PROTO_FIELD_NAME.fullmatch(k) for k in named):
        return None
    return [_camel(first), *(rest if first in CONTEXT_STRUCTS else [_camel(k) for k in rest])]


# The JSON type of a raw JSON text, from its first character. JSONType would parse the text again and is wrong
# for a number of 2^64 or more: JSONExtractRaw writes 1e+20 as 100000000000000000000, which JSONType calls a
# String. The raw texts here are written by ClickHouse (JSONExtractRaw, toJSONString), canonical and without
# leading blanks, so the first character tells the type; and it costs less than parsing.
def json_is_null(raw: str) -> str:
    """The raw JSON text is absent ('') or null."""
    return f"({raw} IN ('', 'null'))"


def json_is_string(raw: str) -> str:
    return f"startsWith({raw}, '\"')"


def json_is_number(raw: str) -> str:
    return f"match({raw}, '^-?[0-9]')"


def json_is_bool(raw: str) -> str:
    return f"({raw} IN ('true', 'false'))"


def json_has_text(raw: str) -> str:
    """The raw JSON text is a string, a number or a boolean: what the text operators read (not absent, null,
    an object or a list)."""
    return f"NOT ({json_is_null(raw)} OR startsWith({raw}, '{{') OR startsWith({raw}, '['))"


def event_property_raw(path: str, params: SqlParams) -> str:
    """The raw JSON text of an event property path ('' when absent)."""
    if path in EVENT_FIELDS:
        if EVENT_FIELDS[path]:
            return f"if(isNull({path}), '', toJSONString(toFloat64(assumeNotNull({path}))))"
        return f"toJSONString({path})"
    column, _, rest = path.partition(".")
    if column not in ("properties", "context") or not rest:
        raise UnsupportedFilter(f"unknown property path {path!r}")
    keys: list[str] | None = rest.split(".")
    if column == "context":
        keys = _context_keys(rest.split("."))
    if keys is None:
        return "''"  # a path that names no field of the context: absent on every event
    return f"JSONExtractRaw({column}, {', '.join(params.bind(k, 'String') for k in keys)})"


def event_number_sql(path: str, params: SqlParams) -> str:
    """A Nullable(Float64) of an event property path: the number where the value is a JSON number, else NULL
    (absent, null, a string). `revenue` and `sentiment_score` are read from their columns."""
    if EVENT_FIELDS.get(path, False):
        return f"CAST(toFloat64({path}), 'Nullable(Float64)')"  # a Nullable column named in EVENT_FIELDS
    raw = event_property_raw(path, params)
    return f"if({json_is_number(raw)}, toFloat64OrNull({raw}), CAST(NULL, 'Nullable(Float64)'))"


def revenue_in_sql(currency: str, params: SqlParams) -> str:
    """An event row has revenue in `currency` (amounts of two currencies are never added up)."""
    return f"revenue IS NOT NULL AND revenue_currency = {params.bind(currency, 'String')}"


def value_condition(
    raw: str, operator: FilterOperator, values: tuple[JsonValue, ...], params: SqlParams
) -> str:
    """The predicate that `operator` holds on the raw JSON text `raw` against `values`."""
    positive = _positive_condition(raw, operator.positive, values, params)
    return f"NOT ({positive})" if operator.negated else positive


def _positive_condition(
    raw: str, operator: FilterOperator, values: tuple[JsonValue, ...], params: SqlParams
) -> str:
    if operator is FilterOperator.IS_SET:
        return f"NOT {json_is_null(raw)}"
    if operator is FilterOperator.EQUALS:
        return _equals_any(raw, values, params)
    if operator is FilterOperator.CONTAINS:
        return _on_text(raw, lambda text: _contains_any(text, _texts(values), params))
    if operator is FilterOperator.MATCHES_REGEX:
        pattern = params.bind(str(values[0]), "String")
        return _on_text(raw, lambda text: f"match({text}, {pattern})")
    if operator in _ORDERING:
        return _ordering(raw, _ORDERING[operator], values[0], params)
    raise UnsupportedFilter(f"operator {operator} is not supported")


def _contains_any(text: str, needles: list[str], params: SqlParams) -> str:
    """The text `text` contains one of `needles`. Several are one arrayExists over a bound array rather than
    ORed position() calls, which ClickHouse plans term by term and runs slower: on a million rows in chDB,
    30 needles 0.8-1.1 s against 2.9-3.1 s, 200 needles 5.1-5.6 s against 19-22 s (and 2,000 took seconds to
    plan for no row at all)."""
    if not needles:
        return "false"
    if len(needles) == 1:
        return f"position({text}, {params.bind(needles[0], 'String')}) > 0"
    listed = params.bind(list(dict.fromkeys(needles)), "Array(String)")
    return f"arrayExists(needle -> position({text}, needle) > 0, {listed})"


def _on_text(raw: str, test: Callable[[str], str]) -> str:
    """`test` on the text of the value whose raw JSON text is `raw`; false when it has none. A string (the
    common case) is told apart first and then tested at once: on 3M rows in chDB this costs what the test
    alone did before (ADR 77), where a guard in front of every row cost strings 2-4%."""
    string, other = test(f"JSONExtractString({raw})"), test(raw)
    return f"multiIf({json_is_string(raw)}, ({string}), {json_has_text(raw)}, ({other}), false)"


def _texts(values: tuple[JsonValue, ...]) -> list[str]:
    """The texts a CONTAINS looks for: each value's, as ClickHouse prints a property's (a filter's values are
    scalars, so each has one)."""
    return [t for v in values if (t := text_of(v)) is not None]


def _equals_any(raw: str, values: tuple[JsonValue, ...], params: SqlParams) -> str:
    """The value equals one of `values`. Several strings (or numbers) are one IN against a bound array, which
    ClickHouse plans as one set: 2,000 ORed comparisons (a funnel step's list of SKUs, the filters' budget)
    took chDB 16 s to plan for a store of three events. A number is compared with 0 added, both sides: IN
    compares a Float64's bits, which tell -0 from 0 where `=` does not."""
    strings = list(dict.fromkeys(v for v in values if isinstance(v, str)))
    numbers = list(
        dict.fromkeys(
            float(v) + 0.0 for v in values if isinstance(v, int | float) and not isinstance(v, bool)
        )
    )
    terms = [
        _equals(raw, v, params) for v in dict.fromkeys(v for v in values if v is None or isinstance(v, bool))
    ]
    if len(strings) == 1:
        terms.append(_equals(raw, strings[0], params))
    elif strings:
        listed = params.bind(strings, "Array(String)")
        terms.append(f"({json_is_string(raw)} AND JSONExtractString({raw}) IN {listed})")
    if len(numbers) == 1:
        terms.append(_equals(raw, numbers[0], params))
    elif numbers:
        listed = params.bind(numbers, "Array(Float64)")
        terms.append(f"({json_is_number(raw)} AND (JSONExtractFloat({raw}) + 0) IN {listed})")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def _equals(raw: str, value: JsonValue, params: SqlParams) -> str:
    if value is None:
        return f"({raw} = 'null')"
    if isinstance(value, bool):
        return f"({raw} = {params.bind('true' if value else 'false', 'String')})"
    if isinstance(value, float | int):
        return f"({json_is_number(raw)} AND JSONExtractFloat({raw}) = {params.bind(float(value), 'Float64')})"
    return f"({json_is_string(raw)} AND JSONExtractString({raw}) = {params.bind(value, 'String')})"


def _ordering(raw: str, comparison: str, value: JsonValue, params: SqlParams) -> str:
    if isinstance(value, str):
        moment = rfc3339_time(value)
        if moment is None:
            raise UnsupportedFilter(f"{value!r} is neither a number nor an RFC 3339 time")
        # Only a string of STORED_TIME_PATTERN's shape is a time: the best-effort parser alone would read "3",
        # "2026" or "1700000000" as times too. It reads the shape in capitals only (a lowercase t or z is RFC
        # 3339 too), a time without offset or a date alone in UTC; an impossible date (February 30) parses to
        # NULL, which compares as nothing.
        text = f"JSONExtractString({raw})"
        return (
            f"({json_is_string(raw)} AND match({text}, {params.bind(STORED_TIME_PATTERN, 'String')}) AND "
            f"parseDateTime64BestEffortOrNull(upper({text}), 6, 'UTC') "
            f"{comparison} {params.bind(moment, _DATETIME)})"
        )
    if isinstance(value, bool) or value is None:
        raise UnsupportedFilter("ordering operators take a number or an RFC 3339 time")
    return (
        f"({json_is_number(raw)} AND JSONExtractFloat({raw}) {comparison} "
        f"{params.bind(float(value), 'Float64')})"
    )


def matcher_sql(matcher: EventMatcher, params: SqlParams, tenant_param: str = "{tenant:String}") -> str:
    """The predicate selecting the events `matcher` matches ('true' for an empty matcher). A `person.` filter
    in a matcher holds when the event's current person passes it (see `person_filters_sql`)."""
    conditions = _kinds(matcher, params)
    event_filters = [f for f in matcher.filters if not f.on_person]
    for f in event_filters:
        direct = _string_column_condition(f, params)
        conditions.append(
            direct
            if direct is not None
            else value_condition(event_property_raw(f.path, params), f.operator, f.values, params)
        )
    person_filters = tuple(f for f in matcher.filters if f.on_person)
    if person_filters:
        conditions.append(person_filters_sql(person_filters, params, tenant_param))
    return " AND ".join(f"({c})" for c in conditions) if conditions else "true"


def matcher_kinds_sql(matcher: EventMatcher, params: SqlParams) -> str:
    """The part of `matcher_sql` on the name, type and channel alone ('true' when it has none): a superset of
    the events `matcher` matches, on the columns that every stored copy of an event shares (relation.py)."""
    conditions = _kinds(matcher, params)
    return " AND ".join(f"({c})" for c in conditions) if conditions else "true"


def _kinds(matcher: EventMatcher, params: SqlParams) -> list[str]:
    """A matcher's conditions on the event's name, type and channel."""
    conditions: list[str] = []
    if matcher.name:
        conditions.append(f"name = {params.bind(matcher.name, 'String')}")
    if matcher.type:
        conditions.append(f"type = {params.bind(matcher.type, 'String')}")
    if matcher.channels:
        conditions.append(f"channel IN {params.bind(list(matcher.channels), 'Array(String)')}")
    return conditions


def _string_column_condition(f: PropertyFilter, params: SqlParams) -> str | None:
    """The common filters on a string event column (`name`, `channel`, ...) compared on the column itself,
    with the meaning `value_condition` gives them over its JSON text (a string column is always set, and
    never equals a number, a boolean or null), but without turning every row into JSON; None for the rest."""
    if f.path not in EVENT_FIELDS or EVENT_FIELDS[f.path]:
        return None
    positive = f.operator.positive
    if positive is FilterOperator.IS_SET:
        found = "true"
    elif positive is FilterOperator.EQUALS:
        strings = [v for v in f.values if isinstance(v, str)]
        found = f"{f.path} IN {params.bind(strings, 'Array(String)')}" if strings else "false"
    elif positive is FilterOperator.CONTAINS:
        found = _contains_any(f.path, _texts(f.values), params)
    elif positive is FilterOperator.MATCHES_REGEX:
        found = f"match({f.path}, {params.bind(str(f.values[0]), 'String')})"
    else:
        return None
    return f"NOT ({found or 'false'})" if f.operator.negated else f"({found or 'false'})"


def latest_trait_sql(key: str, relation: str) -> str:
    """A query of (person_id, raw): the raw JSON of the trait `key` (a bound String) in the latest of each
    person's identify events in `relation` that has it. A person's properties are the latest value of each
    trait in their identify events (EventType IDENTIFY's contract), read through the current person like every
    other event; "latest" is EVENT_ORDER, the order of every other read of a trait."""
    return (
        f"SELECT person_id, argMax(JSONExtractRaw(properties, {key}), {EVENT_ORDER}) AS raw "
        f"FROM {relation} WHERE type = 'identify' AND JSONHas(properties, {key}) GROUP BY person_id"
    )


def person_filters_sql(
    filters: tuple[PropertyFilter, ...],
    params: SqlParams,
    tenant_param: str = "{tenant:String}",
    *,
    where: str = "true",
) -> str:
    """The predicate on `person_id` that the person passes every `person.` filter. A positive filter selects
    persons whose latest trait value passes; a negated one excludes persons whose latest value passes its
    positive form, so persons without the trait pass it. `where` restricts the identify events read (stored
    columns, as `current_events` takes it), e.g. to those received before a data cut-off.

    The identify events are read once for all the filters: each distinct trait is a column of one grouped
    query (its latest value, and whether the person has it). A subquery per filter cost about 90 ms each
    in chDB, mostly planning, so 20 filters took 1.9 s on an empty tenant (ADR 80)."""
    from wayline_journeys.store.relation import current_events  # the relation module imports this one

    if not filters:
        return "true"
    columns: dict[str, int] = {}
    for f in filters:
        key = f.path.removeprefix("person.")
        if not key or "." in key:
            raise UnsupportedFilter(f"person property paths are person.<trait>, got {f.path!r}")
        columns.setdefault(key, len(columns))
    traits = ", ".join(_latest_trait_columns(params.bind(key, "String"), n) for key, n in columns.items())
    relation = current_events(params, tenant_param, where)
    latest = f"SELECT person_id, {traits} FROM {relation} WHERE type = 'identify' GROUP BY person_id"
    passing: list[str] = []
    failing: list[str] = []
    for f in filters:
        n = columns[f.path.removeprefix("person.")]
        passes = f"(has_{n} AND {_positive_condition(f'raw_{n}', f.operator.positive, f.values, params)})"
        (failing if f.operator.negated else passing).append(passes)
    if not passing:  # persons with no identify event pass every negated filter
        return f"person_id NOT IN (SELECT person_id FROM ({latest}) WHERE {' OR '.join(failing)})"
    kept = " AND ".join(passing) + (f" AND NOT ({' OR '.join(failing)})" if failing else "")
    return f"person_id IN (SELECT person_id FROM ({latest}) WHERE {kept})"


def _latest_trait_columns(key: str, n: int) -> str:
    """`raw_<n>`, the raw JSON of the trait `key` (a bound String) in the latest identify event that has it
    (as `latest_trait_sql`), and `has_<n>`, whether any has it."""
    has = f"JSONHas(properties, {key})"
    return (
        f"argMaxIf(JSONExtractRaw(properties, {key}), {EVENT_ORDER}, {has}) AS raw_{n}, "
        f"countIf({has}) > 0 AS has_{n}"
    )


def population_sql(
    population: Population, params: SqlParams, tenant_param: str = "{tenant:String}", *, where: str = "true"
) -> str:
    """The predicate on `person_id` selecting `population` ('true' for everyone): current members of every
    segment (`segments/{id}`, see store/segments.py; a name that is no live segment selects no one) who pass
    every person filter; `where` as in `person_filters_sql`."""
    members = [
        segment_members_sql(n.removeprefix("segments/"), params, tenant_param) for n in population.segments
    ]
    filters = person_filters_sql(population.person_filters, params, tenant_param, where=where)
    found = [*members, *([filters] if filters != "true" else [])]
    return " AND ".join(f"({c})" for c in found) if found else "true"
