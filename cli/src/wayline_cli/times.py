"""How the CLI prints a protobuf time: UTC to the second, the way its tables and lines read."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from wayline.common.timestamps import to_datetime

__all__ = ["utc_text"]


def utc_text(value: timestamp_pb2.Timestamp) -> str:
    """`2026-12-05 09:22:49` (UTC); "—" for an unset time."""
    return to_datetime(value).strftime("%Y-%m-%d %H:%M:%S") if value.seconds or value.nanos else "—"
