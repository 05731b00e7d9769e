"""The ClickHouse event store on embedded chDB: idempotent writes, tenant scoping, keyset paging."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from wayline.common.context import CallContext, bind_call
from wayline.common.errors import DeadlineExceeded
from wayline.common.server import Server
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.events import EventRecord, TimelineOrder, TimelineQuery, cursor_after
from wayline_journeys.store import JourneyStore, connect_clickhouse
from wayline_journeys.store.client import query_rows, store_error

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["chdb", "server"])
def store(request: pytest.FixtureRequest, journeys_server: Server, chdb_path: Path) -> Iterator[JourneyStore]:
    """The same store code on both backends: the embedded engine always, a ClickHouse server when
    WAYLINE_CLICKHOUSE_URL names one (this machine's Debian ClickHouse is too old for clickhouse-connect)."""
    url = ""
    if request.param == "server":
        url = os.environ.get("WAYLINE_CLICKHOUSE_URL", "")
        if not url:
            pytest.skip("set WAYLINE_CLICKHOUSE_URL=http://user:password@host:8123 to run against a server")
    # The journeys server owns the process's one chDB engine; this store opens its own database in it.
    database = f"test_{uuid.uuid4().hex[:8]}"
    store = JourneyStore(lambda: connect_clickhouse(url, database, chdb_path))
    store.open()
    yield store
    store.client.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


def record(user: str, minute: int, name: str = "Viewed", event_id: str | None = None) -> EventRecord:
    at = T0 + timedelta(minutes=minute)
    return EventRecord(
        event_id=event_id or str(uuid.uuid4()),
        type="track",
        name=name,
        channel="web",
        timestamp=at,
        received_at=at,
        identifier_types=("user_id",),
        identifier_values=(user,),
    )


def by_user(tenant: str, user: str, **kwargs: object) -> TimelineQuery:
    return TimelineQuery(tenant=tenant, identifier=("user_id", user), **kwargs)  # type: ignore[arg-type]


def test_writing_the_same_event_twice_keeps_one_row(store: JourneyStore) -> None:
    event = record("u1", 0)
    store.write("acme", [event])
    store.write("acme", [event, record("u1", 1)])
    assert [e.event_id for e in store.timeline(by_user("acme", "u1"))][:1] == [event.event_id]
    assert len(store.timeline(by_user("acme", "u1"))) == 2


def test_reads_are_scoped_by_tenant(store: JourneyStore) -> None:
    store.write("acme", [record("shared-user", 0)])
    assert store.timeline(by_user("globex", "shared-user")) == []


def test_identifier_type_must_match_not_only_the_value(store: JourneyStore) -> None:
    store.write("acme", [record("42", 0)])
    assert store.timeline(TimelineQuery(tenant="acme", identifier=("crm_id", "42"))) == []


def test_keyset_paging_is_stable_when_timestamps_tie(store: JourneyStore) -> None:
    tied = [record("u2", 5) for _ in range(7)]
    store.write("acme", tied)
    seen: list[str] = []
    query = by_user("acme", "u2", limit=3, order=TimelineOrder.NEWEST_FIRST)
    while True:
        page = store.timeline(query)
        seen.extend(e.event_id for e in page)
        if len(page) < query.limit:
            break
        query = by_user("acme", "u2", limit=3, order=TimelineOrder.NEWEST_FIRST, after=cursor_after(page[-1]))
    assert sorted(seen) == sorted(e.event_id for e in tied)
    assert len(seen) == len(set(seen))


def test_sql_injection_in_parameters_is_inert(store: JourneyStore) -> None:
    store.write("acme", [record("u3", 0)])
    hostile = "x' OR 1=1 --"
    assert store.timeline(by_user(hostile, "u3")) == []
    assert store.timeline(by_user("acme", hostile)) == []


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection refused"),
        DatabaseError("Too many parts", code=252, name="TOO_MANY_PARTS"),
    ],
    ids=["connection", "too-many-parts"],
)
def test_transient_clickhouse_errors_become_unavailable(error: Exception) -> None:
    mapped = store_error(error, "writing events")  # type: ignore[arg-type]
    assert isinstance(mapped, StoreUnavailable)
    assert mapped.retry_after == 1.0
    assert "Too many parts" not in mapped.message  # server details stay in our log


def test_a_broken_statement_is_not_reported_as_retryable(store: JourneyStore) -> None:
    store.client.command("DROP TABLE events")
    with pytest.raises(DatabaseError) as raised:  # not StoreUnavailable: the caller gets INTERNAL
        store.write("acme", [record("u4", 0)])
    assert raised.value.name == "UNKNOWN_TABLE"


def _call(deadline_in: float | None) -> CallContext:
    deadline = None if deadline_in is None else time.monotonic() + deadline_in
    return CallContext(request_id="r", method="/test", tenant="acme", deadline=deadline)


def test_a_statement_outlasting_the_callers_deadline_is_deadline_exceeded(store: JourneyStore) -> None:
    """Every read runs with max_execution_time set to what is left of the call's deadline, so a slow statement
    stops near it with DEADLINE_EXCEEDED (not UNAVAILABLE, not INTERNAL), and none starts once it passed."""
    slow = "SELECT count() FROM numbers(10000000000) WHERE sipHash64(number) = 0"  # tens of seconds
    began = time.monotonic()
    with bind_call(_call(0.5)), pytest.raises(DeadlineExceeded):
        query_rows(store.client, slow, {}, "counting forever")
    assert time.monotonic() - began < 10  # stopped by ClickHouse, at the deadline rounded up to 1 s
    with bind_call(_call(-1.0)), pytest.raises(DeadlineExceeded):
        query_rows(store.client, "SELECT 1", {}, "too late")
    with bind_call(_call(None)):  # no deadline: no limit, and a quick statement answers
        assert query_rows(store.client, "SELECT 1", {}, "quick") == [(1,)]
