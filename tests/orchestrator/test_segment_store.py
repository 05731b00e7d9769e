"""The segment triggers' tables on both engines: replicas claiming schedules at once never claim one twice,
a replica whose lease passed cannot write over the one that took the schedule over, a cursor only moves
forward (unless resynchronised) and is kept per tenant, and a version's entry of existing members is
recorded page by page until done."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.orchestrator import runtime_fixtures
from wayline.common.sql import Database
from wayline_orchestrator.flows.runtime.segment_store import NEVER, SegmentStore

SCHEDULES, REPLICAS, BATCH = 200, 4, 10


database = runtime_fixtures.database


@pytest.fixture
def store(database: Database) -> SegmentStore:
    segments = SegmentStore(database)
    segments.migrate()
    return segments


def test_claim_schedules_by_concurrent_replicas_claims_each_once(store: SegmentStore) -> None:
    for i in range(SCHEDULES):
        assert store.add_schedule("acme", f"flow-{i}", 1, anchor=0, due=1_000)
    assert not store.add_schedule("acme", "flow-0", 1, anchor=0, due=5)  # known already: unchanged
    claimed: list[str] = []
    lock = threading.Lock()

    def replica() -> None:
        while batch := store.claim_schedules(2_000, BATCH, lease_us=10**12):
            with lock:
                claimed.extend(row.flow_id for row in batch)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == SCHEDULES
    assert Counter(claimed).most_common(1)[0][1] == 1


def test_progress_is_written_only_under_the_claim_that_holds_the_schedule(store: SegmentStore) -> None:
    store.add_schedule("acme", "daily", 3, anchor=0, due=1_000)
    assert store.claim_schedules(999, 10, lease_us=500) == []  # not due yet
    [mine] = store.claim_schedules(1_000, 10, lease_us=500)
    assert store.claim_schedules(1_499, 10, lease_us=500) == []  # leased
    [theirs] = store.claim_schedules(1_500, 10, lease_us=500)  # the lease passed: another replica takes it

    assert store.progress(mine, 9_000, 1_000, "page-2", 1_000) is None
    written = store.progress(theirs, 9_000, 1_000, "page-2", 1_000)
    assert written is not None
    assert (written.occurrence, written.page_token) == (1_000, "page-2")
    done = store.progress(written, 0, 0, "", NEVER)
    assert done is not None
    [row] = store.schedules("acme")
    assert (row.version, row.due_time, row.occurrence, row.page_token, row.lease_until) == (
        3,
        NEVER,
        0,
        "",
        0,
    )
    assert store.schedules("other") == []


def test_a_cursor_moves_forward_only_unless_resynchronised_and_belongs_to_its_tenant(
    store: SegmentStore,
) -> None:
    assert store.cursor("acme", "segments/vip") == 0
    store.move_cursor("acme", "segments/vip", 40)
    store.move_cursor("acme", "segments/vip", 30)  # a replica behind
    assert store.cursor("acme", "segments/vip") == 40
    assert store.cursor("globex", "segments/vip") == 0
    assert store.cursor("acme", "segments/other") == 0
    store.move_cursor("acme", "segments/vip", 0, back=True)
    assert store.cursor("acme", "segments/vip") == 0


def test_the_entry_of_existing_members_is_recorded_page_by_page_until_done(store: SegmentStore) -> None:
    assert store.backfill("acme", "welcome", 1, "segments/vip") == ""
    store.advance_backfill("acme", "welcome", 1, "token-2")
    assert store.backfill("acme", "welcome", 1, "segments/vip") == "token-2"
    assert store.backfill("globex", "welcome", 1, "segments/vip") == ""
    store.advance_backfill("acme", "welcome", 1, "")
    assert store.backfill("acme", "welcome", 1, "segments/vip") is None
    assert store.backfill("acme", "welcome", 2, "segments/vip") == ""  # a new version enters its own
