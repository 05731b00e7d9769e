"""ExportEvents over gRPC on the real journeys server (chDB): a range's events person after person, each
person's oldest first, read through the overrides, for every person or a stable sample, filtered by name;
refused when the range is malformed or holds more events than the server streams."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import groupby

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.journeys.conftest import T0, Journeys, field_violations, override, stored_event
from wayline.common.timestamps import MIN_TIMESTAMP_SECONDS, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.converters import event_to_record
from wayline_journeys.errors import QueryTooLarge
from wayline_journeys.event_export import CHUNK_EVENTS, EventExportQuery, export_events
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.event_export import ClickHouseEventExport
from wayline_journeys.training_set import SAMPLE_SALT, stable_hash


def _event(person: str, minute: int, name: str = "Product Viewed") -> event_pb2.Event:
    event = stored_event(person, ("user_id", person), minute=minute)
    event.name = name
    return event


def _range(first_minute: int = 0, last_minute: int = 600) -> event_pb2.TimeRange:
    return event_pb2.TimeRange(
        start=to_timestamp(T0 + timedelta(minutes=first_minute)),
        end=to_timestamp(T0 + timedelta(minutes=last_minute)),
    )


def _export(journeys: Journeys, **fields: object) -> list[pb.ExportEventsResponse]:
    request = pb.ExportEventsRequest(time_range=_range(), **fields)  # type: ignore[arg-type]
    return list(journeys.stub.ExportEvents(request, metadata=journeys.metadata, timeout=30))


def _events(journeys: Journeys, **fields: object) -> list[event_pb2.Event]:
    return [e for message in _export(journeys, **fields) for e in message.events]


def _persons(events: list[event_pb2.Event]) -> list[str]:
    return [person for person, _ in groupby(e.person_id for e in events)]


def test_export_events_groups_persons_each_oldest_first(journeys: Journeys) -> None:
    persons = [f"p-{uuid.uuid4()}" for _ in range(3)]
    written = journeys.write(*(_event(persons[m % 3], 100 - m) for m in range(12)))
    found = _events(journeys)
    assert sorted(e.event_id for e in found) == sorted(e.event_id for e in written)
    order = _persons(found)
    assert sorted(order) == sorted(persons)  # each person once: never interleaved
    for person in persons:
        times = [e.timestamp.ToMicroseconds() for e in found if e.person_id == person]
        assert times == sorted(times)
        assert len(times) == 4


def test_export_events_keeps_the_range_start_and_leaves_its_end(journeys: Journeys) -> None:
    person = f"p-{uuid.uuid4()}"
    _, at_start, inside, _ = journeys.write(*(_event(person, m) for m in (-1, 0, 30, 600)))
    assert [e.event_id for e in _events(journeys)] == [at_start.event_id, inside.event_id]


@pytest.mark.parametrize("year", [1, 10])
def test_export_events_reads_a_range_that_starts_before_the_year_1000(journeys: Journeys, year: int) -> None:
    """clickhouse-connect wrote such a start as `1-01-01 …` (strftime's unpadded %Y), which the store
    refused to parse: INTERNAL instead of the range's events."""
    person = f"p-{uuid.uuid4()}"
    (written,) = journeys.write(_event(person, 30))
    start = Timestamp(seconds=MIN_TIMESTAMP_SECONDS + (year - 1) * 366 * 86_400)
    window = event_pb2.TimeRange(start=start, end=_range().end)
    request = pb.ExportEventsRequest(time_range=window)
    found = list(journeys.stub.ExportEvents(request, metadata=journeys.metadata, timeout=30))
    assert [e.event_id for message in found for e in message.events] == [written.event_id]


def test_export_events_samples_the_same_persons_by_their_hash(journeys: Journeys) -> None:
    persons = [f"p-{uuid.uuid4()}" for _ in range(10)]
    journeys.write(*(_event(p, i) for i, p in enumerate(persons)), _event(persons[0], 50))
    first = _persons(_events(journeys, max_persons=3))
    lowest = sorted(persons, key=lambda p: (stable_hash(SAMPLE_SALT, p), p))[:3]
    assert sorted(first) == sorted(lowest)
    assert _persons(_events(journeys, max_persons=3)) == first
    assert len(_events(journeys, max_persons=30)) == 11


def test_export_events_filters_by_name(journeys: Journeys) -> None:
    person = f"p-{uuid.uuid4()}"
    journeys.write(_event(person, 1), _event(person, 2, "Order Completed"), _event(person, 3, "Signed Up"))
    found = _events(journeys, event_names=["Order Completed", "Signed Up"])
    assert [e.name for e in found] == ["Order Completed", "Signed Up"]


def test_export_events_reads_merged_persons_under_the_survivor(journeys: Journeys) -> None:
    survivor, merged = f"p-{uuid.uuid4()}", f"p-{uuid.uuid4()}"
    journeys.write(_event(survivor, 1), _event(merged, 2), _event(survivor, 3), _event(merged, 4))
    journeys.apply(override(merged, survivor, 1))
    found = _events(journeys)
    assert [e.person_id for e in found] == [survivor] * 4
    times = [e.timestamp.ToMicroseconds() for e in found]
    assert times == sorted(times)


def test_export_events_shows_a_tenant_only_its_own_events(journeys: Journeys) -> None:
    other = journeys.for_tenant(f"tenant-{uuid.uuid4().hex[:10]}")
    mine = journeys.write(_event(f"p-{uuid.uuid4()}", 1))
    other.write(_event(f"p-{uuid.uuid4()}", 2))
    assert [e.event_id for e in _events(journeys)] == [mine[0].event_id]


def test_export_events_streams_chunks_of_about_a_thousand_events(journeys: Journeys) -> None:
    persons = [f"p-{uuid.uuid4()}" for _ in range(3)]
    journeys.write(*(_event(persons[i % 3], i % 500) for i in range(CHUNK_EVENTS + 200)))
    messages = _export(journeys)
    assert [len(m.events) for m in messages] == [CHUNK_EVENTS, 200]
    assert sorted(_persons([e for m in messages for e in m.events])) == sorted(persons)


@pytest.mark.parametrize(
    ("time_range", "max_persons", "names", "expected"),
    [
        (event_pb2.TimeRange(end=_range().end), 0, [], {"time_range.start": "REQUIRED"}),
        (event_pb2.TimeRange(start=_range().start), 0, [], {"time_range.end": "REQUIRED"}),
        (_range(10, 5), 0, [], {"time_range": "INVALID_RANGE"}),
        (_range(), -1, [""], {"max_persons": "OUT_OF_RANGE", "event_names[0]": "REQUIRED"}),
        (  # was INTERNAL
            event_pb2.TimeRange(start=Timestamp(seconds=MIN_TIMESTAMP_SECONDS - 1), end=_range().end),
            0,
            [],
            {"time_range.start": "OUT_OF_RANGE"},
        ),
    ],
)
def test_export_events_refuses_a_malformed_request(
    journeys: Journeys,
    time_range: event_pb2.TimeRange,
    max_persons: int,
    names: list[str],
    expected: dict[str, str],
) -> None:
    request = pb.ExportEventsRequest(time_range=time_range, max_persons=max_persons, event_names=names)
    with pytest.raises(grpc.RpcError) as caught:
        list(journeys.stub.ExportEvents(request, metadata=journeys.metadata, timeout=10))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == expected


def test_export_events_refuses_more_events_than_the_limit(store: JourneyStore) -> None:
    """The limit is checked before any message (the servicer maps QueryTooLarge to RESOURCE_EXHAUSTED with
    reason QUERY_TOO_LARGE); at the limit everything streams."""
    person = f"p-{uuid.uuid4()}"
    store.write("t", [event_to_record(_event(person, m)) for m in range(5)])
    query = EventExportQuery("t", T0, T0 + timedelta(hours=1))
    with pytest.raises(QueryTooLarge):
        next(export_events(ClickHouseEventExport(store), query, 4, lambda: True))
    chunks = list(export_events(ClickHouseEventExport(store), query, 5, lambda: True))
    assert [len(c) for c in chunks] == [5]


def test_export_events_reads_a_batch_of_persons_with_the_events_overrides_send_them(
    store: JourneyStore,
) -> None:
    """A batch reads only its persons' ranges of events, and still finds an event stored under another
    person that a scoped override (an unmerge) or a person-wide one (a merge) gives them."""
    split_off, merged, kept, other = (f"p-{uuid.uuid4()}" for _ in range(4))
    own = _event(split_off, 1)
    device = stored_event(kept, ("device_id", f"d-{uuid.uuid4()}"), minute=2)
    kept_event = _event(kept, 3)
    merged_event = _event(merged, 4)
    store.write("t", [event_to_record(e) for e in (own, device, kept_event, merged_event, _event(other, 5))])
    store.overrides.apply(
        "t",
        [
            PersonOverride(kept, split_off, 1, "device_id", device.identifiers[0].value),
            PersonOverride(merged, split_off, 2),
        ],
    )
    export = ClickHouseEventExport(store)
    query = EventExportQuery("t", T0, T0 + timedelta(hours=1))
    found = export.events(query, [split_off])
    assert [e.event_id for e in found] == [own.event_id, device.event_id, merged_event.event_id]
    assert {e.person_id for e in found} == {split_off}
    assert [e.event_id for e in export.events(query, [kept])] == [kept_event.event_id]
    assert {(p.person_id, p.events) for p in export.persons(query)} == {(split_off, 3), (kept, 1), (other, 1)}
