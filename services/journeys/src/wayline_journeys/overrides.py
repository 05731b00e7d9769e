"""Person overrides: identity's corrections that remap stored events to the person they belong to now.

Events keep the person id known when they were written; reads map them through the overrides. For an event
stored with person S and carrying identifiers I, the current person is the target of the highest-version
identifier-scoped override keyed (S, i) for some i in I; else that of the person-wide override keyed (S);
else S. Identity keeps overrides flat (a target is never itself overridden), so one lookup suffices. For one
key the highest version wins, and an override whose target is its own person cancels (it no longer counts).

Free of protobuf and of SQL: the store turns an `OverrideMapping` into the expression its queries use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["MAX_OVERRIDES_PER_CALL", "OverrideKey", "OverrideMapping", "PersonOverride", "newest_per_key"]

MAX_OVERRIDES_PER_CALL = 10_000

OverrideKey = tuple[str, str, str]
"""(person_id, identifier type, identifier value); type and value are empty for a person-wide override."""


@dataclass(frozen=True)
class PersonOverride:
    """One override as identity issued it (or, read back from the store, the live one of its key)."""

    person_id: str
    override_person_id: str
    version: int
    identifier_type: str = ""  # "" with identifier_value "": the override is person-wide
    identifier_value: str = ""
    merge_id: str = ""
    create_time: datetime | None = None
    erased: bool = False  # identity erased `person_id`: erase what journeys keeps for it, record nothing

    @property
    def key(self) -> OverrideKey:
        return (self.person_id, self.identifier_type, self.identifier_value)

    @property
    def person_wide(self) -> bool:
        return not self.identifier_type

    @property
    def cancelled(self) -> bool:
        return self.override_person_id == self.person_id


def newest_per_key(overrides: Iterable[PersonOverride]) -> list[PersonOverride]:
    """The highest version of each key, so that a batch means the same whatever its order."""
    newest: dict[OverrideKey, PersonOverride] = {}
    for override in overrides:
        held = newest.get(override.key)
        if held is None or override.version > held.version:
            newest[override.key] = override
    return list(newest.values())


@dataclass(frozen=True)
class OverrideMapping:
    """The live (newest, not cancelled) overrides a read needs: those of every person whose stored events it
    may return. Empty means events are read as the person they were stored with."""

    overrides: tuple[PersonOverride, ...] = ()

    def rules(self) -> list[PersonOverride]:
        """The overrides in the order they must be tried on one event: identifier-scoped ones by decreasing
        version (ties by identifier), then person-wide ones. The first that matches the event's stored person
        (and, when scoped, one of its identifiers) gives the current person. store/relation.py's _BY_SOURCE
        (the analytics reads) sorts the same way."""
        scoped = sorted(
            (o for o in self.overrides if not o.person_wide),
            key=lambda o: (-o.version, o.identifier_type, o.identifier_value),
        )
        return [*scoped, *(o for o in self.overrides if o.person_wide)]

    def stored_persons_of(self, person_id: str) -> list[str]:
        """The stored person ids whose events may now read as `person_id`: itself and every person with an
        override pointing to it."""
        return [person_id, *sorted({o.person_id for o in self.pointing_to(person_id)})]

    def pointing_to(self, person_id: str) -> Sequence[PersonOverride]:
        return [o for o in self.overrides if o.override_person_id == person_id]
