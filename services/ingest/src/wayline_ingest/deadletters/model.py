"""Dead letters as the store and its callers see them: records, filters, the page cursor and the errors.

Free of protobuf, so the store can be tested and reasoned about without the wire types; `converters.py`
maps these to and from `wayline.ingest.v1`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from wayline.common.errors import FieldViolation, InvalidArgument, NotFound
from wayline.common.paging import InvalidPageToken, decode_page_token, encode_page_token, invalid_page_token

__all__ = [
    "MAX_REPLAY_NAMES",
    "SINKS",
    "DeadLetterFilter",
    "DeadLetterNotFound",
    "DeadLetterPage",
    "DeadLetterRecord",
    "DeadLetterState",
    "EventKeys",
    "InvalidDeadLetterRequest",
    "PageCursor",
]

# The sinks a dead letter may belong to, in the order of the wire enum `Sink` (1..4).
SINKS = ("identity", "journeys", "decision", "orchestrator")
# A replay by name is bounded so that one call's payloads fit in memory and in one spool record.
MAX_REPLAY_NAMES = 1000


class DeadLetterState(Enum):
    PENDING = "pending"
    REPLAYED = "replayed"


class InvalidDeadLetterRequest(InvalidArgument):
    default_reason = "INVALID_DEAD_LETTER_REQUEST"


class DeadLetterNotFound(NotFound):
    default_reason = "DEAD_LETTER_NOT_FOUND"


@dataclass(frozen=True)
class EventKeys:
    """What the store indexes of a parked event: its id, name, person and identifiers (type, value)."""

    event_id: str
    name: str = ""
    person_id: str = ""
    identifiers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DeadLetterRecord:
    """One stored dead letter; `payload` is the serialised Event exactly as it was parked."""

    id: str
    tenant: str
    sink: str
    event_id: str
    event_name: str
    person_id: str
    state: DeadLetterState
    error_code: str
    error_reason: str
    error_message: str
    error_field: str
    attempt_count: int
    replay_count: int
    first_attempt_time: datetime
    dead_letter_time: datetime
    replay_time: datetime | None
    payload: bytes


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a list or replay covers; None or "" does not filter. `start` is inclusive and
    `end` exclusive, both on `dead_letter_time`."""

    sink: str | None = None
    state: DeadLetterState | None = None
    start: datetime | None = None
    end: datetime | None = None
    event_name: str = ""
    error_code: str = ""
    error_reason: str = ""

    def __post_init__(self) -> None:
        if self.sink is not None and self.sink not in SINKS:
            raise InvalidDeadLetterRequest(
                f"unknown sink {self.sink!r}",
                [FieldViolation("filter.sink", f"not one of {', '.join(SINKS)}")],
            )
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidDeadLetterRequest(
                "the dead-letter time range is empty",
                [FieldViolation("filter.dead_letter_time_range", "start must be before end")],
            )

    def digest(self) -> str:
        """A short fingerprint, so a page token is only accepted with the filter it was issued for."""
        parts = [
            self.sink or "",
            self.state.value if self.state else "",
            self.start.isoformat() if self.start else "",
            self.end.isoformat() if self.end else "",
            self.event_name,
            self.error_code,
            self.error_reason,
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageCursor:
    """Where a page ended: keyset paging on (dead_letter_time, id), newest first, bound to its filter."""

    dead_letter_time_us: int
    id: str
    filter_digest: str

    def encode(self) -> str:
        return encode_page_token({"t": self.dead_letter_time_us, "i": self.id, "f": self.filter_digest})

    @classmethod
    def decode(cls, token: str, dead_letter_filter: DeadLetterFilter) -> PageCursor:
        """The cursor in `token`; INVALID_ARGUMENT when it is not ours or was issued for another filter."""
        raw = decode_page_token(token, "ListDeadLetters")
        try:
            cursor = cls(dead_letter_time_us=int(raw["t"]), id=str(raw["i"]), filter_digest=str(raw["f"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise invalid_page_token("ListDeadLetters") from exc
        if cursor.filter_digest != dead_letter_filter.digest():
            raise InvalidPageToken(
                "page_token was issued for another filter; list again from the first page",
                [FieldViolation("page_token", "issued for a different filter", reason="FILTER_CHANGED")],
            )
        return cursor


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of dead letters, the most recently parked first."""

    dead_letters: list[DeadLetterRecord]
    next_page_token: str
    total_size: int
