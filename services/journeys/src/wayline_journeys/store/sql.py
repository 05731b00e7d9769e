"""Building parameterised ClickHouse SQL from parts.

Read models compose fragments (matchers, the events relation, their own clauses); each fragment binds its
values through one `SqlParams`, which names them uniquely, so fragments never collide and no value is ever
interpolated into the text.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EVENT_ID_ORDER",
    "EVENT_ORDER",
    "SqlParams",
    "anchor_in",
    "identifier_anchors",
    "override_rows_naming",
    "override_rows_naming_each",
    "person_anchors",
]

# An event id as a key that sorts as its text does (the big-endian bytes: FixedString(16), compared as bytes),
# for every read model that breaks ties on time by the id (funnels, paths, retention's breakdown, traits, an
# identifier's holder), so two events of one microsecond come in one order everywhere, the timeline's too.
# The UUID type sorts otherwise (its two halves swapped), and the text itself costs a formatted 36-byte
# string per event: paths at 1M events took 1,220 ms with it and 1,107 ms with this; a funnel at 10M costs
# the same with either key (docs/benchmarks.md, 2026-12-06 evening). The timeline's keyset cursor carries
# the id as text and compares it as text.
EVENT_ID_ORDER = "UUIDToNum(event_id)"

# The order of events in time, ties broken by the id's text: the key of "the latest" wherever one value wins
# (a person's traits in conditions, filters, breakdowns and person properties), so that two identify events
# at one time give every read the same trait value.
EVENT_ORDER = f"(timestamp, {EVENT_ID_ORDER})"


def anchor_in(lookup: str) -> str:
    """`anchor GLOBAL IN (lookup)`, the one way every read names the anchors a lookup table (person_anchors,
    identifier_anchors) gives. On a cluster those tables are sharded like `events`: GLOBAL makes the
    initiator read the lookup once and ship the set to the shards, where a plain IN would be refused as a
    double-distributed subquery. On one server it plans as IN does (the same parts and granules, checked with
    EXPLAIN), so there is no second rule to choose by topology."""
    return f"anchor GLOBAL IN ({lookup})"


def override_rows_naming(person: str) -> str:
    """A scalar subquery: how many override rows (any version) name `person` (a String placeholder) as source
    or target. None means the events stored under the person are exactly their events, and nobody else's
    events are theirs (the bloom filter on override_person_id serves the second half); the tenant is
    {tenant:String}."""
    return (
        "(SELECT count() FROM person_overrides WHERE tenant_id = {tenant:String} "
        f"AND (person_id = {person} OR override_person_id = {person}))"
    )


def override_rows_naming_each(persons: str) -> str:
    """`override_rows_naming` for several persons at once: a scalar subquery, an array of (person, how many
    override rows name them) for each person of `persons` (an Array(String) placeholder) that some row
    names as source or target; the persons no row names are missing. A row naming a person on both sides
    counts once, as there. The tenant is {tenant:String}."""
    return (
        "(SELECT groupArray((named, n)) FROM (SELECT named, count() AS n FROM person_overrides "
        "ARRAY JOIN arrayDistinct([person_id, override_person_id]) AS named "
        "WHERE tenant_id = {tenant:String} "
        f"AND (person_id IN {persons} OR override_person_id IN {persons}) AND named IN {persons} "
        "GROUP BY named))"
    )


def person_anchors(persons: str) -> str:
    """The events in the anchors that hold the events stored under the persons `persons` selects (a condition
    on person_id); the tenant is {tenant:String}."""
    return anchor_in(f"SELECT anchor FROM person_anchors WHERE tenant_id = {{tenant:String}} AND {persons}")


def identifier_anchors(identifiers: str) -> str:
    """The events in the anchors that hold the events carrying an identifier `identifiers` selects (a
    condition on identifier_type and identifier_value); the tenant is {tenant:String}."""
    return anchor_in(
        f"SELECT anchor FROM identifier_anchors WHERE tenant_id = {{tenant:String}} AND {identifiers}"
    )


class SqlParams:
    """The bound parameters of one statement."""

    def __init__(self, **named: Any) -> None:
        self.values: dict[str, Any] = dict(named)
        self._count = 0
        self.persons_as_stored = False
        """Set when the tenant has no person override at all: `relation.current_events` then reads each event
        as its stored person (`stored_events`), which is the same answer without the override joins."""

    def bind(self, value: Any, type_: str) -> str:
        """A placeholder `{pN:type_}` for `value`, e.g. `bind("web", "String")`."""
        self._count += 1
        name = f"p{self._count}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"

    def named(self, name: str, value: Any, type_: str) -> str:
        """A placeholder under a chosen name (for values a statement refers to more than once)."""
        self.values[name] = value
        return f"{{{name}:{type_}}}"
