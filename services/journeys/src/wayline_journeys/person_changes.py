"""Identity's changes to persons, carried out on journeys' stores: overrides recorded, persons erased.

One place for what ApplyPersonOverrides, DeletePersonEvents and the override-feed follower do, so that an
override means the same whichever path brings it. An override with `erased` set is not recorded: the person's
events are erased exactly as DeletePersonEvents erases them. Overrides are taken by increasing version and cut
into runs of erasures and runs to record, applied in that order, which gives what applying them one by one
would (a run to record keeps the newest version per key, see `newest_per_key`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Protocol

from wayline_journeys.erasures import PersonToErase
from wayline_journeys.overrides import OverrideMapping, PersonOverride
from wayline_journeys.store.overrides import PersonOverrideStore

__all__ = ["AppliedChanges", "ErasedPersonsMemory", "EventErasure", "PersonChanges", "runs"]


@dataclass(frozen=True)
class AppliedChanges:
    applied_count: int
    """Overrides recorded because newer than their key's version, plus erasures that deleted anything."""
    max_version: int
    """The tenant's highest recorded override version after the call (erasure markers are not recorded)."""


def runs(overrides: Iterable[PersonOverride]) -> list[tuple[bool, list[PersonOverride]]]:
    """`overrides` by increasing version (stable for ties), cut into runs: (True, erasures) or (False,
    overrides to record)."""
    ordered = sorted(overrides, key=lambda o: o.version)
    return [(erased, list(run)) for erased, run in groupby(ordered, key=lambda o: o.erased)]


class EventErasure(Protocol):
    def erase_persons(
        self,
        tenant: str,
        persons: Sequence[PersonToErase],
        mapping: OverrideMapping,
        received_by: datetime | None = None,
    ) -> list[int]:
        """Erase every event that reads as one of `persons` through `mapping` or carries one of their
        identifiers, of those received by `received_by` if set; how many for each person."""
        ...


class ErasedPersonsMemory(Protocol):
    def remember(self, tenant: str, person_ids: Sequence[str]) -> None:
        """Record that `person_ids` are erased now, before their events are deleted."""
        ...


class PersonChanges:
    """Thread-safe as the stores it is given."""

    def __init__(
        self,
        events: EventErasure,
        overrides: PersonOverrideStore,
        erased: ErasedPersonsMemory,
        on_erased: Callable[[str, Sequence[str]], None] = lambda tenant, persons: None,
    ) -> None:
        """`erased` remembers every erased person, so that an event of theirs stored after the erasure is
        erased too (erasure_sweep.py); `on_erased` is told of every erased person (segments evaluate their
        memberships again: an erasure writes no event that would make them)."""
        self._events = events
        self._overrides = overrides
        self._erased = erased
        self._on_erased = on_erased
        # One erasure at a time in this process: identity's call and the feed's marker erase the same person
        # at about the same time, and one that started second must not answer done (finding the events
        # already masked) while the first is still deleting their copies; lightweight DELETEs running side
        # by side on one table are also where a mask has been seen lost (store/erasure.py).
        self._erasing = threading.Lock()

    def apply(self, tenant: str, overrides: Sequence[PersonOverride]) -> AppliedChanges:
        """Record `overrides` and carry out the erasures among them, in version order (a run of erasures
        together, as BatchDeletePersonEvents erases its persons)."""
        applied = 0
        max_version: int | None = None
        for erasures, run in runs(overrides):
            if erasures:
                persons = [PersonToErase(p) for p in dict.fromkeys(marker.person_id for marker in run)]
                deleted, forgotten = self._erase(tenant, persons)
                applied += sum(
                    1 for p, n in zip(persons, deleted, strict=True) if n or p.person_id in forgotten
                )
                max_version = None
            else:
                recorded, max_version = self._overrides.apply(tenant, run)
                applied += recorded
        if max_version is None:
            max_version = self._overrides.max_version(tenant)
        return AppliedChanges(applied, max_version)

    def erase(self, tenant: str, persons: Sequence[PersonToErase]) -> list[int]:
        """Erase every event that reads as one of `persons` or carries one of their identifiers, and the
        overrides pointing to them; how many events for each person, in order."""
        deleted, _ = self._erase(tenant, persons)
        return deleted

    def erase_again(self, tenant: str, person_id: str, received_by: datetime) -> int:
        """Erase the events of an erased person received by `received_by` (their erasure's time) that were
        stored after it (erasure_sweep.py); how many."""
        deleted, _ = self._erase(tenant, [PersonToErase(person_id)], received_by=received_by)
        return deleted[0]

    def _erase(
        self, tenant: str, persons: Sequence[PersonToErase], received_by: datetime | None = None
    ) -> tuple[list[int], set[str]]:
        """How many events for each person, and the persons some override pointed to (now forgotten)."""
        with self._erasing:
            return self._erase_alone(tenant, persons, received_by)

    def _erase_alone(
        self, tenant: str, persons: Sequence[PersonToErase], received_by: datetime | None
    ) -> tuple[list[int], set[str]]:
        person_ids = list(dict.fromkeys(p.person_id for p in persons))
        if received_by is None:
            # Remembered before anything is deleted, so that an event of a person received before now and
            # stored after the deletes is erased too (erasure_sweep.py).
            self._erased.remember(tenant, person_ids)
        mapping = self._overrides.mapping_for_persons(tenant, person_ids)
        # Events first, then the overrides that route events to the persons: if the call fails between the
        # two, a retry still finds the same events through the same overrides (and erases none twice).
        deleted = self._events.erase_persons(tenant, persons, mapping, received_by)
        self._overrides.forget_pointing_to(tenant, set(person_ids), mapping)
        if received_by is None or any(deleted):
            self._on_erased(tenant, person_ids)
        return deleted, {p for p in person_ids if mapping.pointing_to(p)}
