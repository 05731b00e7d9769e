"""Persons' conditions and traits in ClickHouse (person_conditions.PersonConditionStore).

Conditions compile with the segments' compiler (store/conditions.py), for the asked persons at the one time
(`ConditionCompiler.persons_query`; `no_events_query` for those without events), many persons at once
(BatchEvaluatePersonConditions; one person is a batch of one). Two reads, as the timeline does (ADR 67):
- as stored, for all of them: the events stored under the persons, through the person_anchors lookup, with
  no override joined, in a statement that also counts the override rows naming each person; a person no row
  names has their answer;
- through the overrides, only for the persons some override names: the events stored under them and under
  every person an override points from to them (their sources), as the segment evaluator reads the persons
  it evaluates again; the events relation then reads each as its current person, so an absorbed person's
  events count for the survivor. This answer replaces theirs.
A person left without an answer (no events before the time, a stranger, a person merged into another) is
evaluated on no events, in a third statement only when there is one.

Traits are the latest value (by timestamp, then event id) of each key of the persons' identify events, the
rule of `person.` filters (`ConditionCompiler.person_filters`), as raw JSON that the domain decodes; they are
read the same two ways, each with the identify event that set it (its time and id), for many persons at
once (BatchGetPersonProperties; one person is a batch of one). Either read is two statements at most,
whatever the number of persons.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wayline.common.timestamps import to_micros
from wayline_journeys.conditions import Condition
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.person_conditions import Trait
from wayline_journeys.store.client import SHORT_READ, ReadModel
from wayline_journeys.store.columns import as_utc
from wayline_journeys.store.conditions import ConditionCompiler
from wayline_journeys.store.person_refs import current_persons
from wayline_journeys.store.relation import current_events, stored_events_of
from wayline_journeys.store.sql import (
    EVENT_ORDER,
    SqlParams,
    override_rows_naming_each,
    person_anchors,
)

__all__ = ["ClickHousePersonConditions"]


def _stored_under(persons: str) -> str:
    """A predicate on stored columns: the events stored under the persons `persons` (a bound Array(String))
    or under a person an override points from to one of them, in the anchors holding those persons' events."""
    sources = (
        f"(person_id IN {persons} OR person_id IN (SELECT person_id FROM person_overrides "
        f"WHERE tenant_id = {{tenant:String}} AND override_person_id IN {persons}))"
    )
    return f"{sources} AND {person_anchors(sources)}"


@dataclass(frozen=True)
class _Read:
    """What one evaluation asks: the tenant, the conditions, the lifecycle model, the one time."""

    tenant: str
    conditions: Sequence[Condition]
    lifecycle: LifecycleModel | None
    at: datetime


