"""What the segment triggers read of the journeys service, as a protocol: the feed of a segment's membership
changes after a position (ListSegmentMembershipChanges) and its current members page by page
(ListSegmentMembers). The gRPC client (`journeys_segments.py`) implements it; the poller and the schedules
see only this, so they are free of gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CursorExpired", "FeedUnavailable", "MembershipChange", "SegmentFeed", "SegmentMissing"]


@dataclass(frozen=True)
class MembershipChange:
    """One entry into (`entered`) or exit from a segment, at its tenant-wide feed position `sequence`;
    `time` in microseconds since the epoch."""

    sequence: int
    segment: str
    person_id: str
    entered: bool
    time: int


class FeedUnavailable(Exception):
    """The journeys service could not answer (down, timed out, overloaded): retried after a backoff."""


class CursorExpired(Exception):
    """The position is older than the feed's retention: the changes after it are partly gone."""


class SegmentMissing(Exception):
    """The segment does not exist (deleted, or never created)."""


class SegmentFeed(Protocol):
    def changes(
        self, tenant: str, segment: str, after_sequence: int, limit: int
    ) -> tuple[Sequence[MembershipChange], bool]:
        """The segment's changes after the position, oldest first, at most `limit`, and whether more
        follow."""
        ...

    def members(self, tenant: str, segment: str, page_token: str, limit: int) -> tuple[Sequence[str], str]:
        """A page of the segment's current members' person ids (by person id) and the next page's token ('':
        the last page)."""
        ...
