"""Segments (audiences): definitions, the membership kept current, and the feed of entries and exits. Free of
protobuf and SQL: segments_converters.py converts, segment_registry.py runs the RPCs over a `SegmentStore`,
segment_evaluator.py keeps memberships current, store/segments.py and store/segment_evaluation.py hold the
SQL.

A person is a member of a segment when the segment's condition holds for them at the evaluation time (see
conditions.py). Memberships are evaluated again when the person's events or overrides change, when a
trailing window of the condition lapses, and in full on the evaluator's slower cadences; the freshness of
every answer says up to when events (`data_as_of`) and time (`windows_as_of`) are reflected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Protocol

from wayline_journeys.conditions import Condition, InSegment, nodes
from wayline_journeys.retention import RetentionPeriod

__all__ = [
    "NAME_PREFIX",
    "ChangeType",
    "Member",
    "MemberPage",
    "Membership",
    "MembershipChange",
    "SegmentDefinition",
    "SegmentFields",
    "SegmentState",
    "SegmentStatus",
    "SegmentStore",
    "cycle_through",
    "new_segment_id",
    "referenced",
]

NAME_PREFIX = "segments/"


class SegmentState(IntEnum):
    """Stored as their numbers; the contract's SegmentState has the same."""

    BUILDING = 1
    READY = 2
    FAILED = 3


class ChangeType(IntEnum):
    ENTERED = 1
    EXITED = 2


@dataclass(frozen=True)
class SegmentDefinition:
    """One stored revision of a segment. `condition` is the PersonCondition as protobuf JSON (the
    converters' business); `uid` names this lifetime of the id; `version` orders every write of the id."""

    tenant: str
    segment_id: str
    uid: str
    version: int
    revision: int
    condition_revision: int
    """The revision at which the condition last changed (a new condition is evaluated in full)."""
    display_name: str
    description: str
    condition: str
    refers: tuple[str, ...]
    """The ids of the segments the condition refers to, sorted."""
    create_time: datetime
    update_time: datetime
    deleted: bool = False

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}{self.segment_id}"

    @property
    def etag(self) -> str:
        return f"{self.revision}-{self.uid[:8]}"


@dataclass(frozen=True)
class SegmentStatus:
    state: SegmentState
    member_count: int = 0
    data_as_of: datetime | None = None
    windows_as_of: datetime | None = None
    last_full_evaluation_time: datetime | None = None
    error_message: str = ""


@dataclass(frozen=True)
class Member:
    person_id: str
    enter_time: datetime


@dataclass(frozen=True)
class MemberPage:
    members: list[Member]
    total_size: int
    more: bool


@dataclass(frozen=True)
class Membership:
    segment_id: str
    enter_time: datetime


@dataclass(frozen=True)
class MembershipChange:
    sequence: int
    segment_id: str
    person_id: str
    change_type: ChangeType
    change_time: datetime


@dataclass(frozen=True)
class SegmentFields:
    """The writable fields of a segment, validated: the condition as protobuf JSON, the ids it refers to."""

    display_name: str = ""
    description: str = ""
    condition: str = ""
    refers: tuple[str, ...] = ()


class SegmentStore(Protocol):
    def definition(self, tenant: str, segment_id: str) -> SegmentDefinition | None:
        """The live (not deleted) definition; None when there is none."""
        ...

    def latest(self, tenant: str, segment_id: str) -> SegmentDefinition | None:
        """The newest stored row of the id, deleted or not (its version orders the next write)."""
        ...

    def definitions(
        self, tenant: str, after: str = "", limit: int | None = None
    ) -> tuple[list[SegmentDefinition], int]:
        """Live definitions ordered by id after `after` (up to `limit`), and how many live ones there are."""
        ...

    def put(self, definition: SegmentDefinition) -> None: ...

    def statuses(self, tenant: str, definitions: Sequence[SegmentDefinition]) -> dict[str, SegmentStatus]:
        """Each definition's status with its member count, by segment id."""
        ...

    def members(self, tenant: str, uid: str, after: str, limit: int) -> MemberPage: ...

    def memberships(self, tenant: str, person_id: str, uids: Mapping[str, str]) -> list[Membership]:
        """The person's memberships among the segments of `uids` (uid → segment id)."""
        ...

    def changes(
        self, tenant: str, after: int, segment_id: str, limit: int
    ) -> tuple[list[MembershipChange], int]:
        """Up to `limit` changes after sequence `after` (of one segment id when given), oldest first, and the
        oldest sequence the feed retains (0 when it holds none)."""
        ...

    def change_counts(
        self,
        tenant: str,
        segment_id: str,
        *,
        start: datetime,
        end: datetime,
        period: RetentionPeriod,
        zone: str,
    ) -> dict[date, tuple[int, int]]:
        """(entries, exits) of the segment id's changes in [start, end), by the local date their period (in
        `zone`) begins on; periods without a change are missing."""
        ...


def new_segment_id() -> str:
    """A server-chosen id in the shape CreateSegment accepts."""
    return f"segment-{uuid.uuid4().hex[:16]}"


def referenced(condition: Condition) -> set[str]:
    """The ids of the segments the condition refers to."""
    return {c.segment_id for c in nodes(condition) if isinstance(c, InSegment)}


def cycle_through(segment_id: str, refers: set[str], graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A chain of ids from `segment_id` back to itself if it referred to `refers` while the other segments
    refer as `graph` says (id → ids it refers to); None when there is no cycle."""
    stack: list[tuple[str, list[str]]] = [(r, [segment_id, r]) for r in sorted(refers)]
    seen: set[str] = set()
    while stack:
        current, chain = stack.pop()
        if current == segment_id:
            return chain
        if current in seen:
            continue
        seen.add(current)
        stack.extend((n, [*chain, n]) for n in sorted(graph.get(current, ())))
    return None
