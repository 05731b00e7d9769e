"""The events every analytics read starts from: one row per event, read as its current person.

`current_events` returns a subquery whose `person_id` is the event's current person, computed in ClickHouse
from the tenant's live person overrides (see overrides.py for the rule): an identifier-scoped override of the
stored person that names one of the event's identifiers wins (highest version first), else the stored
person's person-wide override, else the stored person. The overrides are joined, not passed in, so a funnel
over millions of persons costs one hash join on the small override table. `stored_person_id` keeps what was
written.

Read models select from it and add their own predicates; `where` takes predicates on stored columns that
should be applied before the join (a time range, event names), which ClickHouse then uses for pruning.
"""

from __future__ import annotations

from wayline_journeys.store.sql import SqlParams

__all__ = ["RELATION_COLUMNS", "current_events"]

# Columns of the relation, besides person_id and stored_person_id.
RELATION_COLUMNS = (
    "event_id",
    "type",
    "name",
    "channel",
    "timestamp",
    "received_at",
    "identifier_types",
    "identifier_values",
    "properties",
    "context",
    "text",
    "revenue",
    "revenue_currency",
    "group_id",
    "sentiment_score",
)

_LIVE_OVERRIDES = """
    SELECT person_id AS source,
           anyIf(target, identifier_type = '') AS wide_target,
           arrayReverseSort(r -> r.4, groupArrayIf((identifier_type, identifier_value, target, newest),
                                                   identifier_type != '')) AS scoped
    FROM (
        SELECT person_id, identifier_type, identifier_value,
               argMax(override_person_id, version) AS target, max(version) AS newest
        FROM person_overrides WHERE tenant_id = {tenant}
        GROUP BY person_id, identifier_type, identifier_value
        HAVING target != person_id
    )
    GROUP BY person_id
"""

_SCOPED_TARGET = (
    "arrayFirst(r -> has(arrayZip(arrayMap(t -> toString(t), e.identifier_types), e.identifier_values), "
    "(r.1, r.2)), o.scoped).3"
)


def current_events(params: SqlParams, tenant: str = "{tenant:String}", where: str = "true") -> str:
    """A parenthesised subquery of the tenant's events with their current person. `tenant` is the placeholder
    of the bound tenant (the caller binds it once); `where` filters stored columns before the join."""
    columns = ", ".join(f"e.{c} AS {c}" for c in RELATION_COLUMNS)
    return (
        f"(SELECT {columns}, e.person_id AS stored_person_id, "
        f"if({_SCOPED_TARGET} != '', {_SCOPED_TARGET}, if(o.wide_target != '', o.wide_target, e.person_id)) "
        f"AS person_id "
        f"FROM (SELECT * FROM events FINAL WHERE tenant_id = {tenant} AND ({where})) AS e "
        f"LEFT ANY JOIN ({_LIVE_OVERRIDES.format(tenant=tenant)}) AS o ON o.source = e.person_id)"
    )
