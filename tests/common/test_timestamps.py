"""Timestamp and Duration checks: the protobuf types' documented ranges, named by field path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.timestamps import (
    MAX_DURATION_SECONDS,
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    duration_violation,
    timestamp_violation,
    to_datetime,
)


def test_the_range_is_what_protobuf_converts() -> None:
    assert to_datetime(Timestamp(seconds=MIN_TIMESTAMP_SECONDS)) == datetime(1, 1, 1, tzinfo=UTC)
    last = to_datetime(Timestamp(seconds=MAX_TIMESTAMP_SECONDS, nanos=999_999_999))
    assert last == datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    for seconds in (MIN_TIMESTAMP_SECONDS - 1, MAX_TIMESTAMP_SECONDS + 1):
        with pytest.raises(ValueError, match="Timestamp is not valid"):
            to_datetime(Timestamp(seconds=seconds))


@pytest.mark.parametrize(
    ("ts", "field"),
    [
        (Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1), "e.at"),
        (Timestamp(seconds=MIN_TIMESTAMP_SECONDS - 1), "e.at"),
        (Timestamp(seconds=2**62), "e.at"),
        (Timestamp(seconds=0, nanos=-1), "e.at.nanos"),
        (Timestamp(seconds=0, nanos=1_000_000_000), "e.at.nanos"),
    ],
)
def test_an_invalid_timestamp_is_named(ts: Timestamp, field: str) -> None:
    violation = timestamp_violation(ts, "e.at")
    assert violation is not None
    assert (violation.field, violation.reason) == (field, "OUT_OF_RANGE")


@pytest.mark.parametrize(
    "ts",
    [
        Timestamp(),
        Timestamp(seconds=MIN_TIMESTAMP_SECONDS),
        Timestamp(seconds=MAX_TIMESTAMP_SECONDS, nanos=999_999_999),
    ],
)
def test_a_valid_timestamp_passes(ts: Timestamp) -> None:
    assert timestamp_violation(ts, "at") is None


@pytest.mark.parametrize(
    ("duration", "field"),
    [
        (Duration(seconds=MAX_DURATION_SECONDS + 1), "w"),
        (Duration(seconds=-MAX_DURATION_SECONDS - 1), "w"),
        (Duration(seconds=1, nanos=-5), "w.nanos"),
        (Duration(seconds=-1, nanos=5), "w.nanos"),
        (Duration(nanos=1_000_000_000), "w.nanos"),
    ],
)
def test_an_invalid_duration_is_named(duration: Duration, field: str) -> None:
    violation = duration_violation(duration, "w")
    assert violation is not None
    assert violation.field == field


@pytest.mark.parametrize(
    "duration",
    [
        Duration(),
        Duration(seconds=-3, nanos=-5),
        Duration(seconds=MAX_DURATION_SECONDS),
        Duration(nanos=-999_999_999),
    ],
)
def test_a_valid_duration_passes(duration: Duration) -> None:
    assert duration_violation(duration, "w") is None
