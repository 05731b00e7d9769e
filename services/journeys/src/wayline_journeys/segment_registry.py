"""The segment RPCs over a SegmentStore: definitions with their revisions, etags and references checked, and
the reads of memberships and of the change feed with their freshness. Free of protobuf (segments_converters.py
converts requests and answers).

Writes within one replica are serialised (a lock), so each gets the next version and the reference checks
see every earlier write; of two writes to one segment on two replicas at once, one wins (as for lifecycle
models).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.paging import invalid_page_token
from wayline_journeys.errors import (
    CursorExpired,
    EtagMismatch,
    SegmentAlreadyExists,
    SegmentCycle,
    SegmentInUse,
    SegmentNotFound,
)
from wayline_journeys.retention import (
    CALENDAR_END,
    CALENDAR_START,
    RetentionPeriod,
    period_start,
    period_starts,
    within_calendar,
)
from wayline_journeys.segments import (
    NAME_PREFIX,
    MemberPage,
    Membership,
    MembershipChange,
    SegmentDefinition,
    SegmentFields,
    SegmentState,
    SegmentStatus,
    SegmentStore,
    cycle_through,
    new_segment_id,
)

__all__ = [
    "MAX_COUNT_PERIODS",
    "ChangeCount",
    "ChangeCounts",
    "ChangePage",
    "Freshness",
    "Segments",
    "freshness",
]

WRITABLE = ("display_name", "description", "condition")
MAX_COUNT_PERIODS = 400
CHANGE_RETENTION = timedelta(days=30)
"""How long the change feed keeps changes (store/segment_tables.py's TTL): the default span of the counts."""


@dataclass(frozen=True)
class Freshness:
    data_as_of: datetime | None = None
    windows_as_of: datetime | None = None


def freshness(statuses: Iterable[SegmentStatus]) -> Freshness:
    """The oldest freshness among the segments (failed ones, which are not updated, left out); unset while
    one of them is building, or when there is none."""
    considered = [s for s in statuses if s.state is not SegmentState.FAILED]
    if not considered or any(s.data_as_of is None or s.windows_as_of is None for s in considered):
        return Freshness()
    return Freshness(
        min(s.data_as_of for s in considered if s.data_as_of is not None),
        min(s.windows_as_of for s in considered if s.windows_as_of is not None),
    )


@dataclass(frozen=True)
class ChangePage:
    changes: list[MembershipChange]
    more: bool
    freshness: Freshness


@dataclass(frozen=True)
class ChangeCount:
    period_start: datetime
    entered: int
    exited: int


@dataclass(frozen=True)
class ChangeCounts:
    counts: list[ChangeCount]
    """One per period overlapping the range, oldest first, zeros included."""
    freshness: Freshness


class Segments:
    """`on_change` is told of every write (the evaluator wakes up to build a new condition at once)."""

    def __init__(
        self,
        store: SegmentStore,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()

    def _live(self, tenant: str, segment_id: str) -> SegmentDefinition:
        found = self._store.definition(tenant, segment_id)
        if found is None:
            raise SegmentNotFound(f"{NAME_PREFIX}{segment_id}")
        return found

    def _check_references(self, tenant: str, segment_id: str, refers: Sequence[str]) -> None:
        """NOT_FOUND for a referenced segment that does not exist; FAILED_PRECONDITION for a cycle."""
        if not refers:
            return
        others = {
            d.segment_id: d.refers for d in self._store.definitions(tenant)[0] if d.segment_id != segment_id
        }
        for missing in sorted(set(refers) - set(others)):
            raise SegmentNotFound(f"{NAME_PREFIX}{missing}")
        cycle = cycle_through(segment_id, set(refers), others)
        if cycle is not None:
            raise SegmentCycle(
                "segment references would form a cycle: " + " -> ".join(f"{NAME_PREFIX}{c}" for c in cycle)
            )

    def _stored(self, definition: SegmentDefinition) -> tuple[SegmentDefinition, SegmentStatus]:
        self._store.put(definition)
        self._on_change()
        return definition, self._store.statuses(definition.tenant, [definition])[definition.segment_id]

    def _new(self, tenant: str, segment_id: str, fields: SegmentFields) -> SegmentDefinition:
        """The definition a creation would store, under the lock; refused as a creation would be."""
        latest = self._store.latest(tenant, segment_id)
        if latest is not None and not latest.deleted:
            raise SegmentAlreadyExists(f"{NAME_PREFIX}{segment_id}")
        self._check_references(tenant, segment_id, fields.refers)
        now = self._clock()
        return SegmentDefinition(
            tenant=tenant, segment_id=segment_id, uid=str(uuid.uuid4()),
            version=(latest.version if latest else 0) + 1, revision=1, condition_revision=1,
            display_name=fields.display_name, description=fields.description,
            condition=fields.condition, refers=fields.refers, create_time=now, update_time=now,
        )  # fmt: skip

    def create(
        self, tenant: str, segment_id: str, fields: SegmentFields
    ) -> tuple[SegmentDefinition, SegmentStatus]:
        with self._lock:
            return self._stored(self._new(tenant, segment_id or new_segment_id(), fields))

    def check_create(self, tenant: str, segment_id: str, fields: SegmentFields) -> SegmentDefinition:
        """What `create` would store, checked as it checks (the id free, the references, no cycle), without
        storing anything (CreateSegment's validate_only)."""
        with self._lock:
            return self._new(tenant, segment_id or new_segment_id(), fields)

    def get(self, tenant: str, segment_id: str) -> tuple[SegmentDefinition, SegmentStatus]:
        definition = self._live(tenant, segment_id)
        return definition, self._store.statuses(tenant, [definition])[segment_id]

    def page(
        self, tenant: str, after: str, limit: int
    ) -> tuple[list[tuple[SegmentDefinition, SegmentStatus]], int, bool]:
        """A page of segments by id after `after`, the number of segments, and whether more follow."""
        definitions, total = self._store.definitions(tenant, after, limit + 1)
        page = definitions[:limit]
        statuses = self._store.statuses(tenant, page)
        return [(d, statuses[d.segment_id]) for d in page], total, len(definitions) > limit

    def _changed(
        self, tenant: str, segment_id: str, fields: SegmentFields, mask: Sequence[str], etag: str
    ) -> SegmentDefinition:
        """The definition an update would store, under the lock; refused as an update would be."""
        paths = set(mask or WRITABLE)
        current = self._live(tenant, segment_id)
        if etag and etag != current.etag:
            raise EtagMismatch(current.name)
        changed = replace(
            current,
            version=current.version + 1,
            revision=current.revision + 1,
            update_time=self._clock(),
            display_name=fields.display_name if "display_name" in paths else current.display_name,
            description=fields.description if "description" in paths else current.description,
        )
        if "condition" in paths and fields.condition != current.condition:
            self._check_references(tenant, segment_id, fields.refers)
            changed = replace(
                changed, condition=fields.condition, refers=fields.refers, condition_revision=changed.revision
            )
        return changed

    def update(
        self, tenant: str, segment_id: str, fields: SegmentFields, mask: Sequence[str], etag: str
    ) -> tuple[SegmentDefinition, SegmentStatus]:
        """Change the fields in `mask` (every writable field when empty)."""
        with self._lock:
            return self._stored(self._changed(tenant, segment_id, fields, mask, etag))

    def check_update(
        self, tenant: str, segment_id: str, fields: SegmentFields, mask: Sequence[str], etag: str
    ) -> SegmentDefinition:
        """What `update` would store, checked as it checks, without storing anything (UpdateSegment's
        validate_only)."""
        with self._lock:
            return self._changed(tenant, segment_id, fields, mask, etag)

    def delete(self, tenant: str, segment_id: str, etag: str) -> None:
        with self._lock:
            current = self._live(tenant, segment_id)
            if etag and etag != current.etag:
                raise EtagMismatch(current.name)
            users = sorted(d.name for d in self._store.definitions(tenant)[0] if segment_id in d.refers)
            if users:
                raise SegmentInUse(f"{current.name} is referred to by {', '.join(users)}; change those first")
            self._store.put(
                replace(current, version=current.version + 1, update_time=self._clock(), deleted=True)
            )
            self._on_change()

    def members(
        self, tenant: str, segment_id: str, after: str, limit: int, uid: str = ""
    ) -> tuple[SegmentDefinition, SegmentStatus, MemberPage]:
        """A page of current members by person id; `uid`, from a page token, must name the segment's current
        lifetime (a token of a segment deleted and created again since is refused)."""
        definition, status = self.get(tenant, segment_id)
        if uid and uid != definition.uid:
            raise invalid_page_token("ListSegmentMembers")
        return definition, status, self._store.members(tenant, definition.uid, after, limit)

    def memberships(
        self, tenant: str, person_id: str, segment_ids: Sequence[str]
    ) -> tuple[list[Membership], Freshness]:
        """The person's current segments among `segment_ids` (every segment when empty), by segment id."""
        if segment_ids:
            definitions = [self._live(tenant, s) for s in dict.fromkeys(segment_ids)]
        else:
            definitions = self._store.definitions(tenant)[0]
        statuses = self._store.statuses(tenant, definitions)
        found = self._store.memberships(tenant, person_id, {d.uid: d.segment_id for d in definitions})
        return found, freshness(statuses.values())

    def changes(self, tenant: str, after: int, segment_id: str, limit: int) -> ChangePage:
        """Changes after sequence `after` (of one segment when given), oldest first."""
        definitions = [self._live(tenant, segment_id)] if segment_id else self._store.definitions(tenant)[0]
        statuses = self._store.statuses(tenant, definitions)
        changes, oldest = self._store.changes(tenant, after, segment_id, limit + 1)
        if after > 0 and oldest > after + 1:
            raise CursorExpired(
                f"changes after sequence {after} are no longer retained (the oldest is {oldest}); read the "
                "current members with ListSegmentMembers and follow the feed from its head"
            )
        return ChangePage(changes[:limit], len(changes) > limit, freshness(statuses.values()))

    def change_counts(
        self,
        tenant: str,
        segment_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        period: RetentionPeriod,
        zone: str,
    ) -> ChangeCounts:
        """Entries and exits of the segment per period of [start, end): an unset end is now, an unset start
        the feed's retention before the end. INVALID_ARGUMENT for more than MAX_COUNT_PERIODS periods."""
        definition, status = self.get(tenant, segment_id)
        end = end or self._clock()
        start = start or end - CHANGE_RETENTION
        if start >= end:
            raise InvalidArgument(
                "the time range is empty",
                [FieldViolation("time_range", "start must be before end", "INVALID_RANGE")],
            )
        if not within_calendar(start, end):
            raise InvalidArgument(
                "the time range is outside the calendar",
                [
                    FieldViolation(
                        "time_range",
                        f"must lie between {CALENDAR_START:%Y-%m-%d} and {CALENDAR_END:%Y-%m-%d}",
                        "OUT_OF_RANGE",
                    )
                ],
            )
        local_zone = ZoneInfo(zone)
        starts = period_starts(start, end, period, local_zone, MAX_COUNT_PERIODS)
        if len(starts) > MAX_COUNT_PERIODS:
            raise InvalidArgument(
                f"the time range spans more than {MAX_COUNT_PERIODS} periods",
                [
                    FieldViolation(
                        "time_range",
                        f"spans more than {MAX_COUNT_PERIODS} periods; narrow it or count in longer periods",
                        "OUT_OF_RANGE",
                    )
                ],
            )
        found = self._store.change_counts(
            tenant, definition.segment_id, start=start, end=end, period=period, zone=zone
        )
        counts = [
            ChangeCount(period_start(local, period, 0, local_zone), *found.get(local, (0, 0)))
            for local in starts
        ]
        return ChangeCounts(counts, freshness([status]))
