"""The bounded queue between the calling threads and the one sender thread.

It decides when a batch is due (Segment's rule: `max_batch_events` are waiting, or the oldest waiting event
has waited `flush_interval`, or a flush or close asks for everything now), cuts batches to the server's byte
limit, and bounds memory: events count against `max_events` until their batch is finished, not merely
taken, so while the sender is paused by back-pressure the queue fills and producers block or drop instead
of the process growing. Sequence numbers let `flush` wait for exactly the events queued before it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wayline.client.batching import fits
from wayline.client.errors import ClientClosed
from wayline.event.v1 import event_pb2

__all__ = ["Entry", "EventQueue"]


@dataclass(frozen=True)
class Entry:
    seq: int
    event: event_pb2.Event
    size: int
    queued_at: float


class EventQueue:
    def __init__(
        self,
        *,
        max_events: int,
        max_batch_events: int,
        max_batch_bytes: int,
        flush_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_events = max_events
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._flush_interval = flush_interval
        self._clock = clock
        lock = threading.Lock()
        self._work = threading.Condition(lock)  # the sender waits here for a due batch
        self._progress = threading.Condition(lock)  # producers wait for room, flushers for completion
        self._entries: deque[Entry] = deque()
        self._pending = 0  # queued plus in flight
        self._last_seq = 0
        self._done_seq = 0
        self._flush_seq = 0
        self._closing = False

    @property
    def pending(self) -> int:
        with self._work:
            return self._pending

    def put(self, event: event_pb2.Event, size: int, *, block: bool, timeout: float | None) -> bool:
        """Queue `event`; False when the queue is full and stays so (not blocking, or past `timeout`)."""
        with self._progress:
            if self._closing:
                raise ClientClosed("the client is closed")
            if self._pending >= self._max_events:
                if not block:
                    return False
                room = self._progress.wait_for(
                    lambda: self._closing or self._pending < self._max_events, timeout
                )
                if self._closing:
                    raise ClientClosed("the client was closed while waiting for room in the queue")
                if not room:
                    return False
            self._last_seq += 1
            self._entries.append(Entry(self._last_seq, event, size, self._clock()))
            self._pending += 1
            if len(self._entries) == 1 or len(self._entries) >= self._max_batch_events:
                self._work.notify()
            return True

    def take(self) -> list[Entry] | None:
        """The next due batch, blocking until there is one; None once closing with nothing left."""
        with self._work:
            while True:
                if not self._entries:
                    if self._closing:
                        return None
                    self._work.wait()
                    continue
                due = self._entries[0].queued_at + self._flush_interval
                wait = due - self._clock()
                if (
                    self._closing
                    or wait <= 0
                    or len(self._entries) >= self._max_batch_events
                    or self._entries[0].seq <= self._flush_seq
                ):
                    return self._cut()
                self._work.wait(wait)

    def _cut(self) -> list[Entry]:
        batch: list[Entry] = []
        used = 0
        while self._entries and fits(
            len(batch),
            used,
            self._entries[0].size,
            max_events=self._max_batch_events,
            max_bytes=self._max_batch_bytes,
        ):
            entry = self._entries.popleft()
            batch.append(entry)
            used += entry.size
        return batch

    def done(self, batch: list[Entry]) -> None:
        """The batch was acknowledged or given up on: its room is free and flushes may return."""
        with self._progress:
            self._pending -= len(batch)
            self._done_seq = max(self._done_seq, batch[-1].seq)
            self._progress.notify_all()

    def flush(self, timeout: float | None) -> bool:
        """Send everything queued so far now; wait until it is finished. False when `timeout` passed."""
        with self._progress:
            target = self._last_seq
            if self._done_seq >= target:
                return True
            self._flush_seq = max(self._flush_seq, target)
            self._work.notify()
            return self._progress.wait_for(lambda: self._done_seq >= target, timeout)

    def close(self) -> None:
        """Refuse new events and send the rest at once; blocked producers get ClientClosed."""
        with self._progress:
            self._closing = True
            self._work.notify_all()
            self._progress.notify_all()
