"""The timer table on both engines: replicas claiming at once never claim one timer twice, and a timer
claimed by a replica that died is claimed again once its lease has passed."""

from __future__ import annotations

import threading
from collections import Counter

from tests.orchestrator import runtime_fixtures
from wayline_orchestrator.flows.runtime import RuntimeStore, Timer, TimerKind

TIMERS, REPLICAS, BATCH = 400, 4, 25


# The store on each engine, by the name the tests ask for.
database, store = runtime_fixtures.database, runtime_fixtures.store


def _add(store: RuntimeStore, count: int, due: int) -> None:
    with store.transaction() as tx:
        for i in range(count):
            timer = Timer(f"flow/1/p{i}/1/wait", due, "flow", f"p{i}", 1, TimerKind.STEP, "wait", 1)
            store.add_timer(tx, "acme", timer)


def test_claim_due_by_concurrent_replicas_claims_each_timer_once(store: RuntimeStore) -> None:
    _add(store, TIMERS, due=1_000)
    claimed: list[str] = []
    lock = threading.Lock()

    def replica() -> None:
        while batch := store.claim_due(2_000, BATCH, lease_us=10**12):
            with lock:
                claimed.extend(timer.key for _, timer in batch)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == TIMERS
    assert Counter(claimed).most_common(1)[0][1] == 1


def test_claim_due_takes_only_due_timers_and_takes_a_leased_one_again_after_its_lease(
    store: RuntimeStore,
) -> None:
    _add(store, 3, due=1_000)
    assert store.claim_due(999, 10, lease_us=500) == []
    assert len(store.claim_due(1_000, 10, lease_us=500)) == 3
    assert store.claim_due(1_499, 10, lease_us=500) == []  # leased: the claimer may still fire them
    again = store.claim_due(1_500, 10, lease_us=500)  # the claimer died: the lease has passed
    assert sorted(timer.person_id for _, timer in again) == ["p0", "p1", "p2"]
