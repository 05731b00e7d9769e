"""Large events read back through a client with gRPC's default limits (it refuses a message past 4 MiB): a
page of 1,000 events of 25 KB was 25 MB, which the server failed to send (RESOURCE_EXHAUSTED "Sent message
larger than max"), so no timeline of such a person could be read at the largest page size, and an export
of them failed mid-stream. Pages and chunks stop at RESPONSE_BUDGET_BYTES; the token carries on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.journeys.conftest import T0, Journeys, new_person, stored_event
from tests.pages import every_page
from wayline.common.response_size import RESPONSE_BUDGET_BYTES
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

_EVENTS = 400


def _large_events(journeys: Journeys, person: str) -> list[event_pb2.Event]:
    events = []
    for minute in range(_EVENTS):
        event = stored_event(person, ("user_id", person), minute=minute)
        event.properties.update({"cart": "x" * 25_000})  # a rich payload, under ingest's 32 KB per event
        events.append(event)
    for start in range(0, _EVENTS, 100):
        journeys.write(*events[start : start + 100])
    return events


@pytest.mark.parametrize(
    "order", [pb.TIMELINE_ORDER_OLDEST_FIRST, pb.TIMELINE_ORDER_NEWEST_FIRST], ids=["oldest", "newest"]
)
def test_a_timeline_of_large_events_pages_within_what_a_client_receives(
    journeys: Journeys, order: pb.TimelineOrder.ValueType
) -> None:
    person = new_person()
    written = _large_events(journeys, person)
    pages = every_page(
        lambda token: journeys.stub.GetTimeline(
            pb.GetTimelineRequest(person_id=person, page_size=1000, order=order, page_token=token),
            metadata=journeys.metadata,
            timeout=30,
        )
    )
    assert all(page.events for page in pages)
    read = [e.event_id for page in pages for e in page.events]
    oldest_first = [e.event_id for e in written]
    assert read == (oldest_first if order == pb.TIMELINE_ORDER_OLDEST_FIRST else oldest_first[::-1])
    assert len(pages) == 4  # about 124 events of 25 KB a page


def test_an_export_of_large_events_streams_messages_a_client_receives(journeys: Journeys) -> None:
    person = new_person()
    written = _large_events(journeys, person)
    window = event_pb2.TimeRange(start=to_timestamp(T0), end=to_timestamp(T0 + timedelta(minutes=_EVENTS)))
    messages = list(
        journeys.stub.ExportEvents(
            pb.ExportEventsRequest(time_range=window), metadata=journeys.metadata, timeout=60
        )
    )
    assert len(messages) == 4
    assert all(m.ByteSize() <= RESPONSE_BUDGET_BYTES for m in messages)
    assert [e.event_id for m in messages for e in m.events] == [e.event_id for e in written]
