"""The events every analytics read starts from: one row per event, read as its current person.

`current_events` returns a subquery whose `person_id` is the event's current person, computed in ClickHouse
from the tenant's live person overrides (see overrides.py for the rule): an identifier-scoped override of the
stored person that names one of the event's identifiers wins (highest version first, then by identifier),
else the stored person's person-wide override, else the stored person. The overrides are joined, not passed
in, so a funnel over millions of persons costs one hash join on the small override table. `stored_person_id`
keeps what was written.

Why two branches (UNION ALL): the scoped rule needs the event's identifiers, and reading those two array
columns and matching them cost as much as the rest of the relation together (about twice a plain FINAL read),
while scoped overrides (unmerges, splits) concern few events. So
- the main branch reads every event without its identifiers and applies the person-wide override only; it
  leaves out the events that a scoped override may concern: those stored under a person with a scoped
  override AND held in an anchor (schema.py) of an event that carries one of the scoped identifiers;
- the scoped branch reads only those anchors (the sort key prunes the rest) and evaluates the full rule.
An event carrying a scoped identifier sits in an anchor that `identifier_anchors` lists for it (materialized
views fill it on every insert; an erasure rebuilds it), so no event needs the full rule outside that branch.
Both branches split by the same two arrays (scalar subqueries, which ClickHouse runs once per statement; two
IN subqueries would each read the tables, and an override applied in between could put an event in both
branches or in neither). A tenant without any scoped override (the persons' array is empty, a constant by
then) folds the scoped branch away at analysis, and the main branch reads no anchor. An event written while
the statement starts, in an anchor that no event carrying a scoped identifier held before, reads with the
person-wide rule only.

Measured on 1M generated events (a funnel's columns, 2 cores): without scoped overrides 1.5 times a plain
FINAL read instead of 2.3 times. The scoped branch reads whole granules: when the scoped identifiers'
anchors reach most granules (150 of 20k persons split in a 1M-event tenant) it costs a second read, about
1.7 times the single pass; it pays off when they are a small part of the tenant, as unmerges and splits are.

Read models select from it and add their own predicates; `where` takes predicates on stored columns that
should be applied before the join (a time range), which ClickHouse then uses for pruning.

`kinds` takes predicates on the columns every stored copy of one event shares, because the sender gave them
as they are: `name`, `type`, `channel`, `revenue` and `revenue_currency` (an event id names one event; a
retry, a replay or a replay after a merge can change its timestamp, received time, person or enrichment,
never these). They go in PREWHERE, which ClickHouse applies before FINAL collapses the copies
(`apply_prewhere_after_final`, off by default): both copies of an event pass or fail together, so the
survivor is the same as filtering after FINAL, and FINAL merges only the rows the read can use instead of
the tenant's every event. The benchmark's funnel, whose four step names are about half of its events, took
15 % less time at 10M events (ADR 70). Predicates on anything else (the timestamp, the person, properties a
matcher reads) stay in `where`.
"""

from __future__ import annotations

from collections.abc import Callable

from wayline_journeys.store.sql import SqlParams, person_anchors

__all__ = [
    "DERIVED_COLUMNS",
    "RELATION_COLUMNS",
    "Relation",
    "current_events",
    "stored_events",
    "stored_events_of",
]

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
    "backfill",
)

# Columns the store derives from an event when it writes it (schema.py), for the read models: not fields of
# the event, so not in RELATION_COLUMNS (which an export maps back onto the event record).
DERIVED_COLUMNS = ("page_path",)
_ALL_COLUMNS = (*RELATION_COLUMNS, *DERIVED_COLUMNS)

# The live override of every key: the newest version, unless it cancels.
_LIVE = """
    SELECT person_id, identifier_type, identifier_value,
           argMax(override_person_id, version) AS target, max(version) AS newest
    FROM person_overrides WHERE tenant_id = {tenant}
    GROUP BY person_id, identifier_type, identifier_value
    HAVING target != person_id
"""

# Per stored person: the person-wide target ('' for none) and the scoped rules, newest first, and of one
# version by identifier (type, then value): OverrideMapping.rules' order, which timelines and erasures use,
# so an event carrying two identifiers that overrides of one version send apart reads as the same person
# everywhere. (bitNot turns the UInt64 version's order around inside an ascending sort.)
_BY_SOURCE = """
    SELECT person_id AS source,
           anyIf(target, identifier_type = '') AS wide_target,
           arraySort(r -> (bitNot(r.4), r.1, r.2),
                     groupArrayIf((identifier_type, identifier_value, target, newest),
                                  identifier_type != '')) AS scoped
    FROM ({live})
    GROUP BY person_id
"""

