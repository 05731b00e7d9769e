"""What the flows ask other services while an entry runs: person conditions and person properties (the
journeys service) and next-best-action decisions (the decision service). The interpreter sees only these
protocols; the gRPC clients implement them, and `Lookups()` — no peers — answers as the contract says for a
missing peer: person conditions do not hold, persons have no properties, decisions fall back (decisions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from wayline_orchestrator.flows.runtime.decisions import DecisionLookup, NoDecisions

__all__ = ["DecisionLookup", "Lookups", "NoDecisions", "NoPersons", "PersonLookup", "Trait"]

log = structlog.get_logger("wayline.orchestrator")


@dataclass(frozen=True)
class Trait:
    """A trait's latest value and the identify event that set it: its time (microseconds since the epoch)
    and id, what journeys orders a person's identify events by."""

    value: Any
    time: int
    event_id: str


class PersonLookup(Protocol):
    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        """Whether each PersonCondition (in its JSON form) holds for the person now, in order."""
        ...

    def holds_of(
        self, tenant: str, person_ids: Sequence[str], conditions: Sequence[dict[str, Any]]
    ) -> dict[str, list[bool]]:
        """`holds` for each person, in as few calls as the service allows."""
        ...

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        """The person's latest value of each property asked for that they have."""
        ...

    def traits(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        """As `properties`, each value with the identify event that set it; every trait when `keys` is
        empty."""
        ...

    def traits_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        """`traits` of each person, in as few calls as the service allows (a page of a segment's members
        entering a flow); a person without traits may be missing."""
        ...


class NoPersons:
    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        log.info("flows.condition_not_evaluated", kind="person", count=len(conditions), why="no journeys")
        return [False] * len(conditions)

    def holds_of(
        self, tenant: str, person_ids: Sequence[str], conditions: Sequence[dict[str, Any]]
    ) -> dict[str, list[bool]]:
        return {p: self.holds(tenant, p, conditions) for p in dict.fromkeys(person_ids)}

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        return {}

    def traits(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        return {}

    def traits_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        return {}


@dataclass(frozen=True)
class Lookups:
    person: PersonLookup = field(default_factory=NoPersons)
    decision: DecisionLookup = field(default_factory=NoDecisions)
