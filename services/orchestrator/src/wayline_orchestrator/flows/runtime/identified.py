"""The person's traits as the identify events being handled set them, over what the journeys service answers
(ADR 75).

Ingest forwards each event to journeys and to this service independently, so when the event a flow reads
the person for is itself an identify event (or follows one in the same ObserveEvents batch), journeys may
not have stored it yet: a trigger on `person.plan EQUALS pro` fired by the identify event that sets
`plan: pro` would miss the person, or read the old plan. `Identified` wraps the run's PersonLookup for one
event: a trait that one of the person's identify events handled so far carries (the event itself and the
earlier ones of its batch) is read from the latest of them — "latest" as journeys orders a person's identify
events (`EVENT_ORDER`: the event's time, ties broken by the id's text, i.e. the UUID's big-endian bytes) —
unless the value journeys holds is later still: GetPersonProperties names the event that set each value, so
a late or back-filled identify event does not override a newer stored trait, and the event journeys names
is the one being handled (stored already). Nothing is asked for a run that reads no trait the events carry.

Person conditions read the same traits: a `person_property` condition on a trait the events carry, and a
group of such conditions, hold here; every other part (event counts, segments, traits the events do not
carry) is asked of journeys, all in one call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

from wayline_orchestrator.flows.runtime.lookups import Lookups, PersonLookup, Trait
from wayline_orchestrator.flows.runtime.matching import Occurrence, person_filters_hold

__all__ = ["IDENTIFY", "Identified", "identified"]

IDENTIFY = "EVENT_TYPE_IDENTIFY"
_PERSON = "person."


def _order(time: int, event_id: str) -> tuple[int, bytes]:
    """Journeys' order of events for "the latest" (store/sql.py's EVENT_ORDER): time, then the event id as
    the big-endian bytes of its UUID (the order of its canonical text); an id that is no UUID by its text."""
    try:
        key = uuid.UUID(event_id).bytes
    except ValueError:
        key = event_id.encode()
    return time, key


def _key(condition: dict[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True)


class Identified:
    """A PersonLookup for one person's run: the traits of `events` (their identify events being handled)
    over the answers of `lookup`, where they are later than the stored ones."""

    def __init__(self, lookup: PersonLookup, person_id: str, events: Sequence[Occurrence]) -> None:
        self._lookup = lookup
        self._person_id = person_id
        self._events = events

    @cached_property
    def carried(self) -> dict[str, Trait]:
        """Each trait the events carry, from the latest event carrying it (a null value included: journeys
        keeps a trait set to null as set, to null). Read from the events alone: no call."""
        found: dict[str, Trait] = {}
        for event in sorted(self._events, key=lambda e: _order(e.time, e.event_id)):  # later ones overwrite
            found.update({k: Trait(v, event.time, event.event_id) for k, v in event.properties.items()})
        return found

    def _mine(self, person_id: str) -> dict[str, Trait]:
        return self.carried if person_id == self._person_id else {}

    def traits(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        """Journeys' traits among `keys` (every one when empty), each replaced by the events' where they
        carry it later by journeys' order; the event journeys names is the same event (its value kept)."""
        mine = self._mine(person_id)
        stored = self._lookup.traits(tenant, person_id, keys)
        if keys:
            mine = {k: mine[k] for k in keys if k in mine}
        return {**stored, **{k: t for k, t in mine.items() if _later(t, stored.get(k))}}

    def holds_of(
        self, tenant: str, person_ids: Sequence[str], conditions: Sequence[dict[str, Any]]
    ) -> dict[str, list[bool]]:
        found = self._lookup.holds_of(tenant, person_ids, conditions)
        if self._person_id in person_ids:
            found[self._person_id] = self.holds(tenant, self._person_id, conditions)
        return found

    def traits_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        found = self._lookup.traits_of(tenant, person_ids, keys)
        if self._person_id in person_ids:
            found[self._person_id] = self.traits(tenant, self._person_id, keys)
        return found

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        mine = self._mine(person_id)
        if not mine or (keys and not any(k in mine for k in keys)):  # no call more than without events
            return self._lookup.properties(tenant, person_id, keys)
        return {k: t.value for k, t in self.traits(tenant, person_id, keys).items()}

    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        mine = self._mine(person_id)
        if not mine or not any(_reads(c, mine) for c in conditions):
            return self._lookup.holds(tenant, person_id, conditions)
        # The traits the events carry, as the latest of theirs and journeys' (asked together before).
        traits = {k: t.value for k, t in self.traits(tenant, person_id, sorted(mine)).items()}
        remote = {_key(part): part for c in conditions for part in _remote_parts(c, mine)}
        answers = (
            dict(zip(remote, self._lookup.holds(tenant, person_id, list(remote.values())), strict=True))
            if remote
            else {}
        )
        return [_holds(c, mine, traits, answers) for c in conditions]


def _later(event: Trait, stored: Trait | None) -> bool:
    """Whether the event's value is later than the stored one by journeys' order (the same id: the same
    event, not later)."""
    if stored is None:
        return True
    return _order(event.time, event.event_id) > _order(stored.time, stored.event_id)


def _trait(condition: dict[str, Any]) -> str | None:
    """The trait a `person_property` condition reads (None for another kind or a path journeys refuses:
    `person.<trait>`, no dot in the trait)."""
    path = str(condition.get("person_property", {}).get("property", ""))
    trait = path.removeprefix(_PERSON)
    return trait if path.startswith(_PERSON) and trait and "." not in trait else None


def _reads(condition: dict[str, Any], traits: dict[str, Trait]) -> bool:
    """Whether the condition (or a member of its group) reads a trait of `traits`."""
    if "group" in condition:
        return any(_reads(m, traits) for m in condition["group"].get("conditions", []))
    return _trait(condition) in traits


def _remote_parts(condition: dict[str, Any], traits: dict[str, Trait]) -> list[dict[str, Any]]:
    """The largest parts of the condition that read no trait of `traits`: what journeys answers."""
    if not _reads(condition, traits):
        return [condition]
    if "group" in condition:
        return [p for m in condition["group"].get("conditions", []) for p in _remote_parts(m, traits)]
    return []


def _holds(
    condition: dict[str, Any], carried: dict[str, Trait], traits: dict[str, Any], answers: dict[str, bool]
) -> bool:
    """A PersonCondition (JSON) as journeys evaluates it, with `traits` for the person's properties it reads
    among those the events carry, and `answers` (journeys') for its other parts."""
    if not _reads(condition, carried):
        return answers[_key(condition)]
    negate = bool(condition.get("negate"))
    if "group" in condition:
        group = condition["group"]
        results = [_holds(m, carried, traits, answers) for m in group.get("conditions", [])]
        found = any(results) if group.get("operator") == "LOGICAL_OPERATOR_OR" else all(results)
        return found != negate
    # A person filter as journeys' person_filters_sql reads it: the latest value, negated operators holding
    # where the positive form does not (matching.py shares that meaning).
    return person_filters_hold({"property_filters": [condition["person_property"]]}, traits) != negate


def identified(lookups: Lookups, person_id: str, events: Sequence[Occurrence]) -> Lookups:
    """`lookups` whose person answers read the traits of the person's identify events `events` (the run's
    lookups unchanged when there are none: nothing is converted for a person who identified nothing)."""
    if not events:
        return lookups
    return replace(lookups, person=Identified(lookups.person, person_id, tuple(events)))
