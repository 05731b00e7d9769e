"""protobuf Timestamp ⇄ timezone-aware UTC datetime, the one conversion every service needs."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

__all__ = ["to_datetime", "to_timestamp"]


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts
