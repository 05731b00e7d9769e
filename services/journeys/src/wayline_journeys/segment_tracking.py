"""What the segment evaluator (segment_evaluator.py) keeps between passes, and the store it works on.

Per tenant: its segments with what their last full evaluation established, how far the passes have read
(`scanned_at`, `windows_at`), the change feed's last sequence, the lifecycle model its segments were last
evaluated with, and the measured cost of evaluating everyone against evaluating given persons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from wayline_journeys.conditions import (
    Condition,
    CustomerValue,
    EventAggregate,
    EventCount,
    ValueMetric,
    nodes,
)
from wayline_journeys.conditions import (
    Sequence as SequenceCondition,
)
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.segments import SegmentDefinition, SegmentState
from wayline_journeys.store.segment_evaluation import StatusRow, StoredChange

__all__ = ["EvaluationStore", "TrackedSegment", "TrackedTenant", "levels", "windows"]


class EvaluationStore(Protocol):
    def live_definitions(self) -> list[SegmentDefinition]: ...
    def sequence_heads(self, tenants: Sequence[str]) -> dict[str, int]: ...
    def members_outside(self, live_uids: Sequence[str]) -> list[tuple[str, str, str, str]]: ...
    def dirty(
        self, since: Mapping[str, datetime], crossings: Mapping[str, Sequence[tuple[datetime, datetime]]]
    ) -> dict[str, set[str]]: ...
    def differences(
        self,
        tenant: str,
        conditions: Mapping[str, Condition],
        lifecycle: LifecycleModel | None,
        at: datetime,
        persons: Sequence[str] | None,
    ) -> list[tuple[str, str, bool]]: ...
    def write(self, tenant: str, changes: Sequence[StoredChange]) -> None: ...
    def write_status(self, rows: Sequence[StatusRow]) -> None: ...
    def mark_dirty(self, tenant: str, persons: Sequence[str]) -> None: ...


@dataclass
class TrackedSegment:
    definition: SegmentDefinition
    condition: Condition | None
    evaluated: int = 0
    """The condition revision whose full evaluation completed (0: none since start)."""
    state: SegmentState = SegmentState.BUILDING
    full_at: datetime | None = None
    error: str = ""
    written: tuple[object, ...] | None = None
    """What its last status row said (a row is written when this changes)."""

    def uses(self, kind: type) -> bool:
        return self.condition is not None and any(isinstance(c, kind) for c in nodes(self.condition))

    @property
    def ranks(self) -> bool:
        """RFM ranks move with every purchaser's events and with time: re-evaluated in full."""
        return self.condition is not None and any(
            isinstance(c, CustomerValue) and c.metric is ValueMetric.RFM_SEGMENT
            for c in nodes(self.condition)
        )


@dataclass
class TrackedTenant:
    sequence: int
    scanned_at: datetime | None = None
    windows_at: datetime | None = None
    model: LifecycleModel | None = None
    segments: dict[str, TrackedSegment] = field(default_factory=dict)
    full_seconds: float | None = None
    """How long the last evaluation in full took."""
    person_seconds: float | None = None
    """How long the last evaluation of given persons took, per person."""

    def cheaper_in_full(self, persons: int) -> bool:
        """Whether evaluating everyone is likely cheaper than evaluating `persons` persons: finding a person's
        events costs more than reading them in a full scan, so on a small store, or with many persons to
        evaluate, the full evaluation wins (the measured durations decide)."""
        if self.full_seconds is None or self.person_seconds is None:
            return False
        return self.person_seconds * persons > self.full_seconds


def windows(conditions: Iterable[Condition]) -> set[timedelta]:
    """The trailing windows of the conditions: a membership can change when an event crosses one."""
    found = {timedelta(0)}  # events dated in the future come due
    for condition in conditions:
        for c in nodes(condition):
            windowed = EventCount | EventAggregate | SequenceCondition | CustomerValue
            if isinstance(c, windowed) and c.window is not None:
                found.add(c.window)
    return found


def levels(segments: Mapping[str, TrackedSegment]) -> list[list[TrackedSegment]]:
    """The segments (by id) in groups, each after every segment it refers to."""
    depth: dict[str, int] = {}

    def level(segment_id: str, seen: frozenset[str]) -> int:
        if segment_id not in depth:
            refers = [r for r in segments[segment_id].definition.refers if r in segments and r not in seen]
            depth[segment_id] = 1 + max((level(r, seen | {r}) for r in refers), default=-1)
        return depth[segment_id]

    grouped: dict[int, list[TrackedSegment]] = {}
    for segment_id in sorted(segments):
        grouped.setdefault(level(segment_id, frozenset({segment_id})), []).append(segments[segment_id])
    return [grouped[k] for k in sorted(grouped)]
