"""EventMatcher and PropertyFilter (analytics.proto) evaluated on one event in Python, with the meaning the
store's SQL gives them (journeys' store/matching.py reads the same contract), compiled once into closures.

A property path reads an event's value: `properties.<key>[.<key>...]` and `context.<field>...` walk objects
(a key of something that is not an object is absent; `context` keys are looked up by their proto3 JSON
names, lowerCamelCase, as the store keeps the context, and the keys below `context.extra` and `context.traits`
as sent), and the event fields `name`, `type`, `channel`
(short lower-case names), `text` and `group_id` are strings that are always set, `sentiment_score` and
`revenue` numbers that may be absent. Values compare as JSON values: numbers numerically, strings
case-sensitively, booleans and null as themselves. The text operators (CONTAINS, NOT_CONTAINS,
MATCHES_REGEX) read a value "as text", the contract's text that journeys' store reads back
(`wayline.common.json_text`, ADR 77): a string itself, a number in ClickHouse's layout (`2`, `1e21`, `1e-7`,
`-0`), `true`, `false`; the values looked for are written the same way. A null or missing property, an
object and a list have no text: CONTAINS and MATCHES_REGEX never hold on them. Ordering operators compare
numbers with a number, and strings that read as times with an RFC 3339 time. A negated operator holds
wherever its positive form does not, so for a missing property too.

MATCHES_REGEX searches the value's text with RE2 (common.patterns), as the store's `match()` does: the same
engine, so the same syntax and meaning (its word, digit and space classes are ASCII), in time linear in the
value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from wayline.common.filter_times import stored_time
from wayline.common.json_text import text_of
from wayline.common.patterns import searcher
from wayline.common.property_paths import EVENT_FIELDS
from wayline_decision.features.json_values import MISSING, is_number
from wayline_decision.features.model import (
    EventMatcher,
    FilterOperator,
    JsonValue,
    ObservedEvent,
    PropertyFilter,
)

__all__ = [
    "Lookup",
    "Predicate",
    "compile_matcher",
    "compile_path",
    "moment_us",
]

Lookup = Callable[[ObservedEvent], Any]
"""Reads a path's value of an event: a JSON value, or MISSING."""
Predicate = Callable[[ObservedEvent], bool]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Logged once per pattern a restored spec holds that RE2 refuses (registered before specs were checked).
_REFUSED = "features.pattern_not_re2"


# The context's Struct fields (EventContext): below them a path names the sender's own keys, kept as sent,
# where it names the context's fields in lowerCamelCase (the journey store reads the same way).
CONTEXT_STRUCTS = frozenset({"extra", "traits"})


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# A proto field name as buf lint holds ours to (lower_snake_case, each word starting with a letter): the names
# `_camel` maps one to one onto JSON names. Any other key (`displayWidth`, `display__width`, `device_`) names
# no field, though its lowerCamelCase may be a stored key, so it reads nothing (analytics.proto; ADR 79).
PROTO_FIELD_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*")


def _context_keys(keys: list[str]) -> list[str] | None:
    """The keys of a path below `context.`: proto field names camel-cased, a Struct's keys verbatim; None
    when a key outside the Structs is no proto field name."""
    first, rest = keys[0], keys[1:]
    named = [first] if first in CONTEXT_STRUCTS else [first, *rest]
    if not all(PROTO_FIELD_NAME.fullmatch(k) for k in named):
        return None
    return [_camel(first), *(rest if first in CONTEXT_STRUCTS else [_camel(k) for k in rest])]


def _absent(event: ObservedEvent) -> Any:
    return MISSING


def compile_path(path: str) -> Lookup:
    """The reader of an event path (validated by the spec compiler)."""
    if path in EVENT_FIELDS:
        read = attrgetter(path)
        if EVENT_FIELDS[path]:
            return lambda e: MISSING if (v := read(e)) is None else v
        return read
    column, _, rest = path.partition(".")
    keys: list[str] | None = rest.split(".")
    if column == "context":
        keys = _context_keys(rest.split("."))
    if keys is None:
        return _absent  # a path that names no field of the context
    source = attrgetter(column)
    first, deeper = keys[0], keys[1:]

    def lookup(event: ObservedEvent) -> Any:
        found: Mapping[str, Any] = source(event)
        node = found.get(first, MISSING)
        for key in deeper:
            if not isinstance(node, dict):
                return MISSING
            node = node.get(key, MISSING)
        return node

    return lookup


