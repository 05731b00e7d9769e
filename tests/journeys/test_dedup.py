"""Every write of one event collapses into one row, whatever changed between the writes (ADR 0011).

The key is (tenant, anchor, event_id), and the anchor hashes the event's first identifier: nothing a retry,
a replay or a merge changes. Each case checks what reads see before any merge, and that one row remains once
ClickHouse has merged the parts (OPTIMIZE FINAL).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from wayline_journeys.analytics import EventMatcher
from wayline_journeys.conditions import Comparison, EventCount
from wayline_journeys.events import EventRecord, TimelineQuery
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore, PersonOverrideStore
from wayline_journeys.store.person_conditions import ClickHousePersonConditions
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

TENANT = "acme"


def event(at: datetime, person: str = "person-a", received: datetime | None = None) -> EventRecord:
    return EventRecord(
        event_id=str(uuid.uuid4()),
        type="track",
        name="Order Completed",
        channel="web",
        timestamp=at,
        received_at=received or at,
        identifier_types=("anonymous_id", "user_id"),
        identifier_values=("cookie-1", "u-1"),
        person_id=person,
    )


def stored_copies(store: JourneyStore, event_id: str) -> int:
    rows = store.client.query(
        "SELECT count() FROM events WHERE event_id = {id:UUID}", parameters={"id": event_id}
    ).result_rows
    return int(rows[0][0])


def relation_rows(
    store: JourneyStore, where: str = "true", kinds: str = "true"
) -> list[tuple[str, str, datetime]]:
    params = SqlParams(tenant=TENANT)
    relation = current_events(params, where=where, kinds=kinds)
    sql = f"SELECT toString(event_id), person_id, timestamp FROM {relation}"
    return [
        (str(r[0]), str(r[1]), r[2]) for r in store.client.query(sql, parameters=params.values).result_rows
    ]


def timeline_ids(store: JourneyStore, person: str) -> list[str]:
    return [e.event_id for e in store.timeline(TimelineQuery(tenant=TENANT, person_id=person))]


def merge_parts(store: JourneyStore) -> None:
    store.client.command("OPTIMIZE TABLE events FINAL")


def write_a_retry_across_midnight(store: JourneyStore) -> tuple[EventRecord, EventRecord]:
    """An event, then its retry received 5 s later with a timestamp moved past midnight (skew correction)."""
    first = event(datetime(2026, 3, 1, 23, 59, 59, 900000, tzinfo=UTC))
    retry = replace(
        first,
        timestamp=datetime(2026, 3, 2, 0, 0, 0, 100000, tzinfo=UTC),
        received_at=first.received_at + timedelta(seconds=5),
    )
    store.write(TENANT, [first])
    store.write(TENANT, [retry])
    return first, retry


def test_a_retry_across_midnight_collapses(store: JourneyStore) -> None:
    # The reproduced defect: the day in the sort key kept these two writes apart forever.
    first, retry = write_a_retry_across_midnight(store)

    assert timeline_ids(store, "person-a") == [first.event_id]
    (row,) = relation_rows(store)
    assert row[2].replace(tzinfo=UTC) == retry.timestamp  # the last received copy wins
    merge_parts(store)
    assert stored_copies(store, first.event_id) == 1


def test_a_retry_with_a_timestamp_in_another_month_collapses(store: JourneyStore) -> None:
    # The old layout partitioned by month: such copies could never meet in a merge.
    first = event(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    retry = replace(
        first,
        timestamp=datetime(2026, 2, 1, 1, 0, tzinfo=UTC),
        received_at=first.received_at + timedelta(hours=3),
    )
    store.write(TENANT, [first])
    store.write(TENANT, [retry])

    assert len(relation_rows(store)) == 1
    merge_parts(store)
    assert stored_copies(store, first.event_id) == 1


def test_a_replay_of_the_same_rows_collapses(store: JourneyStore) -> None:
    batch = [event(datetime(2026, 5, 1, 10, minute, tzinfo=UTC)) for minute in range(5)]
    store.write(TENANT, batch)
    store.write(TENANT, batch)
    store.write(TENANT, [*batch, *batch])  # even within one insert

    assert sorted(timeline_ids(store, "person-a")) == sorted(e.event_id for e in batch)
    assert len(relation_rows(store)) == len(batch)
    merge_parts(store)
    assert sum(stored_copies(store, e.event_id) for e in batch) == len(batch)


def test_writes_before_and_after_a_merge_collapse(store: JourneyStore) -> None:
    # Written under person A; identity then merges A into B, and a replay carries B.
    before = event(datetime(2026, 6, 1, 12, tzinfo=UTC), person="person-a")
    store.overrides.apply(TENANT, [PersonOverride("person-a", "person-b", 1)])
    after = replace(before, person_id="person-b", received_at=before.received_at + timedelta(minutes=1))
    store.write(TENANT, [before])
    store.write(TENANT, [after])

    assert timeline_ids(store, "person-b") == [before.event_id]
    assert timeline_ids(store, "person-a") == []
    assert [r[:2] for r in relation_rows(store)] == [(before.event_id, "person-b")]
    merge_parts(store)
    assert stored_copies(store, before.event_id) == 1


def test_a_replay_under_the_person_an_identifier_moved_to_leaves_the_old_owner(store: JourneyStore) -> None:
    # Written under A; identity then moves the event's user id to C (an unmerge), and a replay carries C. The
    # reads of a person no override names filter by the stored person before FINAL (ADR 97): a copy stored
    # under another person exists only after an override like this one, which names A, so A is read through
    # the overrides and the copy under C wins for both. The override is recorded by another store (another
    # replica), so that the reads find it in the table, not in what this process remembers having written.
    before = event(datetime(2026, 6, 2, 12, tzinfo=UTC), person="person-a")
    store.write(TENANT, [before])
    moved = PersonOverride("person-a", "person-c", 1, identifier_type="user_id", identifier_value="u-1")
    PersonOverrideStore(lambda: store.client, lambda persons: None).apply(TENANT, [moved])
    replay = replace(before, person_id="person-c", received_at=before.received_at + timedelta(minutes=1))
    store.write(TENANT, [replay])
    ordered = EventCount(EventMatcher(name="Order Completed"), Comparison.GREATER_THAN_OR_EQUAL, 1)
    conditions = ClickHousePersonConditions(lambda: store.client)
    at = datetime(2026, 7, 1, tzinfo=UTC)

    assert (timeline_ids(store, "person-a"), timeline_ids(store, "person-c")) == ([], [before.event_id])
    # Each alone: asked together, both persons' copies would meet before FINAL anyway.
    answers = [conditions.evaluate_of(TENANT, [p], [ordered], None, at)[p] for p in ("person-a", "person-c")]
    assert answers == [[False], [True]]
    merge_parts(store)
    assert (timeline_ids(store, "person-a"), timeline_ids(store, "person-c")) == ([], [before.event_id])


def test_an_older_copy_replayed_late_does_not_win(store: JourneyStore) -> None:
    newest = event(datetime(2026, 7, 1, 8, tzinfo=UTC), received=datetime(2026, 7, 1, 8, 5, tzinfo=UTC))
    older = replace(
        newest,
        timestamp=datetime(2026, 7, 1, 7, tzinfo=UTC),
        received_at=newest.received_at - timedelta(minutes=4),
    )
    store.write(TENANT, [newest])
    store.write(TENANT, [older])  # a spool replay of the copy received first

    ((_, _, timestamp),) = relation_rows(store)
    assert timestamp.replace(tzinfo=UTC) == newest.timestamp


def test_a_read_narrowed_to_the_events_kinds_before_final_still_reads_the_last_copy(
    store: JourneyStore,
) -> None:
    # Read models put name, type and channel before FINAL (relation.py): both copies pass it alike, so FINAL
    # still collapses them, and the time filter after it sees the copy that won.
    _, retry = write_a_retry_across_midnight(store)
    kinds = "name = 'Order Completed' AND channel = 'web'"
    before_midnight = "timestamp < toDateTime64('2026-03-02 00:00:00', 6, 'UTC')"

    (row,) = relation_rows(store, kinds=kinds)
    assert row[2].replace(tzinfo=UTC) == retry.timestamp
    # The first copy alone meets the time filter; it lost to the retry, so the event is not in the range.
    assert relation_rows(store, where=before_midnight, kinds=kinds) == []
    assert relation_rows(store, kinds="name = 'Order Started'") == []
