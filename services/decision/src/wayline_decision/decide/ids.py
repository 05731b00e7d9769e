"""Decision ids: UUIDv7 (RFC 9562), so ids sort by creation time (traces are stored and scanned in that
order) and need no coordination between replicas. Python 3.11's `uuid` has no uuid7 yet."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["uuid7"]


def uuid7(unix_ms: int | None = None) -> str:
    """48 bits of Unix milliseconds, the version (7), 74 random bits and the variant."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    random = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (random >> 68 & 0xFFF) << 64 | 0b10 << 62
    value |= random & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
