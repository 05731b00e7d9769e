"""`person_timelines` (ADR 99): a person's page as stored read from the copy keyed by person, its payload
decoded back to the very record `events` holds, the override markers that send a page to the exact read,
and erasures that leave no copy behind."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journeys.conftest import T0
from wayline.common.timestamps import to_micros
from wayline_journeys.erasures import PersonToErase
from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import EventRecord, TimelineCursor, TimelineOrder, TimelineQuery
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore, PersonOverrideStore
from wayline_journeys.store.columns import arrow_table
from wayline_journeys.store.migrations import migrate
from wayline_journeys.store.named_persons import NamedPersons
from wayline_journeys.store.person_timelines import (
    INDEX_GRANULARITY,
    MARKER_EVENT_ID,
    PAYLOAD_FIELDS,
    ROW_COLUMNS,
    person_timelines_in_finer_granules,
)
from wayline_journeys.store.schema import MIGRATIONS
from wayline_journeys.store.timeline import ClickHouseTimeline
from wayline_journeys.store.topology import Topology

TENANT = "acme"


def test_the_payload_and_the_columns_hold_every_field_of_the_record() -> None:
    # A field added to EventRecord (a new column of `events`) must be added to the payload too.
    held = {f.field for f in PAYLOAD_FIELDS} | set(ROW_COLUMNS) - {"payload"} | {"person_id"}
    assert held == {f.name for f in dataclasses.fields(EventRecord)}
    assert len(PAYLOAD_FIELDS) == len({f.field for f in PAYLOAD_FIELDS})


def exact_timeline(store: JourneyStore, person: str) -> ClickHouseTimeline:
    """A timeline that reads `person` through the overrides from `events`, as for a person one names."""
    named = NamedPersons()
    named.note(TENANT, [person])
    return ClickHouseTimeline(store, PersonOverrideStore(lambda: store.client, lambda tables: None, named))


def stored_rows(store: JourneyStore, person: str) -> int:
    rows = store.client.query(
        "SELECT count() FROM person_timelines WHERE tenant_id = {t:String} AND person_id = {p:String}",
        parameters={"t": TENANT, "p": person},
    ).result_rows
    return int(rows[0][0])


_MICROS = st.integers(
    int(datetime(1900, 1, 1, tzinfo=UTC).timestamp() * 1_000_000),
    int(datetime(2299, 12, 31, tzinfo=UTC).timestamp() * 1_000_000),
)
_TIMES = _MICROS.map(lambda us: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us))
_TEXT = st.text(max_size=40)


@st.composite
def records(draw: st.DrawFn, person: str) -> EventRecord:
    identifiers = draw(
        st.lists(st.tuples(st.sampled_from(["user_id", "email", "device_id"]), _TEXT), max_size=3)
    )
    return EventRecord(
        event_id=str(uuid.uuid4()),
        type=draw(st.sampled_from(["track", "page", "identify", "alias"])),
        name=draw(_TEXT),
        channel=draw(st.sampled_from(["web", "email", "sms", ""])),
        timestamp=draw(_TIMES),
        received_at=draw(_TIMES),
        sent_at=draw(st.none() | _TIMES),
        identifier_types=tuple(t for t, _ in identifiers),
        identifier_values=tuple(v for _, v in identifiers),
        person_id=person,
        properties_json=draw(st.sampled_from(["{}", '{"a": "\\"q\\"\\n", "b": [1, 2.5e-300]}'])),
        context_json=draw(_TEXT),
        text=draw(_TEXT),
        revenue=draw(
            st.none()
            | st.decimals(
                min_value=-(10**28), max_value=10**28, places=9, allow_nan=False, allow_infinity=False
            )
        ),
        revenue_currency=draw(st.sampled_from(["", "EUR", "JPY"])),
        group_id=draw(_TEXT),
        plan_violations_json=draw(st.sampled_from(["[]", '[{"field": "x"}]'])),
        sentiment_score=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
        original_timestamp=draw(st.none() | _TIMES),
        integrations_json=draw(st.sampled_from(["", "{}", '{"All": false}'])),
        previous_identifier_type=draw(st.sampled_from(["", "anonymous_id"])),
        previous_identifier_value=draw(_TEXT),
        backfill=draw(st.booleans()),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_page_as_stored_reads_back_exactly_what_events_holds(
    store: JourneyStore, data: st.DataObject
) -> None:
    person = str(uuid.uuid4())
    written = data.draw(st.lists(records(person), min_size=1, max_size=5))
    store.write(TENANT, written)
    for order in TimelineOrder:
        query = TimelineQuery(tenant=TENANT, person_id=person, order=order)
        as_stored = store.timeline_page(query).events
        assert as_stored == exact_timeline(store, person).timeline_page(query).events
        assert sorted(as_stored, key=lambda r: r.event_id) == sorted(written, key=lambda r: r.event_id)
    assert stored_rows(store, person) == len(written)  # the page came from person_timelines


def viewed(person: str, channel: str, minute: int) -> EventRecord:
    return EventRecord(
        event_id=str(uuid.uuid4()),
        type="track",
        name="Viewed",
        channel=channel,
        timestamp=T0 + timedelta(minutes=minute),
        received_at=T0 + timedelta(minutes=minute),
        identifier_types=("user_id",),
        identifier_values=(f"u-{person}",),
        person_id=person,
        revenue=Decimal("1.5"),
    )


def test_an_override_naming_a_person_sends_every_page_of_theirs_to_the_exact_read(
    store: JourneyStore,
) -> None:
    # B is merged into A by another replica (this process never saw the override): B's email event is
    # stored under B, so only the read through the overrides finds it in A's timeline. A filter that no
    # event stored under A meets must not hide the marker that says so.
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    store.write(TENANT, [viewed(a, "web", 0), viewed(b, "email", 1)])
    PersonOverrideStore(lambda: store.client, lambda tables: None).apply(TENANT, [PersonOverride(b, a, 1)])

    emails = store.timeline(TimelineQuery(tenant=TENANT, person_id=a, channels=("email",)))
    assert [(e.person_id, e.channel) for e in emails] == [(a, "email")]
    assert [e.channel for e in store.timeline(TimelineQuery(tenant=TENANT, person_id=a))] == ["web", "email"]
    assert store.timeline(TimelineQuery(tenant=TENANT, person_id=b)) == []


def test_an_empty_page_of_a_person_no_override_names_is_empty(store: JourneyStore) -> None:
    person = str(uuid.uuid4())
    store.write(TENANT, [viewed(person, "web", 0)])
    assert store.timeline(TimelineQuery(tenant=TENANT, person_id=person, channels=("sms",))) == []
    assert store.timeline(TimelineQuery(tenant=TENANT, person_id=str(uuid.uuid4()))) == []


def test_a_page_filtered_to_nothing_leaves_the_next_pages_whole(store: JourneyStore) -> None:
    # ClickHouse's query condition cache once carried the filtered page's "nothing here" over to the next.
    person = str(uuid.uuid4())
    store.write(TENANT, [viewed(person, "web", minute) for minute in range(3)])
    whole = TimelineQuery(tenant=TENANT, person_id=person, order=TimelineOrder.NEWEST_FIRST)
    assert len(store.timeline(whole)) == 3
    filtered = dataclasses.replace(whole, event_names=("Decision Logged",), limit=20)
    assert store.timeline(filtered) == []
    assert len(store.timeline(whole)) == 3
    assert len(store.timeline(dataclasses.replace(whole, channels=("web",)))) == 3


_NAMES = ("Viewed", "Clicked", "Bought")
_CHANNELS = ("web", "app", "email")
_MINUTES = st.integers(0, 5000).map(lambda minute: T0 + timedelta(minutes=minute))


@pytest.fixture
def crowd(store: JourneyStore) -> list[str]:
    """Twelve persons whose events are spread over eight writes (parts), six persons each, the first six
    merged into one part: each part holds several persons' granules."""
    rng = random.Random(7)
    persons = [str(uuid.uuid4()) for _ in range(12)]
    for batch in range(8):
        store.write(
            TENANT,
            [
                dataclasses.replace(
                    viewed(person, rng.choice(_CHANNELS), rng.randrange(5000)), name=rng.choice(_NAMES)
                )
                for person in rng.sample(persons, 6)
                for _ in range(rng.randint(1, 30))
            ],
        )
        if batch == 5:
            store.client.command("OPTIMIZE TABLE person_timelines")
    return persons


