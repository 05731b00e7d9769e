"""The contract's PropertyFilter semantics in plain Python (analytics.proto), written from its words and not
from the SQL, for the references of every read model: values compare as JSON values (numbers as numbers),
text operators read the contract's text of a value (a string itself, a number in ECMAScript's layout,
`true`/`false`; none for null, an object or a list: `wayline.common.json_text`, ADR 77), ordering operators
compare a number with a number and an RFC 3339 time (a string) with a time, and a negated operator holds
wherever its positive form does not, so also for a missing property. test_matching.py checks it against the
SQL on random filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from wayline.common.json_text import text_of
from wayline_journeys.analytics import FilterOperator, JsonValue, PropertyFilter

__all__ = ["MISSING", "filter_holds", "is_number", "json_at", "rfc3339"]

MISSING = object()
"""The value of a property the event (or person) does not have."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# RFC 3339's date-time (section 5.6), with the space its note allows for the T, and as senders also write
# times: without the offset (UTC) or a date alone (its midnight, UTC). Its ranges are left to the parser,
# which refuses February 30 and hour 24 (and a leap second, which Python cannot represent).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)


def rfc3339(value: Any) -> datetime | None:
    """The time a string writes (above), else None (a number, "2026", "1700000000", "10/01/2026")."""
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def json_at(document: Any, path: str) -> Any:
    """The value at the dotted `path` of a JSON document ('a.b' is document['a']['b']), or MISSING."""
    node = document
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def _json_equals(value: Any, wanted: JsonValue) -> bool:
    if wanted is None:
        return value is None
    if isinstance(wanted, bool):
        return isinstance(value, bool) and value == wanted
    if isinstance(wanted, float):
        return is_number(value) and float(value) == wanted
    return isinstance(value, str) and value == wanted


def _positive_holds(value: Any, operator: FilterOperator, values: tuple[JsonValue, ...]) -> bool:
    present = value is not MISSING and value is not None
    if operator is FilterOperator.IS_SET:
        return present
    if operator is FilterOperator.EQUALS:
        return value is not MISSING and any(_json_equals(value, v) for v in values)
    text = text_of(value) if present else None
    if operator is FilterOperator.CONTAINS:
        return text is not None and any(t in text for t in map(text_of, values) if t is not None)
    if operator is FilterOperator.MATCHES_REGEX:
        return text is not None and re.search(str(values[0]), text) is not None
    bound = values[0]
    if isinstance(bound, str):  # a time: the property must be a string writing a time too
        moment, limit = rfc3339(value), rfc3339(bound)
        assert limit is not None
        return moment is not None and _ordered(operator, moment, limit)
    assert isinstance(bound, float)
    return present and is_number(value) and _ordered(operator, float(value), bound)


def _ordered(operator: FilterOperator, found: Any, bound: Any) -> bool:
    return bool(
        {
            FilterOperator.GREATER_THAN: found > bound,
            FilterOperator.GREATER_THAN_OR_EQUAL: found >= bound,
            FilterOperator.LESS_THAN: found < bound,
            FilterOperator.LESS_THAN_OR_EQUAL: found <= bound,
        }[operator]
    )


def filter_holds(f: PropertyFilter, value: Any) -> bool:
    """`f` on the value of its property (MISSING when absent)."""
    found = _positive_holds(value, f.operator.positive, f.values)
    return not found if f.operator.negated else found
