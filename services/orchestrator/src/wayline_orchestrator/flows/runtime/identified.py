"""The person's traits as the identify events being handled set them, over what the journeys service answers
(ADR 75).

Ingest forwards each event to journeys and to this service independently, so when the event a flow reads
the person for is itself an identify event (or follows one in the same ObserveEvents batch), journeys may
not have stored it yet: a trigger on `person.plan EQUALS pro` fired by the identify event that sets
`plan: pro` would miss the person, or read the old plan. `Identified` wraps the run's PersonLookup for one
event: a trait that one of the person's identify events handled so far carries (the event itself and the
earlier ones of its batch) is read from the latest of them — "latest" as journeys orders a person's identify
events (`EVENT_ORDER`: the event's time, ties broken by the id's text, i.e. the UUID's big-endian bytes) —
and only the other traits are asked of journeys. The events handled are taken to be the person's latest:
an identify event older than the value journeys holds (a late or back-filled one) still wins for its own
run, since GetPersonProperties does not say when its values were set (the ADR's consequences).

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

from wayline_orchestrator.flows.runtime.lookups import Lookups, PersonLookup
from wayline_orchestrator.flows.runtime.matching import Occurrence, person_filters_hold

__all__ = ["IDENTIFY", "Identified", "identified"]

IDENTIFY = "EVENT_TYPE_IDENTIFY"
_PERSON = "person."


def _order(event: Occurrence) -> tuple[int, bytes]:
    """Journeys' order of events for "the latest" (store/sql.py's EVENT_ORDER): time, then the event id as
    the big-endian bytes of its UUID (the order of its canonical text); an id that is no UUID by its text."""
    try:
        key = uuid.UUID(event.event_id).bytes
    except ValueError:
        key = event.event_id.encode()
    return event.time, key


def _key(condition: dict[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True)


class Identified:
    """A PersonLookup for one person's run: the traits of `events` (their identify events being handled)
    over the answers of `lookup`."""

    def __init__(self, lookup: PersonLookup, person_id: str, events: Sequence[Occurrence]) -> None:
        self._lookup = lookup
        self._person_id = person_id
        self._events = events

    @cached_property
    def traits(self) -> dict[str, Any]:
        """Each trait the events carry, from the latest event carrying it (a null value included: journeys
        keeps a trait set to null as set, to null)."""
        found: dict[str, Any] = {}
        for event in sorted(self._events, key=_order):  # later events overwrite earlier ones
            found.update(event.properties)
        return found

    def _mine(self, person_id: str) -> dict[str, Any]:
        return self.traits if person_id == self._person_id else {}

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        mine = self._mine(person_id)
        if not keys:  # every property: journeys' with the events' over them
            return {**self._lookup.properties(tenant, person_id, keys), **mine}
        own = {k: mine[k] for k in keys if k in mine}
        rest = [k for k in keys if k not in mine]
        asked = self._lookup.properties(tenant, person_id, rest) if rest else {}
        return {**asked, **own}

    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        mine = self._mine(person_id)
        if not mine or not any(_reads(c, mine) for c in conditions):
            return self._lookup.holds(tenant, person_id, conditions)
        remote = {_key(part): part for c in conditions for part in _remote_parts(c, mine)}
        answers = (
            dict(zip(remote, self._lookup.holds(tenant, person_id, list(remote.values())), strict=True))
            if remote
            else {}
        )
        return [_holds(c, mine, answers) for c in conditions]


def _trait(condition: dict[str, Any]) -> str | None:
    """The trait a `person_property` condition reads (None for another kind or a path journeys refuses:
    `person.<trait>`, no dot in the trait)."""
    path = str(condition.get("person_property", {}).get("property", ""))
    trait = path.removeprefix(_PERSON)
    return trait if path.startswith(_PERSON) and trait and "." not in trait else None


def _reads(condition: dict[str, Any], traits: dict[str, Any]) -> bool:
    """Whether the condition (or a member of its group) reads a trait of `traits`."""
    if "group" in condition:
        return any(_reads(m, traits) for m in condition["group"].get("conditions", []))
    return _trait(condition) in traits


def _remote_parts(condition: dict[str, Any], traits: dict[str, Any]) -> list[dict[str, Any]]:
    """The largest parts of the condition that read no trait of `traits`: what journeys answers."""
    if not _reads(condition, traits):
        return [condition]
    if "group" in condition:
        return [p for m in condition["group"].get("conditions", []) for p in _remote_parts(m, traits)]
    return []


def _holds(condition: dict[str, Any], traits: dict[str, Any], answers: dict[str, bool]) -> bool:
    """A PersonCondition (JSON) as journeys evaluates it, with `traits` for the person's properties it reads
    and `answers` (journeys') for its other parts."""
    if not _reads(condition, traits):
        return answers[_key(condition)]
    negate = bool(condition.get("negate"))
    if "group" in condition:
        group = condition["group"]
        results = [_holds(m, traits, answers) for m in group.get("conditions", [])]
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
