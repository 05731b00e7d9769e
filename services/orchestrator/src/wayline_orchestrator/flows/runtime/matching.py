"""The contract's EventMatcher and PropertyFilter (analytics.proto) evaluated on one event of a person (an
`Occurrence`), in the proto3 JSON form the definitions are kept in.

A property path reads `properties.<key>[.<key>...]`, `context.<field>...` (proto field names, such as
`context.campaign.source`), the event fields `name`, `type` and `channel` (the short lower-case names, such
as `web`), `text` and `group_id` (strings, always set: '' when empty), `sentiment_score` and `revenue` (the
amount as a decimal number; both absent when the event has none), or `person.<trait>`: the latest value of
the trait in the person's identify events, which the journeys service holds (`Traits`, a PersonLookup's
`properties`). Values compare as JSON values: numbers numerically, strings case-sensitively; a negated
operator holds wherever its positive form does not, so for a missing property too (the same meaning as
journeys' SQL and decision's matcher, which another service's package may not share: each service reads
the contract). The text operators (CONTAINS, NOT_CONTAINS, MATCHES_REGEX) read the contract's text of a
value, the one journeys' store reads back (wayline.common.json_text, ADR 77): a string itself, a number in
ClickHouse's layout (`2`, `1e21`, `1e-7`, `-0`), `true`, `false`, and the values looked for the same way; a
null or missing property, an object and a list have no text, so CONTAINS and MATCHES_REGEX never hold on
them. MATCHES_REGEX searches the text with RE2 (wayline.common.patterns), as journeys' `match()` does.

A matcher's person filters are evaluated last, once its event-level parts (name, type, channels, filters on
the event) hold, with every trait they read asked in one call: an event that concerns no flow asks nothing
(`may_match` is the event-level part alone)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wayline.common.filter_times import stored_time
from wayline.common.json_text import text_of
from wayline.common.patterns import searcher
from wayline_orchestrator.flows.runtime.occurrence import EventFields, Occurrence

__all__ = [
    "MISSING",
    "Occurrence",
    "Traits",
    "filter_holds",
    "matches",
    "may_match",
    "person_filters_hold",
    "person_traits",
    "read_path",
]

MISSING: Any = object()

Traits = Callable[[Sequence[str]], Mapping[str, Any]]
"""The event's person's latest value of each trait asked that they have (a PersonLookup's `properties` for the
tenant and person); without one, a person has no traits (as `NoPersons` answers)."""

_PERSON = "person."
_EVENT_FIELDS = frozenset(EventFields._fields)  # text, group_id, sentiment_score, revenue


def read_path(event: Occurrence, path: str) -> Any:
    """The value a property path reads of the event itself, or MISSING (`person.` paths included: they read
    the person, see `filter_holds`)."""
    if path == "name":
        return event.name
    if path == "type":
        return event.type.removeprefix("EVENT_TYPE_").lower()
    if path == "channel":
        return event.channel.removeprefix("CHANNEL_").lower()
    if path in _EVENT_FIELDS:
        found = getattr(event.fields, path)
        return MISSING if found is None else found
    column, _, rest = path.partition(".")
    node: Any = {"properties": event.properties, "context": event.context}.get(column, MISSING)
    if node is MISSING or not rest:
        return MISSING
    for key in rest.split("."):
        if not isinstance(node, dict):
            return MISSING
        node = node.get(key, MISSING)
    return node


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(found: Any, wanted: Any) -> bool:
    if _number(wanted):
        return _number(found) and float(found) == float(wanted)
    return type(found) is type(wanted) and bool(found == wanted)


def _order(found: Any, bound: Any) -> tuple[Any, Any] | None:
    """(found, bound) comparable with each other: two numbers, or two times when the bound is a time."""
    if _number(found) and _number(bound):
        return float(found), float(bound)
    if isinstance(bound, str) and isinstance(found, str):
        moment, limit = stored_time(found), stored_time(bound)
        if moment is not None and limit is not None:
            return moment, limit
    return None


# Logged once per pattern a stored flow holds that RE2 refuses (saved before flows were checked with RE2).
_REFUSED = "orchestrator.flows.pattern_not_re2"

_POSITIVE = {
    "FILTER_OPERATOR_NOT_EQUALS": "FILTER_OPERATOR_EQUALS",
    "FILTER_OPERATOR_NOT_CONTAINS": "FILTER_OPERATOR_CONTAINS",
    "FILTER_OPERATOR_IS_NOT_SET": "FILTER_OPERATOR_IS_SET",
}


def _positive(operator: str, found: Any, values: list[Any]) -> bool:
    present = found is not MISSING and found is not None
    if operator == "FILTER_OPERATOR_IS_SET":
        return present
    if operator == "FILTER_OPERATOR_EQUALS":
        if type(found) is str:  # a string equals only an equal string: the list's own lookup, in C
            return found in values
        return found is not MISSING and any(_equal(found, w) for w in values)
    if not present:
        return False
    if operator == "FILTER_OPERATOR_CONTAINS":
        text = text_of(found)  # None for an object or a list
        return text is not None and any((n := text_of(w)) is not None and n in text for w in values)
    if operator == "FILTER_OPERATOR_MATCHES_REGEX":
        # RE2, compiled once per pattern; a stored pattern RE2 refuses holds for no value (common.patterns).
        text = text_of(found)
        return text is not None and bool(values) and searcher(str(values[0]), _REFUSED)(text)
    pair = _order(found, values[0] if values else None)
    if pair is None:
        return False
    a, b = pair
    return {
        "FILTER_OPERATOR_GREATER_THAN": bool(a > b),
        "FILTER_OPERATOR_GREATER_THAN_OR_EQUAL": bool(a >= b),
        "FILTER_OPERATOR_LESS_THAN": bool(a < b),
        "FILTER_OPERATOR_LESS_THAN_OR_EQUAL": bool(a <= b),
    }.get(operator, False)


def _trait(path: str) -> str | None:
    """The trait a `person.<trait>` path reads; None for a path on the event."""
    return path[len(_PERSON) :] if path.startswith(_PERSON) else None


def _compared(found: Any, property_filter: dict[str, Any]) -> bool:
    """Whether a PropertyFilter (its JSON form) holds for the value it read (MISSING: none)."""
    operator = property_filter.get("operator", "FILTER_OPERATOR_UNSPECIFIED")
    values = property_filter.get("values", [])
    if operator in _POSITIVE:
        return not _positive(_POSITIVE[operator], found, values)
    return _positive(operator, found, values)


def filter_holds(event: Occurrence, property_filter: dict[str, Any], traits: Traits | None = None) -> bool:
    """Whether a PropertyFilter (its JSON form) holds for the event; a `person.` path reads `traits`."""
    path = property_filter.get("property", "")
    trait = _trait(path)
    if trait is None:
        return _compared(read_path(event, path), property_filter)
    found = traits([trait]) if traits is not None else {}
    return _compared(found.get(trait, MISSING), property_filter)


def may_match(event: Occurrence, matcher: dict[str, Any] | None) -> bool:
    """Whether the event passes a matcher's event-level parts: its name, type, channels and filters on the
    event. A matcher without person filters then matches (`matches`); one with them may."""
    matcher = matcher or {}
    if matcher.get("event_name") and matcher["event_name"] != event.name:
        return False
    kind = matcher.get("event_type", "EVENT_TYPE_UNSPECIFIED")
    if kind not in {"EVENT_TYPE_UNSPECIFIED", event.type}:
        return False
    channels = matcher.get("channels", [])
    if channels and event.channel not in channels:
        return False
    return all(
        _compared(read_path(event, f.get("property", "")), f)
        for f in matcher.get("property_filters", [])
        if _trait(f.get("property", "")) is None
    )


def person_traits(matcher: dict[str, Any] | None) -> list[str]:
    """The traits a matcher's person filters read, sorted, each once (none: it reads the event only)."""
    found = {_trait(f.get("property", "")) for f in (matcher or {}).get("property_filters", [])}
    return sorted(t for t in found if t is not None)


def matches(event: Occurrence, matcher: dict[str, Any] | None, traits: Traits | None = None) -> bool:
    """Whether the event matches an EventMatcher (its JSON form): every set field must match. Its person
    filters are read last, only when the rest holds, their traits asked of `traits` in one call."""
    if not may_match(event, matcher):
        return False
    wanted = person_traits(matcher)
    if not wanted:
        return True
    return person_filters_hold(matcher, traits(wanted) if traits is not None else {})


def person_filters_hold(matcher: dict[str, Any] | None, found: Mapping[str, Any]) -> bool:
    """Whether a matcher's person filters hold for the person's traits `found` (those they have of the
    `person_traits` of the matcher)."""
    for f in (matcher or {}).get("property_filters", []):
        trait = _trait(f.get("property", ""))
        if trait is not None and not _compared(found.get(trait, MISSING), f):
            return False
    return True
