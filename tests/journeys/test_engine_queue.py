"""The embedded engine runs one statement at a time: a query whose caller's deadline passes while it waits
for its turn gives up at the deadline (DEADLINE_EXCEEDED) instead of running late for nobody."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from wayline.common.context import CallContext, bind_call
from wayline.common.errors import DeadlineExceeded
from wayline_journeys.store import connect_clickhouse
from wayline_journeys.store.client import query_rows


def test_a_query_waiting_for_the_embedded_engine_gives_up_at_its_deadline(chdb_path: Path) -> None:
    busy = connect_clickhouse("", "wayline", chdb_path)
    waiting = connect_clickhouse("", "wayline", chdb_path)
    started = threading.Event()

    def hold_the_engine() -> None:
        started.set()
        # No deadline: this statement runs to its end (3 s of sleeping, 1 s per block).
        sleeping = "SELECT sleepEachRow(1) FROM numbers(3) SETTINGS max_block_size = 1"
        query_rows(busy, sleeping, None, "holding")

    holder = threading.Thread(target=hold_the_engine)
    holder.start()
    started.wait()
    time.sleep(0.3)  # the holder's statement is running
    began = time.monotonic()
    with (
        bind_call(CallContext("r", "/test", deadline=time.monotonic() + 0.5)),
        pytest.raises(DeadlineExceeded, match="waited for the embedded engine past the deadline"),
    ):
        query_rows(waiting, "SELECT 1", None, "a late read")
    gave_up_after = time.monotonic() - began
    holder.join()
    assert gave_up_after < 1.5  # the holder runs until about 3 s: the late read did not wait for it
    # With time to spare, the same read runs once the engine is free.
    with bind_call(CallContext("r", "/test", deadline=time.monotonic() + 10)):
        assert query_rows(waiting, "SELECT 1", None, "a read") == [(1,)]