class ClickHousePersonConditions(ReadModel):
    """Thread-safe as the client it is given."""

    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        return current_persons(self._rows, tenant, identifiers)

    def evaluate_of(
        self,
        tenant: str,
        person_ids: Sequence[str],
        conditions: Sequence[Condition],
        lifecycle: LifecycleModel | None,
        at: datetime,
    ) -> dict[str, list[bool]]:
        # Most persons have no override: read their events as stored first, in a statement that also lists
        # the override rows naming each, and read through the overrides only for the persons it finds named
        # (as the timeline does), whose answers replace theirs. The overrides' machinery costs a statement
        # tens of milliseconds on chDB, and a statement's fixed cost is most of a small read: a bounded number
        # of statements whatever the number of persons. Persons left without an answer (no events before
        # `at`, strangers, persons merged into others) are evaluated on no events, in a third statement only
        # when there are some.
        asked = sorted(set(person_ids))
        read = _Read(tenant, conditions, lifecycle, at)
        known = [p for p in asked if p]  # '' is a stranger (known by an identifier no event carries)
        found, named = self._holds(read, known, as_stored=True) if known else ({}, set())
        if named:
            found = {p: held for p, held in found.items() if p not in named}
            found |= self._holds(read, sorted(named), as_stored=False)[0]
        missing = [p for p in asked if p not in found]
        if missing:
            found |= self._no_events(read, missing)
        return {p: found[p] for p in person_ids}

    def _compiled(self, read: _Read, params: SqlParams) -> tuple[ConditionCompiler, list[str], str]:
        """The read's conditions compiled over `params`: the compiler, the `holds` column, the time bound."""
        compiler = ConditionCompiler(params, read.lifecycle, as_of=read.at, one_person=True)
        holds = ", ".join(f"toUInt8({compiler.condition(c)})" for c in read.conditions)
        return compiler, [f"[{holds}] AS holds"], params.bind(to_micros(read.at), "Int64")

    def _holds(
        self, read: _Read, person_ids: list[str], *, as_stored: bool
    ) -> tuple[dict[str, list[bool]], set[str]]:
        """Whether each condition holds for each person with events, and, read as stored, the persons some
        override row names (whose answer this read is not)."""
        params = SqlParams(tenant=read.tenant)
        persons = params.bind(person_ids, "Array(String)")
        where = "true" if as_stored else _stored_under(persons)  # stored_events_of keeps to their anchors
        compiler, columns, at_us = self._compiled(read, params)
        relation = stored_events_of(persons) if as_stored else current_events
        sql = compiler.persons_query(columns, at_us, persons, where, relation)
        named = override_rows_naming_each(persons) if as_stored else "[]"
        rows = self._rows(
            f"SELECT groupArray((person_id, holds)), {named} FROM ({sql})",
            params,
            "evaluating person conditions",
            SHORT_READ,
        )
        pairs, counts = rows[0]
        found = {str(person): [bool(held) for held in holds] for person, holds in pairs}
        return found, {str(person) for person, rows_naming in counts if rows_naming}

    def _no_events(self, read: _Read, person_ids: list[str]) -> dict[str, list[bool]]:
        params = SqlParams(tenant=read.tenant)
        compiler, columns, at_us = self._compiled(read, params)
        sql = compiler.no_events_query(columns, at_us, params.bind(person_ids, "Array(String)"))
        rows = self._rows(f"SELECT person_id, holds FROM ({sql})", params, "evaluating person conditions")
        return {str(person): [bool(held) for held in holds] for person, holds in rows}

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        """One person's traits: `properties_of` for them alone."""
        return self.properties_of(tenant, [person_id], keys)[person_id]

    def properties_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        # As evaluate, for every person at once: as stored first, in a statement that also lists the override
        # rows naming each person, then through the overrides for those persons only. Two statements whatever
        # the number of persons: a statement's fixed cost on chDB is most of a small read (docs/journeys.md).
        asked = sorted({p for p in person_ids if p})  # '' is a stranger: no stored event is theirs
        found: dict[str, dict[str, Trait]] = {}
        if asked:
            found, named = self._traits(tenant, asked, keys, as_stored=True)
            if named:
                merged, _ = self._traits(tenant, sorted(named), keys, as_stored=False)
                found = {p: traits for p, traits in found.items() if p not in named} | merged
        return {p: found.get(p, {}) for p in person_ids}

    def _traits(
        self, tenant: str, person_ids: list[str], keys: Sequence[str], *, as_stored: bool
    ) -> tuple[dict[str, dict[str, Trait]], set[str]]:
        """The persons' traits (those without any are missing) and, read as stored, the persons some
        override row names (whose answer this read is not)."""
        params = SqlParams(tenant=tenant)
        persons = params.bind(person_ids, "Array(String)")
        wanted = f"AND trait.1 IN {params.bind(sorted(set(keys)), 'Array(String)')} " if keys else ""
        if as_stored:
            relation = stored_events_of(persons)(params, "{tenant:String}", "type = 'identify'")
        else:
            relation = current_events(params, where=f"type = 'identify' AND {_stored_under(persons)}")
        # person_id is the current person through the overrides: a source's events count for their survivor.
        traits = (
            "SELECT person_id, trait.1 AS key, "
            f"argMax((trait.2, timestamp, toString(event_id)), {EVENT_ORDER}) AS raw "
            f"FROM {relation} "
            "ARRAY JOIN JSONExtractKeysAndValuesRaw(properties) AS trait "
            f"WHERE person_id IN {persons} {wanted}GROUP BY person_id, key"
        )
        # One row whatever the persons hold: their traits as an array, and the override rows naming them.
        named = override_rows_naming_each(persons) if as_stored else "[]"
        rows = self._rows(
            f"SELECT groupArray((person_id, key, raw)), {named} FROM ({traits})",
            params,
            "reading person properties",
            SHORT_READ,
        )
        triples, counts = rows[0]
        found: dict[str, dict[str, Trait]] = {}
        for person, key, raw in triples:
            found.setdefault(str(person), {})[str(key)] = _trait(raw)
        return found, {str(person) for person, rows_naming in counts if rows_naming}


def _trait(raw: Sequence[Any]) -> Trait:
    """(raw JSON value, the setting event's timestamp, its id) → a Trait."""
    value, at, event_id = raw
    return Trait(json.loads(value), as_utc(at), str(event_id))
