"""The spool's log on real files: durability framing, group commit, recovery, quota, segments, cursors."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from wayline_ingest.spool import Spool, SpoolBatch, SpoolClosed, SpoolFull
from wayline_ingest.spool.log import HEADER, SegmentedLog


def open_log(path: Path, **kwargs: int) -> SegmentedLog:
    return SegmentedLog(
        path, segment_bytes=kwargs.get("segment_bytes", 1 << 20), max_bytes=kwargs.get("max_bytes", 1 << 30)
    )


def payloads(log: SegmentedLog) -> list[bytes]:
    found: list[bytes] = []
    position = log.start
    while position < log.end:
        records = log.read(position, 1 << 16)
        found.extend(payload for _, payload in records)
        position = records[-1][0]
    return found


def test_appended_records_read_back_in_order_after_reopening(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    written = [f"record-{i}".encode() * (i + 1) for i in range(50)]
    for payload in written:
        log.append(payload)
    log.close()
    assert payloads(open_log(tmp_path)) == written


def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    log = open_log(tmp_path)
    threads = [
        threading.Thread(target=lambda i=i: [log.append(b"x" * 100) for _ in range(20)]) for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert len(payloads(open_log(tmp_path))) == 320
    assert len(calls) < 320  # group commit: one fsync covered several appends


def test_a_failed_write_fails_what_queued_behind_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records queued while a write fails are never written by anyone: their callers hear it at once."""
    in_fsync, fail = threading.Event(), threading.Event()

    def failing(fd: int) -> None:
        in_fsync.set()
        fail.wait(5)
        raise OSError(5, "Input/output error")

    log = open_log(tmp_path)
    monkeypatch.setattr(os, "fdatasync", failing)
    first = log.submit(b"first")
    assert in_fsync.wait(5)
    queued = log.submit(b"second")  # the writer is in the first write: this one waits in the queue
    fail.set()
    with pytest.raises(SpoolClosed):
        first.result(5)
    with pytest.raises(SpoolClosed):
        queued.result(5)
    with pytest.raises(SpoolClosed):
        log.submit(b"third")
    log.close()


def test_a_reader_wakes_when_a_write_reaches_its_position_and_not_before(tmp_path: Path) -> None:
    """The forwarders wait for the log's end (a sink with nothing to send) or for a full write ahead (a sink
    spacing its writes out); each write wakes only the waits it satisfies, a close wakes them all."""
    log = open_log(tmp_path)
    end = log.append(b"first") + len(b"first") + HEADER.size
    assert log.wait_for(0, timeout=0.0)  # already there
    assert not log.wait_for(end, timeout=0.05)
    woken: dict[str, tuple[bool, float]] = {}

    def wait(name: str, position: int, timeout: float) -> None:
        began = time.monotonic()
        woken[name] = (log.wait_for(position, timeout), time.monotonic() - began)

    at_end = threading.Thread(target=wait, args=("at end", end, 5.0))
    far_ahead = threading.Thread(target=wait, args=("far ahead", end + (1 << 20), 0.5))
    at_end.start()
    far_ahead.start()
    time.sleep(0.1)
    log.append(b"second")
    at_end.join(5)
    assert woken["at end"][0]
    assert woken["at end"][1] < 2.0
    far_ahead.join(5)
    assert not woken["far ahead"][0]
    assert woken["far ahead"][1] == pytest.approx(0.5, abs=0.3)
    closing = threading.Thread(target=wait, args=("closing", end + (1 << 20), 5.0))
    closing.start()
    time.sleep(0.1)
    log.close()
    closing.join(5)
    assert woken["closing"][0]
    assert woken["closing"][1] < 2.0