def moment_us(text: str) -> int | None:
    """A time written as text, in epoch microseconds, as every reader of ordering filters reads it
    (wayline.common.filter_times.stored_time: a time without offset, or a date alone, is UTC); None when it
    writes none."""
    found = stored_time(text)
    return None if found is None else (found - _EPOCH) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


def _text(value: Any) -> str | None:
    """A property's text for the text operators: None when it has none (missing, null, object, list)."""
    return None if value is MISSING or value is None else text_of(value)


def _equals_any(values: tuple[JsonValue, ...]) -> Callable[[Any], bool]:
    """The value equals one of `values`, looked up by kind in a set: a step's list of 2,000 SKUs costs one
    lookup, not 2,000 comparisons, for every event observed (floats hash -0 and 0 alike, as they compare)."""
    nulls = any(w is None for w in values)
    booleans = frozenset(w for w in values if isinstance(w, bool))
    numbers = frozenset(float(w) for w in values if is_number(w))
    strings = frozenset(w for w in values if isinstance(w, str))

    def equals(v: Any) -> bool:
        if v is None:
            return nulls
        if isinstance(v, bool):
            return v in booleans
        if isinstance(v, str):
            return v in strings
        return is_number(v) and float(v) in numbers

    return equals


_COMPARE: dict[FilterOperator, Callable[[Any, Any], bool]] = {
    FilterOperator.GREATER_THAN: lambda a, b: a > b,
    FilterOperator.GREATER_THAN_OR_EQUAL: lambda a, b: a >= b,
    FilterOperator.LESS_THAN: lambda a, b: a < b,
    FilterOperator.LESS_THAN_OR_EQUAL: lambda a, b: a <= b,
}


def _positive(operator: FilterOperator, values: tuple[JsonValue, ...]) -> Callable[[Any], bool]:
    """The positive operator's test of a value (MISSING when absent)."""
    if operator is FilterOperator.IS_SET:
        return lambda v: v is not MISSING and v is not None
    if operator is FilterOperator.EQUALS:
        equals = _equals_any(values)
        return lambda v: v is not MISSING and equals(v)
    if operator is FilterOperator.CONTAINS:
        needles = [n for w in values if (n := text_of(w)) is not None]  # scalars: each has a text

        def contains(v: Any) -> bool:
            text = _text(v)
            return text is not None and any(n in text for n in needles)

        return contains
    if operator is FilterOperator.MATCHES_REGEX:
        search = searcher(str(values[0]), _REFUSED)  # RE2, compiled once per pattern

        def matches(v: Any) -> bool:
            text = _text(v)
            return text is not None and search(text)

        return matches
    compare, bound = _COMPARE[operator], values[0]
    if isinstance(bound, str):
        moment = moment_us(bound)
        if moment is None:  # a bound that is no time, in a spec stored before the compiler refused it
            return lambda v: False

        def later(v: Any) -> bool:
            found = moment_us(v) if isinstance(v, str) else None
            return found is not None and compare(found, moment)

        return later
    return lambda v: is_number(v) and compare(float(v), bound)


def _filter(f: PropertyFilter) -> Predicate:
    lookup, test = compile_path(f.path), _positive(f.operator.positive, f.values)
    if f.operator.negated:
        return lambda e: not test(lookup(e))
    return lambda e: test(lookup(e))


def _always(event: ObservedEvent) -> bool:
    return True


def compile_matcher(matcher: EventMatcher) -> Predicate:
    """The test of whether an event matches (every set field must)."""
    checks: list[Predicate] = []
    if matcher.name:
        name = matcher.name
        checks.append(lambda e: e.name == name)
    if matcher.type:
        kind = matcher.type
        checks.append(lambda e: e.type == kind)
    if matcher.channels:
        channels = frozenset(matcher.channels)
        checks.append(lambda e: e.channel in channels)
    checks += [_filter(f) for f in matcher.filters]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda e: all(check(e) for check in checks)
