"""Group commit: concurrent writers share INSERTs; each row is stored once, each error reaches its callers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wayline.common.server import Server
from wayline_journeys.events import EventRecord, TimelineQuery
from wayline_journeys.store import JourneyStore, connect_clickhouse
from wayline_journeys.store.group_commit import GroupCommitWriter


class SlowSink:
    """An insert that takes a while, long enough for writers to pile up behind it."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.groups: list[list[Sequence[Any]]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def insert(self, rows: list[Sequence[Any]]) -> None:
        time.sleep(0.02)
        with self.lock:
            self.groups.append(rows)
            if self.fail_on is not None and any(row[0] == self.fail_on for row in rows):
                raise ConnectionError("ClickHouse went away")


def test_concurrent_writes_are_grouped_and_all_rows_arrive_once() -> None:
    sink = SlowSink()
    writer = GroupCommitWriter(sink.insert)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: writer.write([(i,), (i,)]), range(64)))
    stored = sorted(row[0] for group in sink.groups for row in group)
    assert stored == sorted([*range(64), *range(64)])
    assert len(sink.groups) < 64  # writers really shared INSERTs


def test_a_failed_insert_fails_exactly_the_writers_in_its_group() -> None:
    sink = SlowSink(fail_on=7)
    writer = GroupCommitWriter(sink.insert)
    outcomes: dict[int, str] = {}

    def write(i: int) -> None:
        try:
            writer.write([(i,)])
            outcomes[i] = "ok"
        except ConnectionError:
            outcomes[i] = "failed"

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(40)))
    failed_group = next(group for group in sink.groups if any(row[0] == 7 for row in group))
    assert {i for i, outcome in outcomes.items() if outcome == "failed"} == {row[0] for row in failed_group}
    assert len(outcomes) == 40


def test_writer_keeps_working_after_a_failure() -> None:
    sink = SlowSink(fail_on=1)
    writer = GroupCommitWriter(sink.insert)
    with pytest.raises(ConnectionError):
        writer.write([(1,)])
    writer.write([(2,)])
    assert [row[0] for group in sink.groups for row in group] == [1, 2]


def test_concurrent_store_writes_all_land_in_clickhouse(journeys_server: Server, chdb_path: Path) -> None:
    database = f"test_{uuid.uuid4().hex[:8]}"
    store = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    store.open()
    try:
        now = datetime.now(UTC)
        events = [
            EventRecord(
                event_id=str(uuid.uuid4()),
                type="track",
                name=f"e{i}",
                channel="web",
                timestamp=now,
                received_at=now,
                identifier_types=("user_id",),
                identifier_values=("concurrent",),
            )
            for i in range(48)
        ]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda e: store.write("acme", [e]), events))
        stored = store.timeline(TimelineQuery(tenant="acme", identifier=("user_id", "concurrent"), limit=100))
        assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in events)
    finally:
        store.client.command(f"DROP DATABASE IF EXISTS {database}")
        store.close()