@pytest.mark.parametrize("damage", ["torn", "corrupt", "zeros"])
def test_a_damaged_tail_is_cut_at_recovery_and_never_read(tmp_path: Path, damage: str) -> None:
    log = open_log(tmp_path)
    for i in range(10):
        log.append(f"good-{i}".encode())
    log.close()
    (segment,) = tmp_path.glob("*.seg")
    good_size = segment.stat().st_size
    with open(segment, "ab") as handle:
        if damage == "torn":  # a crash between write and fsync: half a record
            handle.write(HEADER.pack(100, 0) + b"half")
        elif damage == "corrupt":  # a whole record whose checksum does not match
            handle.write(HEADER.pack(5, 12345) + b"wrong")
        else:
            handle.write(b"\0" * 64)
    reopened = open_log(tmp_path)
    assert payloads(reopened) == [f"good-{i}".encode() for i in range(10)]
    assert segment.stat().st_size == good_size
    reopened.append(b"after")
    assert payloads(reopened)[-1] == b"after"


def test_over_the_quota_appends_are_refused_and_nothing_is_dropped(tmp_path: Path) -> None:
    log = open_log(tmp_path, max_bytes=1000)
    accepted = 0
    while accepted < 100:
        try:
            log.append(b"y" * 90)
        except SpoolFull:
            break
        accepted += 1
    assert accepted == 10  # 10 x 98 bytes framed fit in 1,000
    assert len(payloads(log)) == accepted


def test_segments_roll_and_are_deleted_only_once_every_cursor_passed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["journeys", "decision"], segment_bytes=4096, max_bytes=1 << 20)
    for _i in range(100):
        spool.append(SpoolBatch("acme", [b"e" * 200], sink_mask=0))
    segments = sorted((tmp_path / "segments").glob("*.seg"))
    assert len(segments) > 3
    end = spool.log.end
    spool.advance("journeys", end)
    assert sorted((tmp_path / "segments").glob("*.seg")) == segments  # decision has not moved
    spool.advance("decision", end)
    assert len(list((tmp_path / "segments").glob("*.seg"))) == 1  # the current one stays
    spool.close()
    reopened = Spool(tmp_path, ["journeys", "decision"], segment_bytes=4096, max_bytes=1 << 20)
    assert reopened.position("journeys") == end  # cursors survive a restart
    assert reopened.backlog("decision") == 0


def test_a_read_goes_on_across_segments_up_to_its_size(tmp_path: Path) -> None:
    """A backlog of small segments is read as one write: the forwarder spaces writes smaller than a full
    one by the sink's linger, so a read that stopped at each segment's end drained one segment a linger."""
    log = open_log(tmp_path, segment_bytes=4096)
    written = [bytes([i]) * 200 for i in range(100)]  # 20,800 bytes framed, over five segments and more
    for payload in written:
        log.append(payload)
    assert len(list(tmp_path.glob("*.seg"))) > 4
    everything = log.read(log.start, 1 << 20)
    assert [payload for _, payload in everything] == written
    assert everything[-1][0] == log.end
    some = log.read(
        log.start, 10_000
    )  # as many whole records as the size asked holds: into the third segment
    assert [payload for _, payload in some] == written[: len(some)]
    assert len(some) * (200 + HEADER.size) <= 10_000 < (len(some) + 1) * (200 + HEADER.size)
    rest = log.read(some[-1][0], 1 << 20)
    assert [payload for _, payload in some + rest] == written


def test_a_batch_round_trips_with_its_tenant_flags_and_mask(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 20)
    spool.append(SpoolBatch("globex", [b"one", b"", b"three"], backfill=True, sink_mask=2))
    ((_, batch),) = spool.read("journeys", spool.position("journeys"), 1 << 16)
    assert batch == SpoolBatch("globex", [b"one", b"", b"three"], backfill=True, sink_mask=2)
    assert batch.for_sink(2)
    assert not batch.for_sink(4)


def test_a_record_this_version_cannot_decode_is_skipped_not_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 20)
    spool.log.append(b"\x09 a record from a future format")  # checksum fine, version unknown
    spool.append(SpoolBatch("acme", [b"event"]))
    records = spool.read("journeys", spool.position("journeys"), 1 << 16)
    assert [batch for _, batch in records] == [None, SpoolBatch("acme", [b"event"])]
    assert list(spool.batches()) == [SpoolBatch("acme", [b"event"])]
