"""Errors of the journeys service."""

from __future__ import annotations

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from wayline.common.paging import InvalidPageToken

__all__ = [
    "CursorExpired",
    "EtagMismatch",
    "InvalidPageToken",
    "PersonNotFound",
    "QueryTooLarge",
    "SegmentAlreadyExists",
    "SegmentCycle",
    "SegmentInUse",
    "SegmentNotFound",
    "StoreUnavailable",
]


class StoreUnavailable(Unavailable):
    default_reason = "CLICKHOUSE_UNAVAILABLE"


class PersonNotFound(NotFound):
    """An identifier that no stored event carries (a person id is taken as it is instead)."""

    default_reason = "PERSON_NOT_FOUND"


class QueryTooLarge(ResourceExhausted):
    """A query would produce or scan more than the service allows; narrowing it helps, retrying does not."""

    default_reason = "QUERY_TOO_LARGE"


class SegmentNotFound(NotFound):
    default_reason = "SEGMENT_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} does not exist", metadata={"segment": name})


class SegmentAlreadyExists(AlreadyExists):
    default_reason = "SEGMENT_ALREADY_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} exists already; choose another segment_id", metadata={"segment": name})


class SegmentCycle(FailedPrecondition):
    """Segment references would form a cycle (a segment would depend on its own membership)."""

    default_reason = "SEGMENT_CYCLE"


class SegmentInUse(FailedPrecondition):
    """A segment other segments refer to cannot be deleted before they stop referring to it."""

    default_reason = "SEGMENT_IN_USE"


class EtagMismatch(Aborted):
    default_reason = "ETAG_MISMATCH"

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} has changed since its etag was read; read it again and retry")


class CursorExpired(FailedPrecondition):
    """A change-feed position older than the feed's retention: resynchronise from the current members."""

    default_reason = "CURSOR_EXPIRED"