# The persons with a scoped override row (live or not), and the anchors of the events that carry one of those
# identifiers: supersets of what the live rules need (the scoped branch applies the exact rule). Scalar
# subqueries, so that ClickHouse runs each once per statement and both branches split by the same arrays.
_SCOPED_PERSONS = (
    "(SELECT groupUniqArray(person_id) FROM person_overrides "
    "WHERE tenant_id = {tenant} AND identifier_type != '')"
)
_SCOPED_ANCHORS = (
    "(SELECT groupUniqArray(anchor) FROM identifier_anchors WHERE tenant_id = {tenant} "
    "AND (identifier_type, identifier_value) IN (SELECT identifier_type, identifier_value "
    "FROM person_overrides WHERE tenant_id = {tenant} AND identifier_type != ''))"
)

_WIDE_TARGET = "if(o.wide_target != '', o.wide_target, e.person_id)"
_SCOPED_TARGET = (
    "arrayFirst(r -> has(arrayZip(arrayMap(t -> toString(t), e.identifier_types), e.identifier_values), "
    "(r.1, r.2)), o.scoped).3"
)


def _final(tenant: str, where: str, kinds: str) -> str:
    """The tenant's stored events, one row per event: `kinds` before FINAL, `where` after it."""
    prewhere = f"PREWHERE {kinds} " if kinds != "true" else ""
    return f"events FINAL {prewhere}WHERE tenant_id = {tenant} AND ({where})"


def current_events(
    params: SqlParams, tenant: str = "{tenant:String}", where: str = "true", kinds: str = "true"
) -> str:
    """A parenthesised subquery of the tenant's events with their current person. `tenant` is the placeholder
    of the bound tenant (the caller binds it once); `where` filters stored columns before the join, `kinds`
    the columns every copy of an event shares, before FINAL (see the module's docstring). With
    `params.persons_as_stored` (the tenant has no override row) it is `stored_events`: the same rows."""
    if params.persons_as_stored:
        return stored_events(params, tenant, where, kinds)
    columns = ", ".join(f"e.{c} AS {c}" for c in _ALL_COLUMNS)
    persons, anchors = _SCOPED_PERSONS.format(tenant=tenant), _SCOPED_ANCHORS.format(tenant=tenant)
    any_scoped = f"notEmpty({persons})"
    in_anchors = f"anchor IN (SELECT arrayJoin({anchors}))"
    concerned = f"e.{in_anchors} AND e.person_id IN (SELECT arrayJoin({persons}))"
    overrides = _BY_SOURCE.format(live=_LIVE.format(tenant=tenant))
    stored = f"SELECT *, anchor, {', '.join(DERIVED_COLUMNS)} FROM {_final(tenant, where, kinds)}"
    main = (
        f"SELECT {columns}, e.person_id AS stored_person_id, {_WIDE_TARGET} AS person_id "
        f"FROM ({stored}) AS e "
        f"LEFT ANY JOIN (SELECT source, wide_target FROM ({overrides})) AS o ON o.source = e.person_id "
        f"WHERE NOT ({any_scoped} AND {concerned})"
    )
    scoped = (
        f"SELECT {columns}, e.person_id AS stored_person_id, "
        f"if({_SCOPED_TARGET} != '', {_SCOPED_TARGET}, {_WIDE_TARGET}) AS person_id "
        f"FROM ({stored} AND {any_scoped} AND {in_anchors}) AS e "
        f"LEFT ANY JOIN ({overrides}) AS o ON o.source = e.person_id "
        f"WHERE {concerned}"
    )
    return f"({main} UNION ALL {scoped})"


def stored_events(
    params: SqlParams, tenant: str = "{tenant:String}", where: str = "true", kinds: str = "true"
) -> str:
    """`current_events` for events whose stored person is their current one: no override joined. Exact only
    for persons no override row names, as source or target (the caller has checked); cheaper by the
    statement's whole override machinery, which on chDB costs tens of milliseconds before it reads a row."""
    del params  # nothing to bind; the parameter keeps the signature of current_events (Relation)
    columns = ", ".join(_ALL_COLUMNS)
    return f"(SELECT {columns}, person_id AS stored_person_id, person_id FROM {_final(tenant, where, kinds)})"


def stored_events_of(persons: str) -> Relation:
    """`stored_events` of the events stored under `persons` (a bound Array(String)), in the anchors that hold
    them: exactly their events for persons no override row names (`stored_events`' own condition; the caller
    counts those rows). The person filter goes before FINAL, so that FINAL merges those persons' copies only,
    not every row of the granules their anchors share with other persons (one person's conditions on 1M
    events: 21 to 23 ms → 17.5 ms a statement). Exact for such persons: a copy of one of their events can be
    stored under another person, and so win over theirs, only once identity moved one of their identifiers or
    them, and that writes an override row naming them (ADR 97)."""
    stored_under = f"person_id IN {persons}"

    def relation(params: SqlParams, tenant: str, where: str) -> str:
        in_anchors = f"{person_anchors(stored_under)} AND ({where})"
        return stored_events(params, tenant, in_anchors, kinds=stored_under)

    return relation


# current_events or stored_events: (params, tenant placeholder, stored-column filter) -> a subquery.
Relation = Callable[[SqlParams, str, str], str]
