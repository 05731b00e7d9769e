"""What one run of the interpreter works with — the transaction, the tenant, the entry and its version's
definition, the time, what it may ask other services — and the small computations of steps: durations,
split buckets, local times."""

from __future__ import annotations

import datetime
import hashlib
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wayline.common.sql import Transaction
from wayline.common.time_zones import first_showing
from wayline.common.timestamps import to_micros
from wayline_orchestrator.flows.model import Definition
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.model import Entry, StepRun, Timer
from wayline_orchestrator.flows.values import seconds, timestamp

__all__ = ["EPOCH", "SECOND", "Run", "local_due", "micros_of", "split_bucket", "us"]

SECOND = 1_000_000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def us(value: Any) -> int:
    """A JSON duration (`"90s"`) in microseconds; 0 when unset."""
    return round((seconds(value) or 0.0) * SECOND)


def micros_of(value: Any) -> int | None:
    """A JSON timestamp in microseconds since the epoch; None when unset."""
    moment = timestamp(value)
    return None if moment is None else (moment - EPOCH) // datetime.timedelta(microseconds=1)


def split_bucket(flow_id: str, step_id: str, person_id: str) -> float:
    """The person's place in [0, 100) for a split: a hash of the flow, the step and the person, so a retry
    (or a re-entry) lands in the same variant."""
    digest = hashlib.sha256(f"{flow_id}\x1f{step_id}\x1f{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def local_due(now: int, hour: int, minute: int, zone: str) -> int:
    """The next time after `now` that the clocks of a time zone reach a local time of day: on each local day,
    the first instant they show it or later. So a time they skip that day (the hour skipped in spring) is due
    when they jump over it, and one they show twice (the hour repeated in autumn) at its first instant."""
    tz = zoneinfo.ZoneInfo(zone or "UTC")
    today = (EPOCH + datetime.timedelta(microseconds=now)).astimezone(tz).date()
    for days in range(3):  # today's may have passed; tomorrow's has not, whatever the clocks do
        due = to_micros(first_showing(today + datetime.timedelta(days=days), datetime.time(hour, minute), tz))
        if due > now:
            return due
    raise AssertionError("a local time of day comes within two days")  # pragma: no cover


@dataclass
class Run:
    """One run over an entry: what it reads and where it writes."""

    tx: Transaction
    tenant: str
    definition: Definition
    entry: Entry
    now: int
    lookups: Lookups = field(default_factory=Lookups)  # the run's: decisions answered outside its transaction
    # What the run adds, written together when it ends (Interpreter._written): its timers and step runs.
    timers: list[Timer] = field(default_factory=list)
    step_runs: list[StepRun] = field(default_factory=list)

    def traits(self, keys: Sequence[str]) -> Mapping[str, Any]:
        """The entry's person's traits among `keys` (matching.Traits), asked of the run's lookups."""
        return self.lookups.person.properties(self.tenant, self.entry.person_id, keys)

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return {step["id"]: step for step in self.definition.get("steps", [])}
