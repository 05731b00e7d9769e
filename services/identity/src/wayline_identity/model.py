"""Identity as the domain sees it: plain dataclasses, free of protobuf.

An identifier is a `(type, value)` pair after normalisation. A profile is one connected component of the
identifier graph: identifiers are its nodes and the edge log's active edges join them. Every edge was
recorded by the event (or the administrator) that first joined two components, so the active edges form a
forest, and removing one edge splits exactly one profile in two, which is what makes every merge undoable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "Conflict",
    "IgnoreReason",
    "IgnoredIdentifier",
    "Key",
    "MergeKind",
    "MergeRecord",
    "Override",
    "Profile",
    "ProfileIdentifier",
    "Resolution",
    "ResolutionInput",
    "ResolveOutcome",
]

Key = tuple[str, str]  # (type, normalised value)


class IgnoreReason(enum.Enum):
    BLOCKED_VALUE = "blocked_value"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_TYPE = "unknown_type"
    LIMIT_REACHED = "limit_reached"
    MERGE_BLOCKED = "merge_blocked"
    NON_LINKING_EVENT = "non_linking_event"


class MergeKind(enum.Enum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    UNMERGE = "unmerge"
    SPLIT = "split"


class ResolutionInput(NamedTuple):
    """The identifier set of one event, as sent. A named tuple, not a frozen dataclass: a batch makes a
    thousand of them, and a frozen dataclass's constructor costs several times a tuple's."""

    event_id: str
    time: int  # the event's timestamp, microseconds since the epoch
    event_type: str  # lower-case contract name without prefix: track, identify, alias, ...
    identifiers: tuple[Key, ...]
    previous_identifiers: tuple[Key, ...] = ()


@dataclass(frozen=True)
class IgnoredIdentifier:
    identifier: Key  # as sent
    reason: IgnoreReason


@dataclass(slots=True)
class Resolution:
    index: int
    event_id: str
    person_id: str
    person_created: bool
    identifiers: list[Key] = field(default_factory=list)  # used, normalised
    ignored: list[IgnoredIdentifier] = field(default_factory=list)


@dataclass(frozen=True)
class MergeRecord:
    merge_id: str
    kind: MergeKind
    target_person_id: str
    source_person_id: str
    identifier: Key | None
    event_id: str
    create_time: datetime
    actor: str = ""
    reason: str = ""
    reverted_merge_id: str = ""
    reverted_by_merge_id: str = ""


@dataclass(frozen=True)
class Override:
    """A person override (see person_override.proto): events stored with `person_id` (and carrying
    `identifier`, when set) belong to `override_person_id`."""

    person_id: str
    identifier: Key | None
    override_person_id: str
    version: int
    create_time: datetime
    merge_id: str
    erased: bool = False


@dataclass(frozen=True)
class Conflict:
    other_person_id: str
    identifier_type: str
    explanation: str
    first_event_id: str
    last_event_id: str
    first_time: datetime
    last_time: datetime
    event_count: int


@dataclass(frozen=True)
class ProfileIdentifier:
    identifier: Key
    first_seen: datetime
    last_seen: datetime
    first_event_id: str
    origin_person_id: str  # the person it was first recorded under (this profile or one merged into it)


@dataclass
class Profile:
    person_id: str
    identifiers: list[ProfileIdentifier]
    first_seen: datetime
    last_seen: datetime
    merged_person_ids: list[str]
    create_time: datetime
    update_time: datetime
    merge_history: list[MergeRecord] = field(default_factory=list)
    merge_history_truncated: bool = False
    conflicts: list[Conflict] = field(default_factory=list)
    # The last-seen time as stored, in microseconds (None: `last_seen`'s): where ListProfiles' next page
    # resumes. Past Timestamp's range (stored before ResolveIdentities checked times) `last_seen` holds the
    # range's end instead, which several such profiles share (ADR 78).
    last_seen_us: int | None = None
    # How many identifiers and merged person ids the profile holds: the lists hold the first of them only
    # (store/reads.py, PROFILE_LIST_LIMIT). None: the lists are whole.
    identifier_count: int | None = None
    merged_person_count: int | None = None


@dataclass(frozen=True)
class IdentifierPage:
    """A page of a profile's identifiers (ListProfileIdentifiers)."""

    person_id: str
    identifiers: list[ProfileIdentifier]
    total: int
    last_key: (
        tuple[int, int, str, str] | None
    )  # the last one's place (reads.identifier_order) when more follow


@dataclass
class ResolveOutcome:
    resolutions: list[Resolution]
    merges: list[MergeRecord]
    overrides: list[Override]
