"""One person's conditions and traits in ClickHouse (person_conditions.PersonConditionStore).

Conditions compile with the segments' compiler (store/conditions.py), for the one person at the one time
(`ConditionCompiler.one_person_query`, a row even without events). Two reads, as the timeline does (ADR 67):
- as stored: the events stored under the person, through the person_anchors lookup, with no override joined,
  in a statement that also counts the override rows naming the person; none, and that is the answer;
- through the overrides, for a person some override names: the events stored under the person and under
  every person an override points from to them (their sources), as the segment evaluator reads the persons
  it evaluates again; the events relation then reads each as its current person, so an absorbed person's
  events count for the survivor.

Traits are the latest value (by timestamp, then event id) of each key of the person's identify events, the
rule of `person.` filters (`ConditionCompiler.person_filters`), as raw JSON that the domain decodes; they are
read the same two ways, each with the identify event that set it (its time and id).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wayline.common.timestamps import to_micros
from wayline_journeys.conditions import Condition
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.person_conditions import Trait
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.columns import as_utc
from wayline_journeys.store.conditions import ConditionCompiler
from wayline_journeys.store.person_refs import current_persons
from wayline_journeys.store.relation import current_events, stored_events
from wayline_journeys.store.sql import EVENT_ORDER, SqlParams, override_rows_naming, person_anchors

__all__ = ["ClickHousePersonConditions"]


def _stored_under(person: str) -> str:
    """A predicate on stored columns: the events stored under `person` (a bound String) or under a person an
    override points from to them, in the anchors holding those persons' events."""
    sources = (
        f"(SELECT {person} UNION ALL SELECT person_id FROM person_overrides "
        f"WHERE tenant_id = {{tenant:String}} AND override_person_id = {person})"
    )
    return f"person_id IN {sources} AND {person_anchors(f'person_id IN {sources}')}"


def _stored_as_theirs(person: str) -> str:
    """A predicate on stored columns: the events stored under `person` (a bound String), in their anchors;
    exactly their events when no override names them (`override_rows_naming`)."""
    return f"person_id = {person} AND {person_anchors(f'person_id = {person}')}"


class ClickHousePersonConditions(ReadModel):
    """Thread-safe as the client it is given."""

    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        return current_persons(self._rows, tenant, identifiers)

    def evaluate(
        self,
        tenant: str,
        person_id: str,
        conditions: Sequence[Condition],
        lifecycle: LifecycleModel | None,
        at: datetime,
    ) -> list[bool]:
        # Most persons have no override: read their events as stored first, in a statement that also counts
        # the override rows naming them, and read through the overrides only when it finds some (as the
        # timeline does). The overrides' machinery costs a statement tens of milliseconds on chDB.
        def holds(as_stored: bool) -> tuple[list[bool], int]:
            """Whether each condition holds, and (read as stored) how many override rows name the person."""
            params = SqlParams(tenant=tenant)
            person = params.bind(person_id, "String")
            if not person_id:
                where = "false"  # a stranger (known by an identifier no event carries) reads no event at all
            elif as_stored:
                where = _stored_as_theirs(person)
            else:
                where = _stored_under(person)
            compiler = ConditionCompiler(params, lifecycle, as_of=at, one_person=True)
            columns = [f"[{', '.join(f'toUInt8({compiler.condition(c)})' for c in conditions)}] AS holds"]
            relation = stored_events if as_stored else current_events
            at_us = params.bind(to_micros(at), "Int64")
            sql = compiler.one_person_query(columns, at_us, person, where, relation)
            named = override_rows_naming(person) if as_stored else "0"
            rows = self._rows(f"SELECT holds, {named} FROM ({sql})", params, "evaluating person conditions")
            return [bool(held) for held in rows[0][0]], int(rows[0][1])

        found, named = holds(as_stored=True)
        if named and person_id:
            found, _ = holds(as_stored=False)
        return found

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        # As evaluate: as stored first, through the overrides only when some override names the person.
        found, named = self._properties(tenant, person_id, keys, as_stored=True)
        if named:
            found, _ = self._properties(tenant, person_id, keys, as_stored=False)
        return found

    def _properties(
        self, tenant: str, person_id: str, keys: Sequence[str], *, as_stored: bool
    ) -> tuple[dict[str, Trait], int]:
        params = SqlParams(tenant=tenant)
        person = params.bind(person_id, "String")
        wanted = f"AND trait.1 IN {params.bind(sorted(set(keys)), 'Array(String)')} " if keys else ""
        if as_stored:
            relation = stored_events(params, where=f"type = 'identify' AND {_stored_as_theirs(person)}")
        else:
            relation = current_events(params, where=f"type = 'identify' AND {_stored_under(person)}")
        traits = (
            f"SELECT trait.1 AS key, argMax((trait.2, timestamp, toString(event_id)), {EVENT_ORDER}) AS raw "
            f"FROM {relation} "
            "ARRAY JOIN JSONExtractKeysAndValuesRaw(properties) AS trait "
            f"WHERE person_id = {person} {wanted}GROUP BY key"
        )
        # One row whatever the person holds: the traits as an array, and the override rows naming them.
        named = override_rows_naming(person) if as_stored else "0"
        rows = self._rows(
            f"SELECT groupArray((key, raw)), {named} FROM ({traits})",
            params,
            "reading person properties",
        )
        pairs, named = rows[0]
        return {str(key): _trait(raw) for key, raw in pairs}, int(named)


def _trait(raw: Sequence[Any]) -> Trait:
    """(raw JSON value, the setting event's timestamp, its id) → a Trait."""
    value, at, event_id = raw
    return Trait(json.loads(value), as_utc(at), str(event_id))
