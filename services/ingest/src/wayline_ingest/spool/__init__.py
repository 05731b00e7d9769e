"""The durable spool between acknowledgement and delivery: a segmented log plus one cursor per sink.

Ingest acknowledges an event only once it is in the log and fsync'd. Each sink reads the log from its own
cursor at its own pace; a segment is deleted once every cursor has passed it. The log's quota bounds the
disk: past it, writes fail with `SpoolFull` (RESOURCE_EXHAUSTED to callers), never by dropping data.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import structlog

from wayline_ingest.spool.cursors import Cursor
from wayline_ingest.spool.log import SegmentedLog, SpoolClosed, SpoolFull
from wayline_ingest.spool.records import ALL_SINKS, SpoolBatch, decode, encode

__all__ = ["ALL_SINKS", "Spool", "SpoolBatch", "SpoolClosed", "SpoolFull"]

log = structlog.get_logger("wayline.ingest.spool")


def _decode(payload: bytes, after: int) -> SpoolBatch | None:
    if not payload:
        return None
    try:
        return decode(payload)
    except (ValueError, UnicodeDecodeError, struct.error) as error:
        log.error("spool.undecodable_record_skipped", position_after=after, error=str(error))
        return None


class Spool:
    def __init__(
        self,
        directory: Path,
        sinks: Sequence[str],
        *,
        segment_bytes: int,
        max_bytes: int,
        crash_before_fsync_after: int = 0,
    ) -> None:
        self.log = SegmentedLog(
            directory / "segments",
            segment_bytes=segment_bytes,
            max_bytes=max_bytes,
            crash_before_fsync_after=crash_before_fsync_after,
        )
        self.cursors = {name: Cursor(directory / "cursors", name) for name in sinks}
        self._release_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._events_taken = 0

    def submit(self, batch: SpoolBatch) -> Future[int]:
        """Queue a batch; the future resolves once it is durable. Raises SpoolFull or SpoolClosed."""
        written = self.log.submit(encode(batch))
        with self._count_lock:
            self._events_taken += len(batch.events)
        return written

    @property
    def events_taken(self) -> int:
        """Events queued since this process opened the spool (the intake rate is read from it)."""
        return self._events_taken

    def append(self, batch: SpoolBatch, timeout: float | None = None) -> int:
        return self.submit(batch).result(timeout)

    @property
    def fill_ratio(self) -> float:
        """How full the spool is against its quota, 0 to 1."""
        return self.log.size_bytes / self.log.max_bytes

    def read(self, sink: str, position: int, max_bytes: int) -> list[tuple[int, SpoolBatch | None]]:
        """Durable batches from `position`: (position after it, batch); None for a skipped corrupt span or
        a record this version cannot decode (logged, never delivered as garbage)."""
        return [(after, _decode(payload, after)) for after, payload in self.log.read(position, max_bytes)]

    def position(self, sink: str) -> int:
        return max(self.cursors[sink].position, self.log.start)

    def advance(self, sink: str, position: int) -> None:
        """`sink` has taken everything before `position`: save its cursor, delete what all sinks passed."""
        self.cursors[sink].save(position)
        with self._release_lock:
            self.log.release(min(cursor.position for cursor in self.cursors.values()))

    def backlog(self, sink: str) -> int:
        """Bytes the sink has still to take."""
        return self.log.end - self.position(sink)

    def batches(self) -> Iterator[SpoolBatch]:
        """Every batch still on disk, oldest first (to rebuild the deduplication window at start)."""
        position = self.log.start
        end = self.log.end
        while position < end:
            records = self.log.read(position, 4 * 1024 * 1024)
            if not records:
                return
            for after, payload in records:
                batch = _decode(payload, after)
                if batch is not None:
                    yield batch
                position = after

    def close(self) -> None:
        self.log.close()
