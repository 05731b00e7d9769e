"""The store under concurrency: tenants never cross, and reads keep answering while a bulk write runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from tests.journeys.test_dedup import event
from wayline_journeys.events import TimelineQuery
from wayline_journeys.store import JourneyStore


def test_concurrent_tenants_never_see_each_others_rows(store: JourneyStore) -> None:
    """Eight threads share one client, as the server's workers do; every tenant writes the same identifier,
    so a parameter crossing between threads would show another tenant's event."""
    wrong: list[str] = []

    def work(tenant: str) -> None:
        own = event(datetime(2026, 1, 1, tzinfo=UTC))
        store.write(tenant, [own])
        for _ in range(15):
            seen = [
                e.event_id
                for e in store.timeline(TimelineQuery(tenant=tenant, identifier=("user_id", "u-1")))
            ]
            if seen != [own.event_id]:
                wrong.append(f"{tenant} saw {seen}")

    threads = [threading.Thread(target=work, args=(f"tenant-{i}",)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
    finally:
        store.close()


def test_reads_answer_while_a_bulk_write_runs(store: JourneyStore) -> None:
    """A bulk insert holds its connection for its whole statement; a read on another thread has its own
    connection and must not wait for it (one shared client made it wait for the whole insert)."""
    own = event(datetime(2026, 1, 1, tzinfo=UTC))
    store.write("acme", [own])
    writing = threading.Event()
    finished = threading.Event()

    def bulk_write() -> None:
        writing.set()
        store.client.command(
            "INSERT INTO events (tenant_id, event_id, type, name, channel, timestamp, received_at, "
            "identifier_types, identifier_values, person_id, properties, context, text, revenue_currency, "
            "group_id, plan_violations) SELECT 'bulk', generateUUIDv4(number), 'track', 'Viewed', 'web', "
            "now64(6), now64(6), ['anonymous_id'], ['c-' || toString(number % 50000)], 'p', "
            "repeat('x', 200), '{}', '', '', '', '[]' FROM numbers(400000)"
        )
        finished.set()

    writer = threading.Thread(target=bulk_write)
    writer.start()
    writing.wait()
    answered_during_write = 0
    while not finished.is_set():
        page = store.timeline(TimelineQuery(tenant="acme", identifier=("user_id", "u-1")))
        assert [e.event_id for e in page] == [own.event_id]
        answered_during_write += 0 if finished.is_set() else 1
    writer.join()
    assert answered_during_write >= 3