@st.composite
def page_queries(draw: st.DrawFn, persons: list[str]) -> TimelineQuery:
    after = draw(st.none() | st.tuples(_MINUTES, st.uuids()))
    return TimelineQuery(
        tenant=TENANT,
        person_id=draw(st.sampled_from(persons)),
        channels=tuple(draw(st.lists(st.sampled_from([*_CHANNELS, "sms"]), max_size=2, unique=True))),
        event_names=tuple(draw(st.lists(st.sampled_from([*_NAMES, "Decision Logged"]), max_size=2))),
        start=draw(st.none() | _MINUTES),
        end=draw(st.none() | _MINUTES),
        order=draw(st.sampled_from(TimelineOrder)),
        limit=draw(st.sampled_from([3, 10, 100])),
        after=TimelineCursor(to_micros(after[0]), str(after[1])) if after else None,
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_pages_read_in_any_sequence_agree_with_the_exact_read(
    store: JourneyStore, crowd: list[str], data: st.DataObject
) -> None:
    # ClickHouse keeps what a read found in a granule for the next reads of the same part (its query condition
    # cache): no page may change what another one finds. With an explicit PREWHERE one in six pages was wrong
    # (ADR 100). The exact read goes through `events` FINAL, which that cache leaves alone.
    for query in data.draw(st.lists(page_queries(crowd), min_size=20, max_size=20)):
        exact = exact_timeline(store, query.person_id).timeline_page(query).events
        assert store.timeline_page(query).events == exact


def test_a_retry_at_another_time_reads_as_its_newest_copy(store: JourneyStore) -> None:
    person = str(uuid.uuid4())
    first = viewed(person, "web", 0)
    retry = dataclasses.replace(first, timestamp=T0 + timedelta(days=40), received_at=T0 + timedelta(days=40))
    store.write(TENANT, [retry])
    store.write(TENANT, [first])  # an older copy replayed late
    page = store.timeline(TimelineQuery(tenant=TENANT, person_id=person))
    assert [(e.event_id, e.timestamp) for e in page] == [(first.event_id, retry.timestamp)]
    after = store.timeline(TimelineQuery(tenant=TENANT, person_id=person, end=T0 + timedelta(days=1)))
    assert after == []  # the stale copy's time is not the event's


def test_an_erasure_takes_the_copies_stored_under_every_person(store: JourneyStore) -> None:
    # Written under A; identity moves the user id to C, and a replay stores the event under C too: two rows in
    # person_timelines under two persons. Erasing C (who holds it now) must take both.
    a, c = str(uuid.uuid4()), str(uuid.uuid4())
    before = viewed(a, "web", 0)
    store.write(TENANT, [before])
    moved = PersonOverride(a, c, 1, identifier_type="user_id", identifier_value=f"u-{a}")
    PersonOverrideStore(lambda: store.client, lambda tables: None).apply(TENANT, [moved])
    store.write(
        TENANT, [dataclasses.replace(before, person_id=c, received_at=before.received_at + timedelta(1))]
    )
    copies = "SELECT count() FROM person_timelines WHERE event_id = {id:UUID}"
    assert store.client.query(copies, parameters={"id": before.event_id}).result_rows == [(2,)]

    mapping = store.overrides.mapping_for_person(TENANT, c)
    assert store.erase_persons(TENANT, [PersonToErase(c)], mapping) == [1]
    assert store.client.query(copies, parameters={"id": before.event_id}).result_rows == [(0,)]


def _merged_pair_at(connect: Callable[[], Client], version: int) -> tuple[Client, str, str]:
    """A database migrated to `version` only, holding an event of A (web) and one of B (email), B merged
    into A by an override: (its client, A, B)."""
    client = connect()
    migrate(client, Topology(), MIGRATIONS[:version])
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    client.insert_arrow(
        "events", arrow_table(TENANT, EventColumns.of([viewed(a, "web", 0), viewed(b, "email", 1)]))
    )
    PersonOverrideStore(lambda: client, lambda tables: None).apply(TENANT, [PersonOverride(b, a, 1)])
    return client, a, b


def test_a_store_from_version_13_gains_the_copies_and_markers_of_what_it_holds(
    fresh_database: Callable[[], Client],
) -> None:
    # Events and an override written before version 14: the migration copies the events and marks the persons
    # the override names, so B's event (merged into A) is in A's timeline from the first read.
    _, a, b = _merged_pair_at(fresh_database, 13)

    store = JourneyStore(fresh_database)
    store.open()  # migrates to the newest version
    try:
        markers = store.client.query(
            "SELECT person_id FROM person_timelines WHERE event_id = toUUID({m:String}) ORDER BY person_id",
            parameters={"m": MARKER_EVENT_ID},
        ).result_rows
        assert markers == sorted([(a,), (b,)])
        assert (stored_rows(store, a), stored_rows(store, b)) == (2, 2)  # an event and a marker each
        assert [e.channel for e in store.timeline(TimelineQuery(tenant=TENANT, person_id=a))] == [
            "web",
            "email",
        ]
    finally:
        store.close()


def _granularity(client: Client, table: str) -> str:
    (engine,) = client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows[0]
    return str(engine).split("index_granularity = ")[1].split(",")[0]


def test_a_store_from_version_14_gets_finer_granules_and_keeps_every_copy(
    fresh_database: Callable[[], Client],
) -> None:
    client, a, _ = _merged_pair_at(fresh_database, 14)
    copies = "SELECT event_id, person_id, received_at, payload FROM person_timelines ORDER BY ALL"
    before = client.query(copies).result_rows
    assert _granularity(client, "person_timelines") == "8192"

    store = JourneyStore(fresh_database)
    store.open()  # migrates to the newest version
    try:
        assert _granularity(store.client, "person_timelines") == str(INDEX_GRANULARITY)
        assert store.client.query(copies).result_rows == before  # two events and two markers
        tables = store.client.query(
            "SELECT name FROM system.tables "
            "WHERE database = currentDatabase() AND name LIKE 'person_timelines%' ORDER BY name"
        ).result_rows
        assert [name for (name,) in tables] == [
            "person_timelines",
            "person_timelines_markers_mv",
            "person_timelines_mv",
        ]
        later = viewed(a, "app", 2)
        store.write(TENANT, [later])  # the views write into the new table
        assert later.event_id in {
            e.event_id for e in store.timeline(TimelineQuery(tenant=TENANT, person_id=a))
        }
        assert stored_rows(store, a) == 3  # two events and a marker
    finally:
        store.close()


def test_a_rebuild_cut_short_after_the_swap_keeps_what_only_the_old_table_holds(store: JourneyStore) -> None:
    # The swap happened and the process died before the old table's late rows were copied and it was dropped.
    person = str(uuid.uuid4())
    late = viewed(person, "web", 0)
    store.client.command("CREATE TABLE person_timelines_rebuild AS person_timelines")
    store.write(TENANT, [late])
    store.client.command("INSERT INTO person_timelines_rebuild SELECT * FROM person_timelines")
    store.client.command("TRUNCATE TABLE person_timelines")  # the late row is only in the leftover
    person_timelines_in_finer_granules(store.client, Topology())
    assert stored_rows(store, person) == 1
    assert not store.client.query("EXISTS TABLE person_timelines_rebuild").result_rows[0][0]
