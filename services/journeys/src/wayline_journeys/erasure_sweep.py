"""Events of an erased person stored after their erasure, erased in turn.

Ingest receives an event, resolves it to its person, then delivers it to each sink; its resolver keeps a
resolution while its cache holds it (a second or two of a busy spool's events), for the other sinks and for
a delivery retried meanwhile. So identity can erase the person in between: the event reaches WriteEvents
stamped with the erased id after DeletePersonEvents returned, and would bring back data the erasure took.
Person ids are random and never given again (identity gives the identifiers of an erased profile a new
person), so such an event can only be one received before the erasure, and arrives soon after it.

Every erasure remembers the person and its time (PersonChanges) before deleting. Every `interval` the sweep
asks which persons erased within `window` have events stored again, and erases theirs received by their
erasure's time: those received after it are new (a person whose events alone were erased keeps their id).
Writes stay as they were: looking up every batch's persons cost a write 10 to 50 % more (docs/benchmarks.md),
where a sweep costs one read of a small table every interval. Such an event is readable until the next sweep.
The times compared are ingest's clock (`received_at`) and journeys' (the erasure's), which NTP keeps well
within a delivery's time of each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from wayline_journeys.background import Periodic

__all__ = ["ErasedPerson", "ErasedPersons", "LateEventSweep"]

log = structlog.get_logger("wayline.journeys.erasure_sweep")


@dataclass(frozen=True)
class ErasedPerson:
    tenant: str
    person_id: str
    erased_at: datetime  # their latest erasure


class ErasedPersons(Protocol):
    def stored_again(self, within: timedelta) -> list[ErasedPerson]:
        """The persons erased within the last `within` of whom some event is stored again."""
        ...


class LateEventSweep:
    """Thread-safe. `erase_again(tenant, person, received_by)` is PersonChanges.erase_again."""

    def __init__(
        self,
        erased: ErasedPersons,
        erase_again: Callable[[str, str, datetime], int],
        interval: float,
        window: float,
    ) -> None:
        """Every `interval` seconds (0: never, only when `sweep` is called), the persons erased in the last
        `window` seconds."""
        self._erased = erased
        self._erase_again = erase_again
        self._window = timedelta(seconds=window)
        self._periodic = Periodic(
            "journeys-erasure-sweep", interval, self.sweep, "journeys.erasure_sweep_failed"
        )

    def sweep(self) -> int:
        """Erase the events of recently erased persons stored after their erasure; how many."""
        erased = 0
        for person in self._erased.stored_again(self._window):
            found = self._erase_again(person.tenant, person.person_id, person.erased_at)
            if found:
                log.warning(
                    "journeys.erased_events_stored_after_the_erasure",
                    tenant=person.tenant,
                    person_id=person.person_id,
                    events=found,
                )
            erased += found
        return erased

    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()
