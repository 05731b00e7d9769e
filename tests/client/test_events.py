"""The client's checks on the caller's thread: mistakes raise where they are made, before queueing."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.client import local_client
from wayline.client import (
    MAX_BATCH_BYTES,
    InvalidEvent,
    alias_event,
    group_event,
    money,
    page_event,
    screen_event,
    track_event,
)
from wayline.client.batching import check_event_size, split, track_batch_bytes
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.suite import free_port

USER = {"user_id": "u-42"}


def test_track_event_gets_a_uuid_and_the_call_time_before_it_is_queued() -> None:
    before = datetime.now(UTC)
    event = track_event("Order Completed", identifiers=USER, channel="web")
    assert uuid.UUID(event.event_id).version == 4
    assert before <= to_datetime(event.timestamp) <= datetime.now(UTC)
    assert event.type == event_pb2.EVENT_TYPE_TRACK
    assert event.channel == event_pb2.CHANNEL_WEB
    assert event.context.library.name == "wayline-python"


def test_track_event_keeps_the_callers_event_id_and_timestamp() -> None:
    given = str(uuid.uuid4())
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    event = track_event("A", identifiers=USER, channel="web", event_id=given, timestamp=at)
    assert (event.event_id, to_datetime(event.timestamp)) == (given, at)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: track_event("", identifiers=USER, channel="web"), "name"),
        (lambda: track_event("A", identifiers={}, channel="web"), "identifiers"),
        (lambda: track_event("A", identifiers={"User Id": "u"}, channel="web"), "identifiers[0].type"),
        (lambda: track_event("A", identifiers=[("email", "")], channel="web"), "identifiers[0].value"),
        (lambda: track_event("A", identifiers=USER), "channel"),
        (lambda: track_event("A", identifiers=USER, channel="fax"), "channel"),
        (lambda: track_event("A", identifiers=USER, channel="web", event_id="x"), "event_id"),
        (
            lambda: track_event("A", identifiers=USER, channel="web", timestamp=datetime(2024, 1, 1)),
            "timestamp",
        ),
        (
            lambda: track_event("A", identifiers=USER, channel="web", properties={"at": object()}),
            "properties.at",
        ),
        (lambda: track_event("A", identifiers=USER, channel="web", context={"nope": 1}), "context"),
        # A Struct holds doubles: no integer past their range (an OverflowError), no NaN (ingest refuses it).
        (
            lambda: track_event("A", identifiers=USER, channel="web", properties={"n": 10**400}),
            "properties.n",
        ),
        (
            lambda: track_event("A", identifiers=USER, channel="web", properties={"n": [1, math.nan]}),
            "properties.n[1]",
        ),
        (  # infinity for an enum: json_format's OverflowError once; refused with its path
            lambda: track_event("A", identifiers=USER, channel="web", context={"device": {"type": math.inf}}),
            "context.device.type",
        ),
        (lambda: screen_event("", identifiers=USER, channel="web"), "name"),
        (lambda: group_event("", identifiers=USER, channel="web"), "group_id"),
        (lambda: alias_event(identifiers=USER, channel="web"), "identifiers"),
        (lambda: money(9.99, "EUR"), "revenue"),  # type: ignore[arg-type]
        (lambda: money("9.99", "eur"), "revenue.currency_code"),
    ],
)
def test_invalid_calls_raise_invalid_event_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_properties_carry_datetimes_decimals_and_uuids_as_json() -> None:
    ident = uuid.uuid4()
    event = track_event(
        "A",
        identifiers=USER,
        channel=event_pb2.CHANNEL_EMAIL,
        properties={"at": datetime(2024, 1, 2, tzinfo=UTC), "price": Decimal("9.5"), "id": ident, "n": [1]},
    )
    assert dict(event.properties) == {
        "at": "2024-01-02T00:00:00+00:00",
        "price": 9.5,
        "id": str(ident),
        "n": [1.0],
    }


def test_money_is_exact_and_signed_alike() -> None:
    assert money("59.90", "EUR") == event_pb2.Money(currency_code="EUR", units=59, nanos=900_000_000)
    assert money(Decimal("-1.75"), "EUR") == event_pb2.Money(
        currency_code="EUR", units=-1, nanos=-750_000_000
    )


def test_page_and_screen_fill_their_context() -> None:
    page = page_event("Home", identifiers=USER, channel="web", url="https://x.test/", title="Home")
    assert (page.context.page.url, page.context.page.title) == ("https://x.test/", "Home")
    screen = screen_event("Checkout", identifiers=USER, channel="mobile_app", category="Shop")
    assert (screen.context.screen.name, screen.context.screen.category) == ("Checkout", "Shop")


def test_an_oversized_event_is_refused_by_track_and_never_queued() -> None:
    with local_client(f"127.0.0.1:{free_port()}") as client:
        with pytest.raises(InvalidEvent) as caught:
            client.track("Big", identifiers=USER, text="x" * (40 * 1024))
        assert caught.value.field == "event"
        assert client.stats().enqueued == 0


def test_split_keeps_every_batch_under_the_byte_limit_once_sent_at_is_stamped() -> None:
    events = [track_event("A", identifiers=USER, channel="web", text="x" * 60) for _ in range(8000)]
    events += [track_event("A", identifiers=USER, channel="web", text="x" * 30_000) for _ in range(20)]
    sizes = [check_event_size(event) for event in events]
    batches = split(events, sizes, max_events=10_000, max_bytes=MAX_BATCH_BYTES)
    assert len(batches) > 1
    assert [e for batch in batches for e in batch] == events
    stamp = to_timestamp(datetime.now(UTC) + timedelta(days=365 * 100))
    for batch in batches:
        for event in batch:
            event.sent_at.CopyFrom(stamp)
        assert ingest_pb.TrackBatchRequest(events=batch, backfill=True).ByteSize() <= MAX_BATCH_BYTES


@pytest.mark.parametrize("text_bytes", [0, 100, 20_000, 200_000])
def test_track_batch_bytes_is_the_request_the_message_would_serialise_to(text_bytes: int) -> None:
    # Sizes whose length prefixes take one, two and three varint bytes.
    events = [track_event("A", identifiers=USER, channel="web", text="x" * text_bytes) for _ in range(3)]
    events.append(track_event("B", identifiers=USER, channel="web", properties={"n": 1}))
    framed = track_batch_bytes(events)
    assert ingest_pb.TrackBatchRequest.FromString(framed) == ingest_pb.TrackBatchRequest(events=events)
    assert len(framed) == ingest_pb.TrackBatchRequest(events=events).ByteSize()
    assert track_batch_bytes([]) == b""
