"""Counters of what the client did, for dashboards, tests and "did my events go out?" questions.

They are the client's own view (calls made, events acknowledged, given up, dropped), so a caller can see
back-pressure and losses without access to the server's metrics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace

__all__ = ["ClientStats", "Counters"]


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's counters since it was created."""

    queued: int = 0
    """Events waiting in the queue or in flight now."""
    enqueued: int = 0
    """Events accepted into the queue."""
    batches: int = 0
    """TrackBatch calls that succeeded (queued and `send` calls alike)."""
    attempts: int = 0
    """TrackBatch calls made, failed ones included."""
    retries: int = 0
    """Attempts that resent a batch after a retryable error."""
    accepted: int = 0
    """Events the server acknowledged as durable."""
    rejected: int = 0
    """Events the server rejected (each reported to `on_error`)."""
    failed: int = 0
    """Events given up on: a non-retryable error, retries used up, or the client closed first."""
    dropped: int = 0
    """Events refused because the queue was full."""
    pushed_back: int = 0
    """RESOURCE_EXHAUSTED answers: the server (spool full, quota) asked the client to slow down."""


class Counters:
    """Thread-safe increments of ClientStats' fields."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys((f.name for f in fields(ClientStats)), 0)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                self._values[name] += amount

    def snapshot(self, queued: int) -> ClientStats:
        with self._lock:
            return replace(ClientStats(**self._values), queued=queued)
