"""protobuf Timestamp ⇄ timezone-aware UTC datetime ⇄ epoch microseconds: the conversions every service
needs, in one place."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from wayline.common.errors import FieldViolation

__all__ = [
    "MAX_DURATION_SECONDS",
    "MAX_TIMESTAMP_SECONDS",
    "MIN_TIMESTAMP_SECONDS",
    "duration_violation",
    "from_micros",
    "now_us",
    "timestamp_violation",
    "to_datetime",
    "to_micros",
    "to_timestamp",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# google.protobuf.Timestamp's documented range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z (what
# ToDatetime and the stores' datetimes hold), and Duration's, about ±10,000 years.
MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS = -62_135_596_800, 253_402_300_799
MAX_DURATION_SECONDS = 315_576_000_000
_NANOS = 1_000_000_000


def timestamp_violation(ts: timestamp_pb2.Timestamp, path: str) -> FieldViolation | None:
    """Why `ts` is not a valid Timestamp (the field at `path`), or None. The wire carries any int64 seconds
    and int32 nanos; a service checks them before converting, so a caller's bad time is INVALID_ARGUMENT
    naming the field instead of an overflow deep in a store."""
    if not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS:
        return FieldViolation(path, "must lie between 0001-01-01 and 9999-12-31 (UTC)", "OUT_OF_RANGE")
    if not 0 <= ts.nanos < _NANOS:
        return FieldViolation(f"{path}.nanos", "must lie in [0, 999999999]", "OUT_OF_RANGE")
    return None


def duration_violation(duration: duration_pb2.Duration, path: str) -> FieldViolation | None:
    """Why `duration` is not a valid Duration (the field at `path`), or None: seconds within ±10,000 years,
    nanos within ±999,999,999 and of the seconds' sign."""
    seconds, nanos = duration.seconds, duration.nanos
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        return FieldViolation(path, "must lie within ±10,000 years", "OUT_OF_RANGE")
    if not -_NANOS < nanos < _NANOS or (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        why = "must lie in [-999999999, 999999999], with the seconds' sign"
        return FieldViolation(f"{path}.nanos", why, "OUT_OF_RANGE")
    return None


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (a datetime holds whole microseconds): the form stores and
    hot paths keep times in."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def now_us() -> int:
    """The wall clock in microseconds since the epoch: the default clock of the stores and loops that take
    one (tests give a fake one)."""
    return time.time_ns() // 1_000
