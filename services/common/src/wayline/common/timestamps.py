"""protobuf Timestamp ⇄ timezone-aware UTC datetime ⇄ epoch microseconds: the conversions every service
needs, in one place."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

__all__ = ["from_micros", "now_us", "to_datetime", "to_micros", "to_timestamp"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


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
