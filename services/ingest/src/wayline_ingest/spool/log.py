"""The spool's durable log: append-only segment files, one fsync for many concurrent writers.

Layout: `<dir>/{base:020d}.seg`, where `base` is the global byte position of the segment's first record, so
a position (a sink's cursor) names one record in one file without an index. Each record is framed as
`[u32 length][u32 crc32][payload]` (little-endian); the checksum lets recovery tell a torn or corrupt tail
from data.

Group commit: `append` hands its payload to the writer thread and waits. The writer takes every payload
queued so far, writes them with one `write`, calls `fdatasync` once, then wakes all of their writers.
Under load one fsync covers hundreds of appends; alone, an append costs one fsync (~0.5 ms here).

Recovery: at open, every segment is scanned; at the first record whose length runs past the end of the
file or whose checksum fails, the segment is cut there (a crash between write and fsync leaves exactly such
a tail) and the event is logged. Nothing after a bad record is ever handed to a reader.

Quota: the sum of segment sizes may not pass `max_bytes`; an append that would is refused with `SpoolFull`
at once, and readers' progress (`release`) deletes whole segments that every cursor has passed.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import structlog

__all__ = ["HEADER", "SegmentedLog", "SpoolClosed", "SpoolFull"]

log = structlog.get_logger("wayline.ingest.spool")

HEADER = struct.Struct("<II")
_SUFFIX = ".seg"
MAX_RECORD_BYTES = 64 * 1024 * 1024


class SpoolFull(Exception):
    """The spool is at its disk quota; the sinks must catch up before it takes more."""


class SpoolClosed(Exception):
    """The spool is shutting down (or its writer died); nothing more is accepted."""


@dataclass(frozen=True)
class _Segment:
    base: int
    path: Path


def _segment_path(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}{_SUFFIX}"


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _valid_length(data: bytes | memoryview, start: int = 0) -> int:
    """How many leading bytes of `data` (from `start`) hold whole records with good checksums."""
    position = start
    end = len(data)
    while position + HEADER.size <= end:
        length, checksum = HEADER.unpack_from(data, position)
        body_end = position + HEADER.size + length
        if not 0 < length <= MAX_RECORD_BYTES or body_end > end:
            break  # no record is empty: a zero length is unwritten (zeroed) space
        if zlib.crc32(data[position + HEADER.size : body_end]) != checksum:
            break
        position = body_end
    return position - start


class SegmentedLog:
    """Append-only, checksummed, segmented, group-committed. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int,
        max_bytes: int,
        crash_before_fsync_after: int = 0,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._crash_after = crash_before_fsync_after
        self._writes = 0
        self._lock = threading.Lock()
        # Each wakes only who needs it: on 2 cores every needless wake-up takes the interpreter from a call
        # in flight, and a notify_all per write woke every sink's forwarder for every Track.
        self._work = threading.Condition(self._lock)  # the writer thread: a record queued, or a close
        self._waiters: list[tuple[int, threading.Event]] = []  # readers: a durable record past a position
        self._queue: list[tuple[bytes, Future[int]]] = []
        self._queued_bytes = 0
        self._closed = False
        self._segments: list[_Segment] = self._recover()
        self._sizes: dict[int, int] = {s.base: s.path.stat().st_size for s in self._segments}
        last = self._segments[-1]
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)
        self._end = last.base + self._sizes[last.base]  # durable end: readers see records before it
        self._writer = threading.Thread(target=self._write_loop, name="spool-writer", daemon=True)
        self._writer.start()

    # Recovery -------------------------------------------------------------------------------------------

    def _recover(self) -> list[_Segment]:
        segments = sorted(
            (_Segment(int(p.stem), p) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()),
            key=lambda s: s.base,
        )
        for segment in segments:
            data = segment.path.read_bytes()
            good = _valid_length(data)
            if good < len(data):
                log.warning(
                    "spool.torn_tail_skipped",
                    segment=segment.path.name,
                    kept_bytes=good,
                    dropped_bytes=len(data) - good,
                )
                with open(segment.path, "r+b") as handle:
                    handle.truncate(good)
                    os.fsync(handle.fileno())
        if not segments:
            segments = [_Segment(0, _segment_path(self.directory, 0))]
            self._create(segments[0].path)
        return segments

    def _create(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fsync(fd)
        os.close(fd)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name is durable too
        finally:
            os.close(directory)

    # Writing --------------------------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes on disk plus bytes waiting for the writer."""
        with self._lock:
            return sum(self._sizes.values()) + self._queued_bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def submit(self, payload: bytes) -> Future[int]:
        """Queue `payload` (not empty); the future resolves to its position once it is fsync'd."""
        if not payload:
            raise ValueError("a spool record cannot be empty")
        record = frame(payload)
        future: Future[int] = Future()
        with self._lock:
            if self._closed:
                raise SpoolClosed("the spool is closed")
            if sum(self._sizes.values()) + self._queued_bytes + len(record) > self._max_bytes:
                raise SpoolFull(f"the spool holds its quota of {self._max_bytes} bytes")
            self._queue.append((record, future))
            self._queued_bytes += len(record)
            self._work.notify()
        return future

    def append(self, payload: bytes, timeout: float | None = None) -> int:
        """Write `payload` durably and return its position."""
        return self.submit(payload).result(timeout)

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._work.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                self._queued_bytes = 0
            try:
                positions = self._write(batch)
            except BaseException as error:  # noqa: BLE001 - every waiter must hear about it
                log.error("spool.write_failed", error=str(error))
                with self._lock:
                    self._closed = True
                    stranded, self._queue = self._queue, []  # queued behind this write: nobody writes them
                    self._queued_bytes = 0
                    self._wake_readers()
                for _, future in [*batch, *stranded]:
                    future.set_exception(SpoolClosed(f"the spool could not be written: {error}"))
                return
            for (_, future), position in zip(batch, positions, strict=True):
                future.set_result(position)

    def _write(self, batch: list[tuple[bytes, Future[int]]]) -> list[int]:
        positions = []
        start = self._end
        position = start
        for record, _ in batch:
            positions.append(position)
            position += len(record)
        os.write(self._fd, b"".join(record for record, _ in batch))
        self._writes += 1
        if self._crash_after and self._writes >= self._crash_after:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between write and fsync
        os.fdatasync(self._fd)
        with self._lock:
            current = self._segments[-1]
            self._sizes[current.base] += position - start
            self._end = position
            self._wake_readers()
            roll = self._sizes[current.base] >= self._segment_bytes
        if roll:
            self._roll()
        return positions

    def _roll(self) -> None:
        path = _segment_path(self.directory, self._end)
        self._create(path)
        old_fd = self._fd
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.close(old_fd)
        with self._lock:
            self._segments.append(_Segment(self._end, path))
            self._sizes[self._end] = 0

    # Reading --------------------------------------------------------------------------------------------

    @property
    def start(self) -> int:
        """The position of the oldest record still on disk."""
        with self._lock:
            return self._segments[0].base

    @property
    def end(self) -> int:
        """The position just past the last durable record."""
        with self._lock:
            return self._end

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until a durable record exists at or after `position` (or the log closes); False when
        `timeout` passed first. Only a write that reaches `position` wakes the caller."""
        with self._lock:
            if self._end > position or self._closed:
                return True
            waiter = (position, threading.Event())
            self._waiters.append(waiter)
        waiter[1].wait(timeout)
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return self._end > position or self._closed

    def _wake_readers(self) -> None:
        """Wake the readers whose position the durable end has passed (holding the lock)."""
        if not self._waiters:
            return
        waiting = []
        for waiter in self._waiters:
            if self._end > waiter[0] or self._closed:
                waiter[1].set()
            else:
                waiting.append(waiter)
        self._waiters = waiting

    def read(self, position: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Durable records from `position` on, about `max_bytes` of them (one at least): (next, payload).
        A read goes on into the next segments until it has `max_bytes`: a backlog of small segments is
        one write, not one a segment (a sink's linger spaces writes smaller than a full one)."""
        with self._lock:
            end = self._end
            segments = list(self._segments)
        position = max(position, segments[0].base)
        records: list[tuple[int, bytes]] = []
        taken = 0
        for index, segment in enumerate(segments):
            seg_end = segments[index + 1].base if index + 1 < len(segments) else end
            if position >= seg_end or position < segment.base:
                continue
            want = min(seg_end - position, max(max_bytes - taken, HEADER.size))
            with open(segment.path, "rb") as handle:
                handle.seek(position - segment.base)
                data = handle.read(want)
                # The chunk may end inside a record: read that record's rest so that at least one fits.
                if len(data) >= HEADER.size:
                    length, _ = HEADER.unpack_from(data, 0)
                    if HEADER.size + length > len(data) and length <= MAX_RECORD_BYTES:
                        data += handle.read(HEADER.size + length - len(data))
            offset = 0
            while offset + HEADER.size <= len(data):
                length, checksum = HEADER.unpack_from(data, offset)
                body_end = offset + HEADER.size + length
                if body_end > len(data):
                    break
                body = data[offset + HEADER.size : body_end]
                if not length or zlib.crc32(body) != checksum:
                    log.error("spool.corrupt_record_skipped", segment=segment.path.name, position=position)
                    return [*records, (seg_end, b"")]  # skip the rest of a corrupt segment
                offset = body_end
                records.append((position + offset, body))
            taken += offset
            if records and (taken >= max_bytes or position + offset < seg_end):
                return records
            position = seg_end
        return records

    def release(self, position: int) -> None:
        """Delete whole segments that end at or before `position` (every cursor is past them)."""
        with self._lock:
            doomed = [s for i, s in enumerate(self._segments[:-1]) if self._segments[i + 1].base <= position]
            for segment in doomed:
                self._segments.remove(segment)
                del self._sizes[segment.base]
        for segment in doomed:
            segment.path.unlink(missing_ok=True)
            log.info("spool.segment_deleted", segment=segment.path.name)

    def close(self) -> None:
        """Finish queued writes, then stop the writer."""
        with self._lock:
            self._closed = True
            self._work.notify()
            self._wake_readers()
        self._writer.join()
        os.close(self._fd)
