"""SQL fragments that find events by identifier and read them as their current person.

The current person of an event is computed in the query itself from the live overrides the caller loaded
(an `OverrideMapping`), passed as bound array parameters: rule k is (source person, identifier type,
identifier value, target), tried in the mapping's order; the first rule whose source is the event's stored
person and whose identifier (when scoped) is among the event's identifiers gives the target, and no match
leaves the stored person. One expression, so the same mapping filters a timeline, labels its events and
selects what an erasure removes.
"""

from __future__ import annotations

from typing import Any

from wayline_journeys.overrides import OverrideMapping

__all__ = ["IDENTIFIER_MATCH", "current_person_sql"]

# Events that carry the identifier {identifier_type, identifier_value}. `has` lets the bloom filter on the
# values skip granules; the pairwise check makes the type count too.
IDENTIFIER_MATCH = (
    "has(identifier_values, {identifier_value:String}) AND "
    "arrayExists((t, v) -> t = {identifier_type:String} AND v = {identifier_value:String}, "
    "identifier_types, identifier_values)"
)

_CURRENT_PERSON = (
    "arrayPushFront({ov_targets:Array(String)}, person_id)[1 + arrayFirstIndex("
    "k -> {ov_sources:Array(String)}[k] = person_id AND ({ov_types:Array(String)}[k] = '' OR arrayExists("
    "(t, v) -> t = {ov_types:Array(String)}[k] AND v = {ov_values:Array(String)}[k], "
    "identifier_types, identifier_values)), arrayEnumerate({ov_sources:Array(String)}))]"
)


def current_person_sql(mapping: OverrideMapping) -> tuple[str, dict[str, Any]]:
    """An expression over the events table's columns that is the event's current person, and its
    parameters. With an empty mapping it is the stored `person_id`."""
    rules = mapping.rules()
    return _CURRENT_PERSON, {
        "ov_sources": [o.person_id for o in rules],
        "ov_types": [o.identifier_type for o in rules],
        "ov_values": [o.identifier_value for o in rules],
        "ov_targets": [o.override_person_id for o in rules],
    }
