"""The answers of one run: what a run asks other services (person conditions and traits of the journeys
service, decisions of the decision service) is asked with no transaction open.

A run executes inside one database transaction that holds the entries' locks and, on SQLite, the one write
lock (every transaction of `wayline.common.sql` begins IMMEDIATE). A network call made there would hold that
lock for its whole length — and Decide calls back into this orchestrator (CheckContact), which would wait
for it (ADR 37). So the run's lookups only read answers already had: a question without one raises
`Unanswered`, the engine rolls the transaction back, asks it (`Unanswered.ask`) and runs again from the same
state with every answer so far. An answer is kept for the rest of the run, so each question costs one call.

A run may stand for a batch of persons (a page of a segment's members entering a flow, the persons of an
ObserveEvents call, a claim of due timers): the traits or person conditions asked for one of them are asked
for every person of the batch not yet answered, in one call (`PersonLookup.traits_of`, `holds_of`), since the
same steps will ask the same of the others. A page of 1,000 personalised or branching entries then costs one
read of journeys per question instead of 1,000 (ADR 92).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lookups.py imports decisions.py, which imports this module
    from wayline_orchestrator.flows.runtime.lookups import PersonLookup, Trait

__all__ = ["RunPersons", "Unanswered"]


class Unanswered(Exception):
    """Raised inside a run for a question without an answer yet; `ask` (called with no transaction open)
    gets it."""

    def __init__(self, what: str, ask: Callable[[], None]) -> None:
        super().__init__(what)
        self.ask = ask


_ABSENT = object()  # a trait the person does not have (asked, and known to be missing)


def _key(condition: dict[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True)


@dataclass
class RunPersons:
    """The person answers of one run (a PersonLookup): known answers are returned; unknown ones raise
    `Unanswered`, whose `ask` fetches all that was missing in one call — for the person asked about and,
    when they are one of `batch`, for the rest of the batch too."""

    lookup: PersonLookup
    batch: Sequence[str] = ()
    held: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # (tenant, person, condition)
    known: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # (tenant, person, key): a Trait

    def __post_init__(self) -> None:
        self._in_batch = frozenset(self.batch)

    def holds(self, tenant: str, person_id: str, conditions: Sequence[dict[str, Any]]) -> list[bool]:
        keys = [(tenant, person_id, _key(c)) for c in conditions]
        missing = [c for c, k in zip(conditions, keys, strict=True) if k not in self.held]
        if missing:
            raise Unanswered("person conditions", lambda: self._ask_holds(tenant, person_id, missing))
        return [self.held[k] for k in keys]

    def holds_of(
        self, tenant: str, person_ids: Sequence[str], conditions: Sequence[dict[str, Any]]
    ) -> dict[str, list[bool]]:
        missing = [p for p in person_ids if any((tenant, p, _key(c)) not in self.held for c in conditions)]
        if missing:
            asked = list(conditions)
            raise Unanswered("person conditions", lambda: self._ask_holds_of(tenant, missing, asked))
        return {p: self.holds(tenant, p, conditions) for p in person_ids}

    def properties(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Any]:
        return {k: t.value for k, t in self.traits(tenant, person_id, keys).items()}

    def traits(self, tenant: str, person_id: str, keys: Sequence[str]) -> dict[str, Trait]:
        missing = [k for k in keys if (tenant, person_id, k) not in self.known]
        if missing:
            raise Unanswered("person properties", lambda: self._ask_traits(tenant, person_id, missing))
        found = {k: self.known[(tenant, person_id, k)] for k in keys}
        return {k: v for k, v in found.items() if v is not _ABSENT}

    def traits_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        missing = [p for p in person_ids if any((tenant, p, k) not in self.known for k in keys)]
        if missing:
            raise Unanswered("person properties", lambda: self._ask_many(tenant, missing, list(keys)))
        return {p: self.traits(tenant, p, keys) for p in person_ids}

    def _with_batch(self, person_id: str, unanswered: Callable[[str], bool]) -> list[str]:
        """`person_id`, then, when they are one of the batch, the batch's others still `unanswered`."""
        batch = dict.fromkeys(self.batch) if person_id in self._in_batch else {}
        return [person_id, *(p for p in batch if p != person_id and unanswered(p))]

    def _ask_holds(self, tenant: str, person_id: str, conditions: list[dict[str, Any]]) -> None:
        def unanswered(p: str) -> bool:
            return any((tenant, p, _key(c)) not in self.held for c in conditions)

        self._ask_holds_of(tenant, self._with_batch(person_id, unanswered), conditions)

    def _ask_holds_of(self, tenant: str, person_ids: list[str], conditions: list[dict[str, Any]]) -> None:
        found = self.lookup.holds_of(tenant, person_ids, conditions)
        for person_id in person_ids:
            for condition, answer in zip(conditions, found[person_id], strict=True):
                self.held[(tenant, person_id, _key(condition))] = answer

    def _ask_traits(self, tenant: str, person_id: str, keys: list[str]) -> None:
        def unanswered(p: str) -> bool:
            return any((tenant, p, k) not in self.known for k in keys)

        self._ask_many(tenant, self._with_batch(person_id, unanswered), keys)

    def _ask_many(self, tenant: str, person_ids: list[str], keys: list[str]) -> None:
        found = self.lookup.traits_of(tenant, person_ids, keys)
        for person_id in person_ids:
            theirs = found.get(person_id, {})
            for key in keys:
                self.known[(tenant, person_id, key)] = theirs.get(key, _ABSENT)
