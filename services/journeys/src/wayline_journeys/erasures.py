"""What an erasure names: a person, and the identifiers whose events go with them (DeletePersonEvents and
BatchDeletePersonEvents, the feed's `erased` markers, the sweep of late events)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PersonToErase"]


@dataclass(frozen=True)
class PersonToErase:
    person_id: str
    identifiers: tuple[tuple[str, str], ...] = ()
    """Every event carrying one of them is erased too, whoever it reads as now (an event on a device unmerged
    from the person may still carry their user id)."""
